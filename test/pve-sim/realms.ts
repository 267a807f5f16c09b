/**
 * Authentication realms of the simulated cluster (`/access/domains`), the users and groups a realm sync
 * records (`/access/users`, `/access/groups`), and the sync task itself, which really queries the realm's
 * LDAP servers (realm-sync.ts). Parameters, defaults, validation, digest and messages follow
 * shared/reference/proxmox-ve-api.md ("LDAP realm", and "Realms" under "More facts read from the sources":
 * prefixed write errors, required options checked inside the lock, sorted property strings). The state
 * lives in the simulator's `ext` room, so it is persisted with the rest of the state file.
 */
import { createHash } from "node:crypto";
import { Resolver } from "node:dns/promises";
import { checkAnyPriv, checkPriv } from "./auth.js";
import type { SimCore } from "./core.js";
import { fail, paramError, PveError } from "./errors.js";
import { routeInput, type RouteContext } from "./router.js";
import {
  DNS_NAME_RE,
  isIP,
  isIPv4,
  parsePropertyString,
  validate,
  type ParamSpec,
  type Schema,
} from "./schema.js";
import {
  fetchRealmData,
  USER_FIELDS,
  type LdapRealmSettings,
  type RealmData,
  type UserField,
} from "./realm-sync.js";

export type RealmConfig = Record<string, string | number> & { type: string };

export interface AccessUser {
  userid: string;
  enable: number;
  expire: number;
  firstname?: string;
  lastname?: string;
  email?: string;
  comment?: string;
  keys?: string;
}

export interface AccessGroup {
  groupid: string;
  comment?: string;
  members: string[];
}

interface RealmState {
  realms: Record<string, RealmConfig>;
  /** Bind passwords, kept apart from the config (PVE keeps them in priv/realm/). */
  passwords: Record<string, string>;
  users: Record<string, AccessUser>;
  groups: Record<string, AccessGroup>;
}

const BUILTIN: Record<string, RealmConfig> = {
  pam: { type: "pam", comment: "Linux PAM standard authentication" },
  pve: { type: "pve", comment: "Proxmox VE authentication server" },
};

function realmState(core: SimCore): RealmState {
  const ext = core.store.data.ext as { realms?: RealmState };
  ext.realms ??= { realms: structuredClone(BUILTIN), passwords: {}, users: {}, groups: {} };
  return ext.realms;
}

/** SHA-1 over the whole realm configuration, like the digest of PVE's domains.cfg. */
function digest(s: RealmState): string {
  return createHash("sha1").update(JSON.stringify(s.realms)).digest("hex");
}

const DN_PATTERN = /^\w+=[^,]+(,\s*\w+=[^,]+)*$/;
const REALM_RE = /^[A-Za-z][A-Za-z0-9.\-_]+$/;
const SIMPLE_ATTR_RE = /^[a-zA-Z0-9\-_]+$/;
const REMOVE_VANISHED_RE = /^(?:(?:(?:acl|properties|entry);)*(?:acl|properties|entry)|none)$/;

const address = (v: string): string | undefined =>
  isIP(v) || DNS_NAME_RE.test(v) ? undefined : `value does not look like a valid address: ${v}`;

const attrList = (v: string): string | undefined => {
  for (const a of v.split(/[,;\s]+/).filter(Boolean)) {
    if (!SIMPLE_ATTR_RE.test(a)) return `value '${a}' does not look like a simple ldap attribute name`;
  }
  return undefined;
};

/** The `realm-sync-options` property string: scope, enable-new, remove-vanished (full/purge are deprecated). */
function syncOptionsFormat(v: string): string | undefined {
  const parsed = parsePropertyString(v);
  if (typeof parsed === "string") return parsed;
  for (const [k, val] of parsed) {
    if (k === "scope") {
      if (!["users", "groups", "both"].includes(val))
        return `scope: value '${val}' does not have a value in the enumeration 'users, groups, both'`;
    } else if (k === "enable-new" || k === "full" || k === "purge") {
      if (!/^(0|1|true|false|yes|no|on|off)$/i.test(val))
        return `${k}: type check ('boolean') failed - got '${val}'`;
    } else if (k === "remove-vanished") {
      if (!REMOVE_VANISHED_RE.test(val)) return `remove-vanished: value does not match the regex pattern`;
    } else {
      return `property is not defined in schema and the schema does not allow additional properties: ${k}`;
    }
  }
  return undefined;
}

const BOOLEAN_SYNC_OPTIONS = new Set(["enable-new", "full", "purge"]);
const TRUE_RE = /^(1|true|yes|on)$/i;

/**
 * `sync-defaults-options` as PVE stores and reads it back: parsed and printed again with sorted keys and
 * booleans as 1/0; on writes the deprecated `full`/`purge` become `remove-vanished` (entry;properties,
 * acl) unless that is given. The value has passed syncOptionsFormat.
 */
export function normaliseSyncOptions(value: string, dropDeprecated = true): string {
  const parsed = parsePropertyString(value);
  if (typeof parsed === "string") return value;
  const opts = new Map(
    [...parsed].map(([k, v]) => [k, BOOLEAN_SYNC_OPTIONS.has(k) ? (TRUE_RE.test(v) ? "1" : "0") : v]),
  );
  if (!opts.has("remove-vanished") && (opts.get("full") === "1" || opts.get("purge") === "1")) {
    const vanished = [...(opts.get("full") === "1" ? ["entry", "properties"] : [])];
    if (opts.get("purge") === "1") vanished.push("acl");
    opts.set("remove-vanished", vanished.join(";"));
  }
  if (dropDeprecated) for (const k of ["full", "purge"]) opts.delete(k);
  return [...opts.keys()]
    .sort()
    .map((k) => `${k}=${opts.get(k)!}`)
    .join(",");
}

const str = (extra: Partial<ParamSpec> = {}): ParamSpec => ({ type: "string", optional: true, ...extra });
const bool: ParamSpec = { type: "boolean", optional: true };

/** Options of an LDAP realm, as PVE::Auth::LDAP declares them (no defaults stored: PVE keeps only what was set). */
const LDAP_OPTIONS: Record<string, ParamSpec> = {
  server1: str({ optional: false, maxLength: 256, format: address }),
  server2: str({ maxLength: 256, format: address }),
  base_dn: str({ optional: false, maxLength: 256, pattern: DN_PATTERN }),
  user_attr: str({ optional: false, maxLength: 256, pattern: /^\S{2,}$/ }),
  bind_dn: str({ maxLength: 256, pattern: DN_PATTERN }),
  password: str(),
  port: { type: "integer", optional: true, minimum: 1, maximum: 65535 },
  mode: str({ enum: ["ldap", "ldaps", "ldap+starttls"] }),
  secure: bool,
  verify: bool,
  sslversion: str({ enum: ["tlsv1", "tlsv1_1", "tlsv1_2", "tlsv1_3"] }),
  capath: str(),
  cert: str(),
  certkey: str(),
  filter: str({ maxLength: 2048 }),
  sync_attributes: str({ pattern: /^\w+=[^,]+(,\s*\w+=[^,]+)*$/ }),
  "sync-defaults-options": str({ format: syncOptionsFormat }),
  user_classes: str({ format: attrList }),
  group_classes: str({ format: attrList }),
  group_dn: str({ maxLength: 256, pattern: DN_PATTERN }),
  group_filter: str({ maxLength: 2048 }),
  group_name_attr: str({
    format: (v) =>
      SIMPLE_ATTR_RE.test(v) ? undefined : "value does not look like a simple ldap attribute name",
  }),
  "case-sensitive": bool,
  "check-connection": bool,
};

/** Checked only when the config is checked, inside the lock: their absence is a 500, not a 400. */
const REQUIRED_LDAP_OPTIONS = ["server1", "base_dn", "user_attr"] as const;

const COMMON_OPTIONS: Record<string, ParamSpec> = {
  comment: str({ maxLength: 4096 }),
  default: bool,
  tfa: str(),
};

const realmSpec: ParamSpec = {
  type: "string",
  maxLength: 32,
  format: (v) => (REALM_RE.test(v) ? undefined : "value does not look like a valid realm"),
};

/**
 * Runs a change of domains.cfg as PVE's lock_domain_config does: every error inside (not the parameter
 * checks before) carries the operation's prefix, e.g. `add auth server failed: `.
 */
async function locked<T>(prefix: string, change: () => T | Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new PveError(500, `${prefix}: ${message}`);
  }
}

/** Keys that are not stored in the realm config. */
const NOT_STORED = new Set(["realm", "password", "check-connection", "delete", "digest"]);

/** DNS servers of a simulation that listen on another port than 53 (the site DNS stand-in when not root). */
const dnsPorts = new WeakMap<SimCore, Map<string, number>>();

/** Tells the node resolver of this simulator that the DNS server at `ip` answers on `port`. */
export function setDnsPort(core: SimCore, ip: string, port: number): void {
  let m = dnsPorts.get(core);
  if (!m) dnsPorts.set(core, (m = new Map()));
  m.set(ip, port);
}

export function registerRealms(core: SimCore): void {
  const r = core.router;

  // The list is public: the login box needs it before anyone is authenticated.
  r.get(
    "/access/domains",
    () =>
      Object.entries(realmState(core).realms).map(([realm, c]) => ({
        realm,
        type: c.type,
        ...(c.comment !== undefined ? { comment: c.comment } : {}),
        ...(c.tfa !== undefined ? { tfa: c.tfa } : {}),
        ...(c.default ? { default: 1 } : {}),
      })),
    { auth: false },
  );

  r.post("/access/domains", async (c: RouteContext) => {
    checkPriv(c.identity, "/access/realm", ["Realm.Allocate"]);
    const type = String(c.input["type"] ?? "");
    const schema: Schema = {
      properties: {
        realm: realmSpec,
        type: { type: "string", enum: ["ad", "ldap", "openid", "pam", "pve"] },
        ...COMMON_OPTIONS,
        ...(type === "ldap" ? optionalAll(LDAP_OPTIONS) : {}),
      },
    };
    const p = validate(schema, c.input);
    const s = realmState(core);
    const realm = String(p["realm"]);
    await locked("add auth server failed", async () => {
      if (s.realms[realm]) throw fail(`domain '${realm}' already exists`);
      if (type === "pam" || type === "pve") throw fail(`unable to create builtin type '${type}'`);
      if (type !== "ldap") throw fail(`realm type '${type}' is not supported by the simulator`);
      const cfg: RealmConfig = { type };
      for (const [k, v] of Object.entries(p)) if (!NOT_STORED.has(k) && k !== "type") cfg[k] = v;
      normaliseStored(cfg);
      const missing = REQUIRED_LDAP_OPTIONS.find((k) => cfg[k] === undefined);
      if (missing) throw fail(`missing value for required option '${missing}'`);
      if (p["check-connection"]) await checkConnection(core, realm, cfg, p["password"]);
      if (cfg["default"]) clearDefault(s);
      else delete cfg["default"];
      s.realms[realm] = cfg;
      if (p["password"] !== undefined) s.passwords[realm] = String(p["password"]);
      core.store.changed();
    });
    return null;
  });

  r.get("/access/domains/{realm}", (c: RouteContext) => {
    const realm = c.params["realm"]!;
    checkAnyPriv(c.identity, `/access/realm/${realm}`, ["Realm.Allocate", "Sys.Audit"]);
    routeInput(c, { properties: { realm: realmSpec } });
    const s = realmState(core);
    const cfg = s.realms[realm];
    if (!cfg) throw fail(`domain '${realm}' does not exist`);
    const shown = { ...cfg };
    if (typeof shown["sync-defaults-options"] === "string")
      shown["sync-defaults-options"] = normaliseSyncOptions(shown["sync-defaults-options"], false);
    return { ...shown, digest: digest(s) };
  });

  r.put("/access/domains/{realm}", async (c: RouteContext) => {
    const realm = c.params["realm"]!;
    checkPriv(c.identity, "/access/realm", ["Realm.Allocate"]);
    const s = realmState(core);
    const builtin = s.realms[realm] !== undefined && s.realms[realm].type !== "ldap";
    const schema: Schema = {
      properties: {
        realm: realmSpec,
        ...COMMON_OPTIONS,
        ...(builtin ? {} : optionalAll(LDAP_OPTIONS)),
        delete: str({ maxLength: 4096 }),
        digest: str({ maxLength: 40 }),
      },
    };
    const p = validate(schema, { ...c.input, realm });
    const deletes = String(p["delete"] ?? "")
      .split(/[,;\s]+/)
      .filter(Boolean);
    for (const k of deletes) {
      if (!(k in schema.properties) || (NOT_STORED.has(k) && k !== "password"))
        throw paramError({ delete: `invalid option '${k}'` });
      if (k in p) throw paramError({ delete: `cannot set and delete '${k}' at the same time` });
    }
    await locked("update auth server failed", async () => {
      if (p["digest"] !== undefined && p["digest"] !== digest(s))
        throw fail("detected modified configuration - file changed by other user? Try again.");
      const cfg = s.realms[realm];
      if (!cfg) throw fail(`domain '${realm}' does not exist`);
      const changes = Object.keys(p).filter((k) => !NOT_STORED.has(k));
      if (!deletes.length && !changes.length && p["password"] === undefined)
        throw fail("no options specified");
      const next: RealmConfig = { ...cfg };
      for (const k of deletes) {
        if (cfg.type === "ldap" && LDAP_OPTIONS[k]?.optional === false)
          throw fail(`cannot delete required option '${k}'`);
        delete next[k];
      }
      for (const k of changes) next[k] = p[k]!;
      normaliseStored(next);
      if (p["check-connection"])
        await checkConnection(core, realm, next, p["password"] ?? s.passwords[realm]);
      if (next["default"]) clearDefault(s);
      else delete next["default"];
      s.realms[realm] = next;
      if (deletes.includes("password")) delete s.passwords[realm];
      if (p["password"] !== undefined) s.passwords[realm] = String(p["password"]);
      core.store.changed();
    });
    return null;
  });

  r.delete("/access/domains/{realm}", async (c: RouteContext) => {
    const realm = c.params["realm"]!;
    checkPriv(c.identity, "/access/realm", ["Realm.Allocate"]);
    routeInput(c, { properties: { realm: realmSpec } });
    const s = realmState(core);
    await locked("delete auth server failed", () => {
      const cfg = s.realms[realm];
      if (!cfg) throw fail(`authentication domain '${realm}' does not exist`);
      // inferred text: PVE re-adds pam and pve whenever it reads domains.cfg.
      if (cfg.type === "pam" || cfg.type === "pve") throw fail(`can't remove builtin realm '${realm}'`);
      delete s.realms[realm];
      delete s.passwords[realm];
      core.store.changed();
    });
    return null;
  });

  r.post("/access/domains/{realm}/sync", (c: RouteContext) => {
    const realm = c.params["realm"]!;
    const p = validate(
      {
        properties: {
          realm: realmSpec,
          scope: str({ enum: ["users", "groups", "both"] }),
          "dry-run": bool,
          "enable-new": bool,
          "remove-vanished": str({ pattern: REMOVE_VANISHED_RE }),
          full: bool,
          purge: bool,
        },
      },
      { ...c.input, realm },
    );
    checkPriv(c.identity, `/access/realm/${realm}`, ["Realm.AllocateUser"]);
    checkPriv(c.identity, "/access/groups", ["User.Modify"]);
    const s = realmState(core);
    const cfg = s.realms[realm];
    if (!cfg) throw paramError({ realm: "Realm does not exist." });
    if (cfg.type !== "ldap" && cfg.type !== "ad")
      throw fail(`Cannot sync realm type '${cfg.type}'! Only LDAP/AD realms can be synced.`);
    const defaults = parsePropertyString(String(cfg["sync-defaults-options"] ?? ""));
    const def = typeof defaults === "string" ? new Map<string, string>() : defaults;
    const scope = p["scope"] ?? def.get("scope");
    if (scope === undefined)
      throw paramError({ scope: "Not passed as parameter and not defined in realm default sync options." });
    const truthy = (v: string | number | undefined): boolean | undefined =>
      v === undefined ? undefined : /^(1|true|yes|on)$/i.test(String(v));
    const options: SyncOptions = {
      scope: String(scope) as SyncOptions["scope"],
      dryRun: !!p["dry-run"],
      enableNew: truthy(p["enable-new"] ?? def.get("enable-new")) ?? true,
      removeVanished: String(p["remove-vanished"] ?? def.get("remove-vanished") ?? "none")
        .split(";")
        .filter((x) => x && x !== "none"),
    };
    // The sync runs on the node that received the request: the simulator's endpoint is its first node.
    const node = core.config.nodes[0] ?? "pve";
    const type = options.dryRun ? "auth-realm-sync-test" : "auth-realm-sync";
    return core.tasks.start(node, type, realm, c.identity.authid, async (t) => {
      t.log(`starting sync for realm ${realm}`);
      await t.sleep(core.config.durations.realmSync);
      const data = await fetchRealmData(realm, cfg as unknown as LdapRealmSettings, {
        password: s.passwords[realm],
        groups: options.scope !== "users",
        resolve: nodeResolver(core, node),
        log: (line) => t.log(line),
      });
      t.log("got data from server, updating users and groups");
      applySync(core, realm, data, options, (line) => t.log(line));
      t.log(`successfully synced realm ${realm}${options.dryRun ? " (dry run, nothing changed)" : ""}`);
    });
  });

  // What the syncs recorded.
  const canSeeUsers = (c: RouteContext) =>
    checkAnyPriv(c.identity, "/access/groups", ["User.Modify", "Sys.Audit"]);
  r.get("/access/users", (c: RouteContext) => {
    canSeeUsers(c);
    const s = realmState(core);
    return Object.values(s.users).map((u) => ({
      ...u,
      "realm-type": s.realms[realmOf(u.userid)]?.type ?? "ldap",
    }));
  });
  r.get("/access/users/{userid}", (c: RouteContext) => {
    canSeeUsers(c);
    const s = realmState(core);
    const u = s.users[c.params["userid"]!];
    if (!u) throw fail(`no such user ('${c.params["userid"]!}')`);
    const groups = Object.values(s.groups)
      .filter((g) => g.members.includes(u.userid))
      .map((g) => g.groupid);
    const { userid: _userid, ...rest } = u;
    return { ...rest, groups };
  });
  r.get("/access/groups", (c: RouteContext) => {
    canSeeUsers(c);
    return Object.values(realmState(core).groups).map((g) => ({
      groupid: g.groupid,
      ...(g.comment !== undefined ? { comment: g.comment } : {}),
      users: g.members.join(","),
    }));
  });
  r.get("/access/groups/{groupid}", (c: RouteContext) => {
    canSeeUsers(c);
    const g = realmState(core).groups[c.params["groupid"]!];
    if (!g) throw fail(`group '${c.params["groupid"]!}' does not exist`);
    return { members: [...g.members], ...(g.comment !== undefined ? { comment: g.comment } : {}) };
  });
}

function optionalAll(specs: Record<string, ParamSpec>): Record<string, ParamSpec> {
  return Object.fromEntries(Object.entries(specs).map(([k, v]) => [k, { ...v, optional: true }]));
}

/** Stores property strings the way PVE prints them back (sorted keys). */
function normaliseStored(cfg: RealmConfig): void {
  if (typeof cfg["sync-defaults-options"] === "string")
    cfg["sync-defaults-options"] = normaliseSyncOptions(cfg["sync-defaults-options"]);
}

function clearDefault(s: RealmState): void {
  for (const c of Object.values(s.realms)) delete c["default"];
}

function realmOf(userid: string): string {
  return userid.slice(userid.lastIndexOf("@") + 1);
}

/**
 * Name resolution as the node does it: its DNS servers (`/nodes/{node}/dns`), the search domains tried
 * first for a bare name. DNS servers of the simulation that do not listen on port 53 are reached on their port.
 */
export function nodeResolver(core: SimCore, node: string) {
  return async (host: string): Promise<string> => {
    if (isIPv4(host)) return host;
    const dns = core.store.data.dns[node] ?? core.config.dns;
    const ports = dnsPorts.get(core) ?? new Map<string, number>();
    const servers = [dns.dns1, dns.dns2, dns.dns3]
      .filter((x): x is string => !!x)
      .map((ip) => `${ip}:${ports.get(ip) ?? 53}`);
    if (!servers.length) throw new Error(`no DNS server configured on node '${node}'`);
    const resolver = new Resolver({ timeout: 1000, tries: 2 });
    resolver.setServers(servers);
    // Every search domain of resolv.conf, as the node's resolver tries them (GET shows only the first).
    const domains = host.includes(".") ? [] : (dns.search ?? "").split(/\s+/).filter(Boolean);
    const names = [...domains.map((d) => `${host}.${d}`), host];
    let last: unknown;
    for (const name of names) {
      try {
        const [ip] = await resolver.resolve4(name);
        if (ip) return ip;
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`name resolution failed (${(last as Error | undefined)?.message ?? "no address"})`);
  };
}

async function checkConnection(
  core: SimCore,
  realm: string,
  cfg: RealmConfig,
  password: unknown,
): Promise<void> {
  try {
    // A user search is more than PVE's bind-only check, but it is what fails when the servers are gone.
    await fetchRealmData(realm, cfg as unknown as LdapRealmSettings, {
      ...(password !== undefined ? { password: String(password) } : {}),
      groups: false,
      resolve: nodeResolver(core, core.config.nodes[0] ?? "pve"),
      log: () => undefined,
    });
  } catch (err) {
    throw fail((err as Error).message);
  }
}

interface SyncOptions {
  scope: "users" | "groups" | "both";
  dryRun: boolean;
  enableNew: boolean;
  /** Subset of acl, entry, properties. */
  removeVanished: string[];
}

/** Applies what the servers returned to /access/users and /access/groups, as PVE's sync does. */
function applySync(
  core: SimCore,
  realm: string,
  data: RealmData,
  o: SyncOptions,
  log: (l: string) => void,
): void {
  const s = realmState(core);
  const users = o.dryRun ? structuredClone(s.users) : s.users;
  const groups = o.dryRun ? structuredClone(s.groups) : s.groups;
  const rv = o.removeVanished.join(";") || "none";
  const ofRealm = (id: string) => id.endsWith(`@${realm}`);

  if (o.scope !== "groups") {
    log(`syncing users (remove-vanished opts: ${rv})`);
    const seen = new Set<string>();
    for (const su of data.users) {
      seen.add(su.userid);
      const existing = users[su.userid];
      if (!existing) {
        const u: AccessUser = { userid: su.userid, enable: o.enableNew ? 1 : 0, expire: 0 };
        copyFields(u, su.fields);
        users[su.userid] = u;
        log(`adding user '${su.userid}'`);
      } else {
        if (o.removeVanished.includes("properties")) {
          for (const f of USER_FIELDS)
            if (f !== "enable" && f !== "expire" && !(f in su.fields)) delete existing[f];
        }
        copyFields(existing, su.fields);
        log(`updating user '${su.userid}'`);
      }
    }
    for (const id of Object.keys(users).filter((u) => ofRealm(u) && !seen.has(u))) {
      if (o.removeVanished.includes("acl")) log(`removing acls of vanished user '${id}'`);
      if (o.removeVanished.includes("entry")) {
        delete users[id];
        for (const g of Object.values(groups)) g.members = g.members.filter((m) => m !== id);
        log(`removing vanished user '${id}'`);
      }
    }
  }

  if (o.scope !== "users" && data.groups) {
    log(`syncing groups (remove-vanished opts: ${rv})`);
    const seen = new Set<string>();
    for (const sg of data.groups) {
      seen.add(sg.groupid);
      const members = sg.members.filter((m) => users[m] !== undefined);
      const existing = groups[sg.groupid];
      if (!existing) {
        groups[sg.groupid] = { groupid: sg.groupid, members };
        log(`adding group '${sg.groupid}' (${members.length} member${members.length === 1 ? "" : "s"})`);
      } else {
        existing.members = members;
        log(`updating group '${sg.groupid}' (${members.length} member${members.length === 1 ? "" : "s"})`);
      }
    }
    for (const id of Object.keys(groups).filter((g) => g.endsWith(`-${realm}`) && !seen.has(g))) {
      if (o.removeVanished.includes("acl")) log(`removing acls of vanished group '${id}'`);
      if (o.removeVanished.includes("entry")) {
        delete groups[id];
        log(`removing vanished group '${id}'`);
      }
    }
  }
  if (!o.dryRun) core.store.changed();
}

function copyFields(u: AccessUser, fields: Partial<Record<UserField, string>>): void {
  for (const [k, v] of Object.entries(fields) as [UserField, string][]) {
    if (k === "enable" || k === "expire") u[k] = Number(v) || 0;
    else u[k] = v;
  }
}
