// Reads users and groups from the management database through the four
// SQL_QUERY_* texts and turns rows into the gateway's flat entries:
// uid=<name>,<base> and cn=<name>,<base>.
import pg from "pg";
import type { GatewayConfig } from "./config.js";
import type { Logger } from "./log.js";

export interface Entry {
  dn: string;
  attributes: Record<string, string | string[]>;
}

/** A row the gateway cannot turn into an entry (NULL id numbers). */
export class RowError extends Error {}

/**
 * Turns the queries' `?` placeholders into pg's `$n`, leaving quoted
 * identifiers and string literals alone.
 */
export function toPgPlaceholders(sql: string): string {
  let out = "";
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === "?") {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

type Row = Record<string, unknown>;

function str(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  const s = String(v);
  return s === "" ? undefined : s;
}

/** Array columns come back as arrays; a NULL element is the literal "null" (as in the real gateway). */
function list(v: unknown): string[] | undefined {
  if (v === null || v === undefined) return undefined;
  if (Array.isArray(v)) return v.map((x) => String(x));
  return [String(v)];
}

export class Directory {
  private readonly pool: pg.Pool;
  private readonly q: GatewayConfig["queries"];

  constructor(
    private readonly cfg: GatewayConfig,
    private readonly log: Logger,
  ) {
    this.pool = new pg.Pool({
      connectionString: cfg.sqlUri,
      ...(cfg.sqlSsl === undefined
        ? {}
        : {
            ssl: cfg.sqlSsl
              ? { rejectUnauthorized: process.env.NODE_TLS_REJECT_UNAUTHORIZED !== "0" }
              : false,
          }),
      max: 10,
      // No connection or statement timeout, on purpose: a database that
      // accepts but never answers must hang searches as it does in production.
    });
    this.pool.on("error", (err) => this.log.warn(`database connection error: ${err.message}`));
    this.q = {
      allUsers: toPgPlaceholders(cfg.queries.allUsers),
      oneUser: toPgPlaceholders(cfg.queries.oneUser),
      allGroups: toPgPlaceholders(cfg.queries.allGroups),
      groupsByMember: toPgPlaceholders(cfg.queries.groupsByMember),
    };
  }

  private async rows(sql: string, params: unknown[]): Promise<Row[]> {
    const res = await this.pool.query<Row>(sql, params);
    return res.rows;
  }

  allUsers(): Promise<Row[]> {
    return this.rows(this.q.allUsers, []);
  }
  oneUser(uid: string): Promise<Row[]> {
    return this.rows(this.q.oneUser, [uid]);
  }
  allGroups(): Promise<Row[]> {
    return this.rows(this.q.allGroups, []);
  }
  groupsByMember(uid: string): Promise<Row[]> {
    return this.rows(this.q.groupsByMember, [uid]);
  }

  userEntry(row: Row): Entry {
    const username = str(row.username);
    const uidNumber = str(row.uid_number);
    const gidNumber = str(row.gid_number);
    if (!username || uidNumber === undefined || gidNumber === undefined) {
      throw new RowError(`user row without username, uid_number or gid_number (${username ?? "?"})`);
    }
    const first = str(row.first_name);
    const last = str(row.last_name);
    const cn = str(row.full_name) ?? ([first, last].filter(Boolean).join(" ") || username);
    const attributes: Record<string, string | string[]> = {
      objectClass: ["top", "posixAccount", "inetOrgPerson"],
      uid: username,
      uidNumber,
      gidNumber,
      cn,
      mail: str(row.mail) ?? `${username}@${this.cfg.domain}`,
      homeDirectory: str(row.home_directory) ?? `/home/${username}`,
      loginShell: str(row.login_shell) ?? str(row.shell) ?? "/bin/bash",
      sn: last ?? username,
      gecos: cn,
    };
    if (first) attributes.givenName = first;
    return { dn: `uid=${username},${this.cfg.baseDn}`, attributes };
  }

  groupEntry(row: Row): Entry {
    const name = str(row.name);
    const gidNumber = str(row.gid_number);
    if (!name || gidNumber === undefined)
      throw new RowError(`group row without name or gid_number (${name ?? "?"})`);
    const attributes: Record<string, string | string[]> = {
      objectClass: ["posixGroup"],
      cn: name,
      gidNumber,
    };
    const memberUids = list(row.member_uids);
    if (memberUids && memberUids.length) attributes.memberUid = memberUids;
    const members = list(row.members);
    if (members && members.length) attributes.member = members;
    return { dn: `cn=${name},${this.cfg.baseDn}`, attributes };
  }

  async close(): Promise<void> {
    await this.pool.end().catch(() => undefined);
  }
}
