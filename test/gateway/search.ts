// The gateway's two search handlers, as ldapjs routes them: one for the base
// DN and everything under it (filter-text routing, routing.ts), and the
// root-DSE handler, which gets every other base. Neither evaluates scope,
// except that the root-DSE handler answers only scope base.
import ldap from "ldapjs";
import type { GatewayConfig } from "./config.js";
import { RowError, type Directory, type Entry } from "./directory.js";
import type { Logger } from "./log.js";
import { groupWanted, routeSearch, type Route } from "./routing.js";
import type { Next, SearchReq, SearchRes } from "./ldap-types.js";

/**
 * Attributes every entry carries whether asked for or not (lower case, as
 * ldapjs compares them). Any other requested name only matches when given in
 * lower case, because ldapjs lowercases the entry's attribute names but not
 * the requested ones: `givenName` is dropped, `givenname` works.
 */
const ALWAYS_SENT = [
  "objectclass",
  "uidnumber",
  "gidnumber",
  "loginshell",
  "homedirectory",
  "memberof",
  "sn",
  "mail",
  "memberuid",
];

/** The root DSE of `main`: no `defaultNamingContext` (only the `dev` branch has it). */
export function rootDseAttributes(cfg: GatewayConfig): Record<string, string[]> {
  return {
    objectClass: ["top"],
    namingContexts: [cfg.baseDn],
    supportedLDAPVersion: ["3"],
  };
}

/** Requested attributes of the root DSE (none, `*` or `+`: all of them), compared without case. */
export function selectAttributes(
  all: Record<string, string[]>,
  requested: readonly string[],
): [string, string[]][] {
  const wanted = requested.map((a) => a.toLowerCase());
  const every = wanted.length === 0 || wanted.includes("*") || wanted.includes("+");
  return Object.entries(all).filter(([k]) => every || wanted.includes(k.toLowerCase()));
}

function isAnonymous(req: SearchReq): boolean {
  return req.connection.ldap.bindDN.toString() === "cn=anonymous";
}

type Row = Record<string, unknown>;

/** Entries of one route, in the order they are sent: users first, then groups. */
async function entriesFor(route: Route, directory: Directory): Promise<{ users: Row[]; groups: Row[] }> {
  switch (route.kind) {
    case "oneUser":
      return { users: await directory.oneUser(route.uid), groups: [] };
    case "allUsers":
      return { users: await directory.allUsers(), groups: [] };
    case "groups": {
      const groups = route.member
        ? await directory.groupsByMember(route.member)
        : await directory.allGroups();
      return { users: [], groups };
    }
    case "mixed":
      return { users: await directory.allUsers(), groups: await directory.allGroups() };
    case "none":
      return { users: [], groups: [] };
  }
}

export function createSearchHandlers(
  cfg: GatewayConfig,
  directory: Directory,
  log: Logger,
): {
  rootDse: (req: SearchReq, res: SearchRes) => void;
  underBase: (req: SearchReq, res: SearchRes, next: Next) => Promise<void>;
} {
  const rootDse = (req: SearchReq, res: SearchRes): void => {
    log.debug(`root DSE search base="${req.dn.toString()}" scope=${req.scopeName}`);
    // Never touches the database; any scope but base gets no entries.
    if (req.scopeName === "base") {
      const attributes = selectAttributes(rootDseAttributes(cfg), req.attributes).map(
        ([type, values]) => new ldap.Attribute({ type, values }),
      );
      res.send(res.createSearchEntry({ objectName: "", attributes }));
    }
    res.end();
  };

  const underBase = async (req: SearchReq, res: SearchRes, next: Next): Promise<void> => {
    const filter = req.filter.toString();
    log.debug(`search base="${req.dn.toString()}" scope=${req.scopeName} filter=${filter}`);
    if (cfg.requireAuthForSearch && isAnonymous(req)) {
      next(new ldap.InsufficientAccessRightsError("authentication required for search"));
      return;
    }
    const route = routeSearch(filter, req.attributes);
    if (res.attributes.length && !res.attributes.includes("*")) res.attributes.push(...ALWAYS_SENT);

    let rows: { users: Row[]; groups: Row[] };
    try {
      rows = await entriesFor(route, directory);
    } catch (err) {
      // Database unreachable: the real gateway answers success with no
      // entries, which is why "search succeeded" proves nothing.
      log.error(`directory query failed: ${(err as Error).message}`);
      res.end();
      return;
    }

    let sent = 0;
    const send = (e: Entry): void => {
      res.send({ dn: e.dn, attributes: e.attributes });
      sent++;
    };
    try {
      for (const row of rows.users) send(directory.userEntry(row));
      for (const row of rows.groups) {
        const entry = directory.groupEntry(row);
        if (
          route.kind !== "groups" ||
          groupWanted(route, String(entry.attributes.cn), String(entry.attributes.gidNumber))
        )
          send(entry);
      }
    } catch (err) {
      // One bad row fails the whole listing after the entries before it.
      if (err instanceof RowError) {
        log.error(`search failed after ${sent} entries: ${err.message}`);
        next(new ldap.OperationsError(err.message));
        return;
      }
      throw err;
    }
    res.end();
  };

  return { rootDse, underBase };
}
