// The slice of ldapjs's request/response objects the stand-in uses (its
// bundled types predate v3).

export interface LdapDn {
  toString(): string;
}
export interface Conn {
  ldap: { bindDN: LdapDn; id: string };
}
export interface SearchReq {
  dn: LdapDn;
  scopeName: string;
  filter: { toString(): string };
  /** Requested attribute names as the client sent them (case kept). */
  attributes: string[];
  connection: Conn;
}
export interface BindReq {
  dn: LdapDn;
  credentials: string;
  connection: Conn;
}
export interface SearchRes {
  /** The requested names, compared by ldapjs against lower-cased entry attribute names. */
  attributes: string[];
  send(entry: unknown): void;
  createSearchEntry(obj: { objectName: string; attributes: unknown[] }): unknown;
  end(): void;
}
export interface BindRes {
  end(): void;
}
export type Next = (err?: unknown) => void;
