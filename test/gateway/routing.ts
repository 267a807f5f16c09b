// The gateway does not evaluate LDAP filters under its base DN: it matches
// the filter's text (and the requested attribute names) against a few
// patterns, in this order, and runs one of the four queries. Base DN, scope,
// size limits and paging are ignored. What the reference saw follows from the
// order: `(uid=alice)` finds alice, `(uid=al*)` and `(mail=...)` find nothing,
// any posixAccount filter lists every user, `cn=`/`gidNumber=` pick groups,
// asking only for `cn` (or for gidNumber/memberUid) means groups, and
// `(objectClass=*)` or `(objectClass=top)` lists every user, then every group.

export type Route =
  | { kind: "oneUser"; uid: string }
  | { kind: "allUsers" }
  | {
      kind: "groups";
      /** Groups of this member (SQL_QUERY_GROUPS_BY_MEMBER), else every group. */
      member?: string;
      /** Only the group with this name and/or number. */
      cn?: string;
      gidNumber?: string;
    }
  | { kind: "mixed" }
  | { kind: "none" };

/** Undoes RFC 4515 escapes (`\2a`) in a filter value. */
function unescapeValue(v: string): string {
  return v.replace(/\\([0-9a-fA-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

/** The first `(attr=value)` of the filter, unescaped; undefined when absent or `*`. */
function firstValue(filter: string, attr: string): string | undefined {
  const m = new RegExp(`\\(${attr}=([^)]*)\\)`, "i").exec(filter);
  if (!m || m[1] === "*") return undefined;
  return unescapeValue(m[1]!);
}

function userRoute(filter: string): Route | undefined {
  const uid = /\(uid=([^)]*)\)/i.exec(filter)?.[1];
  if (uid !== undefined && uid !== "*") {
    return uid.includes("*") ? { kind: "none" } : { kind: "oneUser", uid: unescapeValue(uid) };
  }
  if (/uid=\*/i.test(filter) || /objectclass=(posixaccount|inetorgperson|person)\)/i.test(filter)) {
    return { kind: "allUsers" };
  }
  return undefined;
}

function isGroupSearch(filter: string, attributes: readonly string[]): boolean {
  return (
    /objectclass=(posixgroup|groupofnames)\)/i.test(filter) ||
    /(memberuid|gidnumber|cn)=/i.test(filter) ||
    attributes.includes("gidNumber") ||
    attributes.includes("memberUid") ||
    (attributes.length === 1 && attributes[0] === "cn")
  );
}

function groupRoute(filter: string): Route {
  const member = firstValue(filter, "memberuid");
  const cn = firstValue(filter, "cn");
  const gidNumber = firstValue(filter, "gidnumber");
  return {
    kind: "groups",
    ...(member !== undefined && !member.includes("*") ? { member } : {}),
    ...(cn !== undefined ? { cn } : {}),
    ...(gidNumber !== undefined ? { gidNumber } : {}),
  };
}

/** `attributes`: the requested attribute names as the client sent them (case kept). */
export function routeSearch(filter: string, attributes: readonly string[] = []): Route {
  const user = userRoute(filter);
  if (user) return user;
  if (isGroupSearch(filter, attributes)) return groupRoute(filter);
  if (filter.trim() === "" || /objectclass=(\*|top)\)/i.test(filter)) return { kind: "mixed" };
  return { kind: "none" };
}

/** Whether a group entry passes the route's `cn=`/`gidNumber=` choice. */
export function groupWanted(
  route: Extract<Route, { kind: "groups" }>,
  cn: string,
  gidNumber: string,
): boolean {
  return (
    (route.cn === undefined || route.cn === cn) &&
    (route.gidNumber === undefined || route.gidNumber === gidNumber)
  );
}
