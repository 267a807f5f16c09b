// The gateway stand-in's LDAP server, on ldapjs like the real one (which runs
// a fork of it). Behaviour follows shared/reference/ldap-gateway.md,
// including the quirks the operator has to survive.
import type { Server, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import ldap from "ldapjs";
import type { GatewayConfig } from "./config.js";
import { verifyPassword } from "./crypt.js";
import { Directory, RowError, type Entry } from "./directory.js";
import type { Logger } from "./log.js";
import { askApproval } from "./notification.js";
import { routeFilter } from "./routing.js";

/** The slice of ldapjs's request/response objects used here (its bundled types predate v3). */
interface LdapDn {
  toString(): string;
}
interface Conn {
  ldap: { bindDN: LdapDn; id: string };
}
interface SearchReq {
  dn: LdapDn;
  scopeName: string;
  filter: { toString(): string };
  attributes: string[];
  connection: Conn;
}
interface BindReq {
  dn: LdapDn;
  credentials: string;
  connection: Conn;
}
interface SearchRes {
  attributes: string[];
  send(entry: unknown): void;
  createSearchEntry(obj: { objectName: string; attributes: unknown[] }): unknown;
  end(): void;
}
interface BindRes {
  end(): void;
}
type Next = (err?: unknown) => void;

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

export interface GatewayServer {
  listen(): Promise<{ address: string; port: number }>;
  /** Stops accepting; resolves when every client has disconnected. */
  close(): Promise<void>;
  connections(): number;
}

function isAnonymous(conn: Conn): boolean {
  return conn.ldap.bindDN.toString() === "cn=anonymous";
}

function normalizeDn(dn: string): string {
  return dn
    .split(",")
    .map((p) => p.trim().toLowerCase())
    .join(",");
}

export function createGatewayServer(
  cfg: GatewayConfig,
  log: Logger,
  tls: { cert: string; key: string } | undefined,
): GatewayServer {
  const directory = new Directory(cfg, log);
  const server = ldap.createServer(tls ? { certificate: tls.cert, key: tls.key } : {});
  const sockets = new Set<Socket | TLSSocket>();
  const raw = (server as unknown as { server: Server }).server;
  raw.on(tls ? "secureConnection" : "connection", (sock: Socket) => {
    sockets.add(sock);
    log.debug(`client connected from ${sock.remoteAddress}:${sock.remotePort}`);
    sock.on("close", () => {
      sockets.delete(sock);
      // The real gateway logs every disconnect at error level.
      log.error(`client ${sock.remoteAddress}:${sock.remotePort} disconnected`);
    });
  });
  if (tls) {
    raw.on("tlsClientError", (err: Error) => log.warn(`TLS handshake failed: ${err.message}`));
  }
  server.on("clientError", (err: Error) => log.debug(`client error: ${err.message}`));

  const sendEntries = (res: SearchRes, entries: Entry[]): void => {
    for (const e of entries) res.send({ dn: e.dn, attributes: e.attributes });
  };

  const searchHandler = async (req: SearchReq, res: SearchRes, next: Next): Promise<void> => {
    const base = req.dn.toString();
    const filter = req.filter.toString();
    log.debug(`search base="${base}" scope=${req.scopeName} filter=${filter}`);

    // Root DSE: answered from configuration, never from the database.
    if (base === "" && req.scopeName === "base") {
      const wanted = req.attributes.map((a) => a.toLowerCase());
      const all = wanted.length === 0 || wanted.includes("*") || wanted.includes("+");
      const attrs: Record<string, string[]> = {
        namingContexts: [cfg.baseDn],
        defaultNamingContext: [cfg.baseDn],
        supportedLDAPVersion: ["3"],
      };
      const list = Object.entries(attrs)
        .filter(([k]) => all || wanted.includes(k.toLowerCase()))
        .map(([type, values]) => new ldap.Attribute({ type, values }));
      res.send(res.createSearchEntry({ objectName: "", attributes: list }));
      res.end();
      return;
    }

    if (cfg.requireAuthForSearch && isAnonymous(req.connection)) {
      next(new ldap.InsufficientAccessRightsError("authentication required for search"));
      return;
    }

    if (res.attributes.length && !res.attributes.includes("*")) res.attributes.push(...ALWAYS_SENT);

    const route = routeFilter(filter);
    let rows: Record<string, unknown>[];
    try {
      switch (route.kind) {
        case "oneUser":
          rows = await directory.oneUser(route.uid);
          break;
        case "allUsers":
          rows = await directory.allUsers();
          break;
        case "groupsByMember":
          rows = await directory.groupsByMember(route.uid);
          break;
        case "allGroups":
          rows = await directory.allGroups();
          break;
        case "none":
          rows = [];
          break;
      }
    } catch (err) {
      // Database unreachable: the real gateway answers success with no
      // entries, which is why "search succeeded" proves nothing.
      log.error(`directory query failed: ${(err as Error).message}`);
      res.end();
      return;
    }

    const isUser = route.kind === "oneUser" || route.kind === "allUsers";
    let sent = 0;
    try {
      for (const row of rows) {
        const entry = isUser ? directory.userEntry(row) : directory.groupEntry(row);
        sendEntries(res, [entry]);
        sent++;
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

  const bindHandler = async (req: BindReq, res: BindRes, next: Next): Promise<void> => {
    const dn = req.dn.toString();
    const firstRdn = dn.split(",")[0] ?? "";
    const username = firstRdn.slice(firstRdn.indexOf("=") + 1).trim();
    const fail = (why: string): void => {
      log.error(`bind failed for ${dn}: ${why}`);
      next(new ldap.InvalidCredentialsError());
    };
    let rows: Record<string, unknown>[];
    try {
      rows = await directory.oneUser(username);
    } catch (err) {
      fail(`directory unavailable (${(err as Error).message})`);
      return;
    }
    const row = rows[0];
    if (!row) return fail("no such user");
    const hash = typeof row.password === "string" ? row.password : undefined;
    if (!(await verifyPassword(req.credentials, hash))) return fail("invalid credentials");
    if (cfg.authBackends.includes("notification") && cfg.notificationUrl) {
      log.info(`bind of ${username}: waiting for notification approval`);
      if (!(await askApproval(cfg.notificationUrl, username))) return fail("notification not approved");
    }
    log.info(`bind succeeded for ${dn}`);
    res.end();
    // next() lets ldapjs record the bound DN on the connection.
    next();
  };

  const wrap =
    <Q, R>(fn: (req: Q, res: R, next: Next) => Promise<void>) =>
    (req: Q, res: R, next: Next): void => {
      fn(req, res, next).catch((err: unknown) => next(new ldap.OperationsError((err as Error).message)));
    };

  // Binds under the base DN go to the sql (and notification) backend.
  server.bind(cfg.baseDn, wrap(bindHandler));
  // Anything else falls to the anonymous handler and succeeds with any
  // password; ldapjs then records that DN as the connection's identity, which
  // also satisfies REQUIRE_AUTH_FOR_SEARCH.
  server.bind("", (req: BindReq, res: BindRes, next: Next) => {
    if (!normalizeDn(req.dn.toString()).endsWith(normalizeDn(cfg.baseDn))) {
      log.debug(`bind outside the base DN accepted: ${req.dn.toString()}`);
    }
    res.end();
    next();
  });
  // Base and scope are ignored: one handler answers every search.
  server.search("", wrap(searchHandler));

  return {
    listen() {
      return new Promise((resolve, reject) => {
        raw.once("error", reject);
        server.listen(cfg.port, cfg.bindIp, () => {
          raw.off("error", reject);
          const addr = raw.address();
          resolve(
            typeof addr === "object" && addr
              ? { address: addr.address, port: addr.port }
              : { address: "", port: 0 },
          );
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        raw.close(() => {
          void directory.close().then(() => resolve());
        });
      });
    },
    connections: () => sockets.size,
  };
}
