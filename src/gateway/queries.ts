// The four SQL_QUERY_* values, rendered as the manager renders them: identifiers
// quoted with Sequelize's PostgreSQL quoteIdentifier, template lines joined by
// single spaces (its newline-to-space replacement), so that the text is
// byte-for-byte the seed's.
//
// With group members on, SQL_QUERY_ALL_GROUPS also returns `member_uids` and
// `members` (full user DNs): the gateway fills `memberUid` and `member` from
// them, and a Proxmox realm sync reads only `member`. The seed's queries return
// neither, so every group is imported without members. The aggregate is the
// COALESCE/FILTER form: a plain LEFT JOIN gives an empty group the member
// `null`, an INNER JOIN drops it.

/** Sequelize's quoteIdentifier for PostgreSQL: double quotes, embedded ones doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

const q = quoteIdentifier;
const render = (...lines: string[]) => lines.join(" ");

export interface GatewayQueries {
  SQL_QUERY_ALL_USERS: string;
  SQL_QUERY_ONE_USER: string;
  SQL_QUERY_ALL_GROUPS: string;
  SQL_QUERY_GROUPS_BY_MEMBER: string;
}

/**
 * A PostgreSQL string literal: quotes doubled; with a backslash, the E'' form
 * with backslashes doubled, which reads the same whatever
 * standard_conforming_strings says. Whatever the text, it stays one literal.
 */
export function quoteLiteral(text: string): string {
  const quoted = `'${text.replace(/'/g, "''")}'`;
  return text.includes("\\") ? `E${quoted.replace(/\\/g, "\\\\")}` : quoted;
}

export interface QueryOptions {
  /** Return each group's members (`member_uids`, and `members` as DNs under this base DN). */
  groupMembers?: { baseDn: string };
}

export function renderQueries(options: QueryOptions = {}): GatewayQueries {
  const allUsers = render(
    `SELECT ${q("uid")} AS username, ${q("uidNumber")} AS uid_number, ${q("gidNumber")} AS gid_number,`,
    `       ${q("givenName")} AS first_name, ${q("cn")} AS full_name, ${q("sn")} AS last_name,`,
    `       ${q("mail")}, ${q("homeDirectory")} AS home_directory, ${q("userPassword")} AS password`,
    `FROM ${q("Users")}`,
  );
  const allGroups = render(
    `SELECT g.${q("cn")} AS name, g.${q("gidNumber")} AS gid_number`,
    `FROM ${q("Groups")} g`,
  );
  return {
    SQL_QUERY_ALL_USERS: allUsers,
    SQL_QUERY_ONE_USER: render(allUsers, `WHERE ${q("uid")} = ?`),
    SQL_QUERY_ALL_GROUPS: options.groupMembers ? groupsWithMembers(options.groupMembers.baseDn) : allGroups,
    SQL_QUERY_GROUPS_BY_MEMBER: render(
      allGroups,
      `INNER JOIN ${q("UserGroups")} ug ON g.${q("gidNumber")} = ug.${q("gidNumber")}`,
      `INNER JOIN ${q("Users")} u ON ug.${q("uidNumber")} = u.${q("uidNumber")}`,
      `WHERE u.${q("uid")} = ?`,
    ),
  };
}

/** Every group with its members' uids and DNs; a group without members gets empty arrays. */
function groupsWithMembers(baseDn: string): string {
  const memberUid = `u.${q("uid")}`;
  const aggregate = (value: string) =>
    `COALESCE(array_agg(${value}) FILTER (WHERE ${memberUid} IS NOT NULL), '{}')`;
  const dn = `'uid=' || ${memberUid} || ',' || ${quoteLiteral(baseDn)}`;
  return render(
    `SELECT g.${q("cn")} AS name, g.${q("gidNumber")} AS gid_number,`,
    `${aggregate(memberUid)} AS member_uids,`,
    `${aggregate(dn)} AS members`,
    `FROM ${q("Groups")} g`,
    `LEFT JOIN ${q("UserGroups")} ug ON g.${q("gidNumber")} = ug.${q("gidNumber")}`,
    `LEFT JOIN ${q("Users")} u ON ug.${q("uidNumber")} = u.${q("uidNumber")}`,
    `GROUP BY g.${q("cn")}, g.${q("gidNumber")}`,
  );
}
