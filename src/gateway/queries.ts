// The four SQL_QUERY_* values, rendered as the manager renders them: identifiers
// quoted with Sequelize's PostgreSQL quoteIdentifier, template lines joined by
// single spaces (its newline-to-space replacement), so that the text is
// byte-for-byte the seed's.

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

export function renderQueries(): GatewayQueries {
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
    SQL_QUERY_ALL_GROUPS: allGroups,
    SQL_QUERY_GROUPS_BY_MEMBER: render(
      allGroups,
      `INNER JOIN ${q("UserGroups")} ug ON g.${q("gidNumber")} = ug.${q("gidNumber")}`,
      `INNER JOIN ${q("Users")} u ON ug.${q("uidNumber")} = u.${q("uidNumber")}`,
      `WHERE u.${q("uid")} = ?`,
    ),
  };
}
