// The gateway does not evaluate LDAP filters: it matches the filter's text
// against a few patterns and runs one of the four queries. Base DN, scope,
// size limits and paging are ignored. These rules reproduce what the
// reference saw: `(uid=alice)` finds alice, `(uid=al*)` and `(mail=...)`
// find nothing, any posixAccount filter lists every user, and Proxmox's sync
// filters match loosely on `uid=*` and `objectclass=groupOfNames`.

export type Route =
  | { kind: "oneUser"; uid: string }
  | { kind: "allUsers" }
  | { kind: "groupsByMember"; uid: string }
  | { kind: "allGroups" }
  | { kind: "none" };

/** Undoes RFC 4515 escapes (`\2a`) in a filter value. */
function unescapeValue(v: string): string {
  return v.replace(/\\([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

export function routeFilter(filter: string): Route {
  // memberUid first: SSSD's initgroups filter also names posixGroup, and
  // "memberuid=x" contains "uid=x".
  const member = /\(memberuid=([^)]*)\)/i.exec(filter);
  if (member && !member[1]!.includes("*")) return { kind: "groupsByMember", uid: unescapeValue(member[1]!) };
  const uid = /\(uid=([^)]*)\)/i.exec(filter);
  if (uid) {
    const value = uid[1]!;
    if (value === "*") return { kind: "allUsers" };
    if (value.includes("*")) return { kind: "none" };
    return { kind: "oneUser", uid: unescapeValue(value) };
  }
  if (/objectclass=(posixaccount|inetorgperson|person)\)/i.test(filter)) return { kind: "allUsers" };
  if (/objectclass=(posixgroup|groupofnames)\)/i.test(filter)) return { kind: "allGroups" };
  return { kind: "none" };
}
