// The management software's tables, as its Sequelize models create them
// (see shared/reference/management-database.md): quoted camelCase
// identifiers, Sequelize's NOT NULL timestamps without database defaults,
// and the join table's foreign keys cascading on update and delete.

export const MANAGEMENT_SCHEMA = `
CREATE TABLE "Users" (
  "uidNumber" INTEGER PRIMARY KEY,
  "uid" VARCHAR(255) UNIQUE,
  "gidNumber" INTEGER DEFAULT 2001,
  "homeDirectory" VARCHAR(255) NOT NULL,
  "loginShell" VARCHAR(255) NOT NULL DEFAULT '/bin/bash',
  "cn" VARCHAR(255) NOT NULL,
  "sn" VARCHAR(255) NOT NULL,
  "givenName" VARCHAR(255) NOT NULL,
  "mail" VARCHAR(255) UNIQUE,
  "sshPublicKey" TEXT NULL,
  "userPassword" VARCHAR(255),
  "status" VARCHAR(50) DEFAULT 'pending',
  "createdAt" TIMESTAMP WITH TIME ZONE NOT NULL,
  "updatedAt" TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE TABLE "Groups" (
  "gidNumber" INTEGER PRIMARY KEY,
  "cn" VARCHAR(255) UNIQUE,
  "isAdmin" BOOLEAN DEFAULT false,
  "createdAt" TIMESTAMP WITH TIME ZONE NOT NULL,
  "updatedAt" TIMESTAMP WITH TIME ZONE NOT NULL
);
CREATE TABLE "UserGroups" (
  "uidNumber" INTEGER NOT NULL REFERENCES "Users" ("uidNumber") ON DELETE CASCADE ON UPDATE CASCADE,
  "gidNumber" INTEGER NOT NULL REFERENCES "Groups" ("gidNumber") ON DELETE CASCADE ON UPDATE CASCADE,
  "createdAt" TIMESTAMP WITH TIME ZONE NOT NULL,
  "updatedAt" TIMESTAMP WITH TIME ZONE NOT NULL,
  PRIMARY KEY ("uidNumber", "gidNumber")
);
`;

/** The two groups the manager seeds, plus one ordinary group for membership tests. */
export const SEED_GROUPS = [
  { gidNumber: 2000, cn: "sysadmins", isAdmin: true },
  { gidNumber: 2001, cn: "ldapusers", isAdmin: false },
  { gidNumber: 2002, cn: "devs", isAdmin: false },
] as const;

/**
 * The four queries exactly as the seed document renders them (newlines
 * replaced by single spaces, indentation kept), so the gateway is tested with
 * what the manager really puts into the containers' environment.
 */
export const SEED_QUERIES = {
  SQL_QUERY_ALL_USERS:
    'SELECT "uid" AS username, "uidNumber" AS uid_number, "gidNumber" AS gid_number,        "givenName" AS first_name, "cn" AS full_name, "sn" AS last_name,        "mail", "homeDirectory" AS home_directory, "userPassword" AS password FROM "Users"',
  SQL_QUERY_ONE_USER:
    'SELECT "uid" AS username, "uidNumber" AS uid_number, "gidNumber" AS gid_number,        "givenName" AS first_name, "cn" AS full_name, "sn" AS last_name,        "mail", "homeDirectory" AS home_directory, "userPassword" AS password FROM "Users" WHERE "uid" = ?',
  SQL_QUERY_ALL_GROUPS: 'SELECT g."cn" AS name, g."gidNumber" AS gid_number FROM "Groups" g',
  SQL_QUERY_GROUPS_BY_MEMBER:
    'SELECT g."cn" AS name, g."gidNumber" AS gid_number FROM "Groups" g INNER JOIN "UserGroups" ug ON g."gidNumber" = ug."gidNumber" INNER JOIN "Users" u ON ug."uidNumber" = u."uidNumber" WHERE u."uid" = ?',
} as const;

export type SqlQueries = Record<keyof typeof SEED_QUERIES, string>;

/** Escapes a value for use inside a single-quoted SQL literal. */
function sqlLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * The group queries extended with `member_uids` and `members`, in the
 * COALESCE/FILTER form the gateway reference recommends: a plain LEFT JOIN
 * would give empty groups the literal member `null`, an INNER JOIN would drop
 * them.
 */
export function queriesWithMembers(baseDn: string): SqlQueries {
  const groupSelect =
    'SELECT g."cn" AS name, g."gidNumber" AS gid_number, ' +
    `COALESCE(array_agg(m."uid") FILTER (WHERE m."uid" IS NOT NULL), '{}') AS member_uids, ` +
    `COALESCE(array_agg('uid=' || m."uid" || ',' || ${sqlLiteral(baseDn)}) FILTER (WHERE m."uid" IS NOT NULL), '{}') AS members ` +
    'FROM "Groups" g LEFT JOIN "UserGroups" mg ON g."gidNumber" = mg."gidNumber" ' +
    'LEFT JOIN "Users" m ON mg."uidNumber" = m."uidNumber"';
  return {
    SQL_QUERY_ALL_USERS: SEED_QUERIES.SQL_QUERY_ALL_USERS,
    SQL_QUERY_ONE_USER: SEED_QUERIES.SQL_QUERY_ONE_USER,
    SQL_QUERY_ALL_GROUPS: `${groupSelect} GROUP BY g."cn", g."gidNumber"`,
    SQL_QUERY_GROUPS_BY_MEMBER:
      `${groupSelect} WHERE g."gidNumber" IN (SELECT ug."gidNumber" FROM "UserGroups" ug ` +
      'INNER JOIN "Users" u ON ug."uidNumber" = u."uidNumber" WHERE u."uid" = ?) GROUP BY g."cn", g."gidNumber"',
  };
}
