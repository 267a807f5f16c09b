/**
 * The LDAP side of `POST /access/domains/{realm}/sync`, done the way Proxmox's PVE::LDAP / PVE::Auth::LDAP
 * do it (shared/reference/proxmox-ve-api.md, "How Proxmox syncs"): resolve server1, else server2, through
 * the node's DNS; connect with the realm's mode, port and verify setting (TLS 1.2); bind (anonymous without
 * bind_dn); one paged user search with the filter built from user_attr, Proxmox's user fields, the
 * sync_attributes sources and user_classes; a second connection for the paged group search reading only
 * `member` and `uniqueMember`. Members count only when their DN is the DN of a user of the same sync.
 */
import { Client, type Entry } from "ldapts";

export interface LdapRealmSettings {
  server1: string;
  server2?: string;
  port?: number;
  mode?: string;
  verify?: number;
  base_dn?: string;
  bind_dn?: string;
  user_attr: string;
  user_classes?: string;
  group_classes?: string;
  filter?: string;
  group_dn?: string;
  group_filter?: string;
  group_name_attr?: string;
  sync_attributes?: string;
  "case-sensitive"?: number;
}

export const DEFAULT_USER_CLASSES = "inetorgperson, posixaccount, person, user";
export const DEFAULT_GROUP_CLASSES = "groupOfNames, group, univentionGroup, ipausergroup";
/** Proxmox's own user fields, filled from attributes of the same name unless sync_attributes maps them. */
export const USER_FIELDS = ["enable", "expire", "firstname", "lastname", "email", "comment", "keys"] as const;
export type UserField = (typeof USER_FIELDS)[number];

export interface SyncedUser {
  userid: string;
  dn: string;
  fields: Partial<Record<UserField, string>>;
}

export interface SyncedGroup {
  groupid: string;
  dn: string;
  members: string[];
}

export interface RealmData {
  users: SyncedUser[];
  groups: SyncedGroup[] | undefined;
  server: string;
}

/** Resolves a server name to an IPv4 address the way the node would (its DNS settings). */
export type NameResolver = (host: string) => Promise<string>;

function list(s: string | undefined, fallback: string): string[] {
  return (s ?? fallback)
    .split(/[,;\s]+/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** `email=mail,firstname=givenname` -> { email: "mail", firstname: "givenname" } */
export function parseSyncAttributes(s: string | undefined): Partial<Record<UserField, string>> {
  const out: Partial<Record<UserField, string>> = {};
  for (const part of (s ?? "").split(",")) {
    const [k, v] = part.split("=").map((x) => x.trim());
    if (k && v && (USER_FIELDS as readonly string[]).includes(k)) out[k as UserField] = v;
  }
  return out;
}

/** The user search filter and attribute list, as PVE::LDAP::query_users builds them. */
export function userQuery(r: LdapRealmSettings): { filter: string; attributes: string[] } {
  const mapping = parseSyncAttributes(r.sync_attributes);
  const attrs = [...new Set([r.user_attr, ...USER_FIELDS, ...Object.values(mapping)])];
  let filter = `(|${attrs.map((a) => `(${a}=*)`).join("")})`;
  const classes = list(r.user_classes, DEFAULT_USER_CLASSES);
  if (classes.length) filter = `(&${filter}(|${classes.map((c) => `(objectclass=${c})`).join("")}))`;
  if (r.filter) filter = `(&${wrap(r.filter)}${filter})`;
  return { filter, attributes: [...attrs, "memberOf"] };
}

/** The group search filter and attributes, as PVE::LDAP::query_groups builds them. */
export function groupQuery(r: LdapRealmSettings): { filter: string; attributes: string[] } {
  const classes = list(r.group_classes, DEFAULT_GROUP_CLASSES);
  let filter = `(|${classes.map((c) => `(objectclass=${c})`).join("")})`;
  if (r.group_filter) filter = `(&${wrap(r.group_filter)}${filter})`;
  const attributes = ["member", "uniqueMember"];
  if (r.group_name_attr) attributes.push(r.group_name_attr);
  return { filter, attributes };
}

function wrap(f: string): string {
  return /^\(.*\)$/.test(f) ? f : `(${f})`;
}

function first(e: Entry, attr: string): string | undefined {
  const key = Object.keys(e).find((k) => k.toLowerCase() === attr.toLowerCase());
  const v = key === undefined ? undefined : e[key];
  const one = Array.isArray(v) ? v[0] : v;
  if (one === undefined) return undefined;
  return Buffer.isBuffer(one) ? one.toString("utf8") : String(one);
}

function all(e: Entry, attr: string): string[] {
  const key = Object.keys(e).find((k) => k.toLowerCase() === attr.toLowerCase());
  const v = key === undefined ? [] : e[key];
  return (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString("utf8") : String(x)));
}

export class RealmSyncError extends Error {}

/**
 * Opens a connection: server1, then server2 (name resolution and TCP/TLS both count), then the bind.
 * Returns the connected client and the server it reached.
 */
async function connect(
  r: LdapRealmSettings,
  password: string | undefined,
  resolve: NameResolver,
  log: (line: string) => void,
): Promise<{ client: Client; server: string }> {
  const mode = r.mode ?? "ldap";
  const port = r.port ?? (mode === "ldaps" ? 636 : 389);
  const errors: string[] = [];
  for (const server of [r.server1, r.server2].filter((s): s is string => !!s)) {
    let ip: string;
    try {
      ip = await resolve(server);
    } catch (err) {
      errors.push(`${server}: ${(err as Error).message}`);
      continue;
    }
    const tlsOptions = {
      rejectUnauthorized: !!r.verify,
      servername: server,
      minVersion: "TLSv1.2" as const,
      maxVersion: "TLSv1.2" as const,
    };
    const client = new Client({
      url: `${mode === "ldaps" ? "ldaps" : "ldap"}://${ip}:${port}`,
      connectTimeout: 5000,
      timeout: 30_000,
      ...(mode === "ldaps" ? { tlsOptions } : {}),
    });
    try {
      if (mode === "ldap+starttls") await client.startTLS(tlsOptions);
      // Anonymous simple bind (empty name) when no bind_dn is configured.
      await client.bind(r.bind_dn ?? "", r.bind_dn ? (password ?? "") : "");
      log(`connected to ${server} (${ip}:${port}, ${mode})`);
      return { client, server };
    } catch (err) {
      await client.unbind().catch(() => undefined);
      errors.push(`${server}: ${(err as Error).message}`);
    }
  }
  throw new RealmSyncError(`LDAP connect failed - ${errors.join("; ")}`);
}

/** Reads users (and groups when asked) from the realm's servers. */
export async function fetchRealmData(
  realm: string,
  r: LdapRealmSettings,
  opts: { password?: string; groups: boolean; resolve: NameResolver; log: (line: string) => void },
): Promise<RealmData> {
  if (!r.base_dn) throw new RealmSyncError("no base_dn configured");
  const caseSensitive = r["case-sensitive"] !== 0;
  const mapping = parseSyncAttributes(r.sync_attributes);
  const uq = userQuery(r);
  const { client, server } = await connect(r, opts.password, opts.resolve, opts.log);
  const users: SyncedUser[] = [];
  try {
    opts.log(`searching users under '${r.base_dn}' with filter ${uq.filter}`);
    const res = await client.search(r.base_dn, {
      scope: "sub",
      filter: uq.filter,
      attributes: uq.attributes,
      // Paging stops when a reply carries no paged control, as the gateway's replies do.
      paged: { pageSize: 900 },
    });
    for (const e of res.searchEntries) {
      let name = first(e, r.user_attr);
      if (!name) continue;
      if (!caseSensitive) name = name.toLowerCase();
      const fields: SyncedUser["fields"] = {};
      for (const f of USER_FIELDS) {
        const v = first(e, mapping[f] ?? f);
        if (v !== undefined) fields[f] = v;
      }
      users.push({ userid: `${name}@${realm}`, dn: e.dn, fields });
    }
    opts.log(`got ${users.length} users from ${server}`);
  } catch (err) {
    throw new RealmSyncError(`user search failed - ${(err as Error).message}`);
  } finally {
    await client.unbind().catch(() => undefined);
  }
  if (!opts.groups) return { users, groups: undefined, server };

  const gq = groupQuery(r);
  const byDn = new Map(users.map((u) => [u.dn.toLowerCase(), u.userid]));
  const groups: SyncedGroup[] = [];
  // Proxmox opens a second connection for the groups.
  const second = await connect(r, opts.password, opts.resolve, opts.log);
  try {
    const base = r.group_dn ?? r.base_dn;
    opts.log(`searching groups under '${base}' with filter ${gq.filter}`);
    const res = await second.client.search(base, {
      scope: "sub",
      filter: gq.filter,
      attributes: gq.attributes,
      paged: { pageSize: 100 },
    });
    for (const e of res.searchEntries) {
      const rdnValue = /^[^=]+=((?:\\,|[^,])*)/.exec(e.dn)?.[1]?.replace(/\\,/g, ",");
      let name = (r.group_name_attr ? first(e, r.group_name_attr) : undefined) ?? rdnValue;
      if (!name) continue;
      if (!caseSensitive) name = name.toLowerCase();
      const members = new Set<string>();
      for (const dn of [...all(e, "member"), ...all(e, "uniqueMember")]) {
        const uid = byDn.get(dn.toLowerCase());
        if (uid) members.add(uid);
      }
      groups.push({ groupid: `${name}-${realm}`, dn: e.dn, members: [...members].sort() });
    }
    opts.log(`got ${groups.length} groups from ${second.server}`);
  } catch (err) {
    throw new RealmSyncError(`group search failed - ${(err as Error).message}`);
  } finally {
    await second.client.unbind().catch(() => undefined);
  }
  return { users, groups, server };
}
