import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { quoteIdentifier, quoteLiteral, renderQueries } from "../../src/gateway/queries.js";

// The runbook the operator automates: a verbatim copy in the repository, and
// the original beside the project where the checkout has it.
const SEED = new URL("../fixtures/deploying-ldap-servers.md", import.meta.url);
const ORIGINAL = new URL("../../../shared/seed/deploying-ldap-servers.md", import.meta.url);

/** The sql block under the runbook's heading `**NAME**`, as the manager renders it (newlines -> spaces). */
function seedQuery(name: string): string {
  const text = readFileSync(SEED, "utf8");
  const match = new RegExp(`\\*\\*\`${name}\`\\*\\*\\n\`\`\`sql\\n([\\s\\S]*?)\\n\`\`\``).exec(text);
  if (!match?.[1]) throw new Error(`no ${name} block in the seed`);
  return match[1].replace(/\n/g, " ");
}

describe("gateway SQL queries", () => {
  it.each([
    "SQL_QUERY_ALL_USERS",
    "SQL_QUERY_ONE_USER",
    "SQL_QUERY_ALL_GROUPS",
    "SQL_QUERY_GROUPS_BY_MEMBER",
  ] as const)("%s is byte-for-byte the seed's", (name) => {
    const rendered = renderQueries()[name];
    expect(Buffer.from(rendered)).toEqual(Buffer.from(seedQuery(name)));
    expect(rendered).not.toMatch(/\n/);
  });

  it.runIf(existsSync(ORIGINAL))("reads a verbatim copy of the runbook", () => {
    expect(readFileSync(SEED, "utf8")).toBe(readFileSync(ORIGINAL, "utf8"));
  });

  it("with group members, changes only SQL_QUERY_ALL_GROUPS, to the COALESCE/FILTER form", () => {
    const seed = renderQueries();
    const members = renderQueries({ groupMembers: { baseDn: "dc=example,dc=com" } });
    expect({ ...members, SQL_QUERY_ALL_GROUPS: seed.SQL_QUERY_ALL_GROUPS }).toEqual(seed);
    expect(members.SQL_QUERY_ALL_GROUPS).toBe(
      'SELECT g."cn" AS name, g."gidNumber" AS gid_number, ' +
        `COALESCE(array_agg(u."uid") FILTER (WHERE u."uid" IS NOT NULL), '{}') AS member_uids, ` +
        `COALESCE(array_agg('uid=' || u."uid" || ',' || 'dc=example,dc=com') FILTER (WHERE u."uid" IS NOT NULL), '{}') AS members ` +
        'FROM "Groups" g LEFT JOIN "UserGroups" ug ON g."gidNumber" = ug."gidNumber" ' +
        'LEFT JOIN "Users" u ON ug."uidNumber" = u."uidNumber" GROUP BY g."cn", g."gidNumber"',
    );
    expect(members.SQL_QUERY_ALL_GROUPS).not.toMatch(/\n|\?/);
  });

  it("builds ONE_USER and GROUPS_BY_MEMBER on the listing queries", () => {
    const qs = renderQueries();
    expect(qs.SQL_QUERY_ONE_USER).toBe(`${qs.SQL_QUERY_ALL_USERS} WHERE "uid" = ?`);
    expect(qs.SQL_QUERY_GROUPS_BY_MEMBER.startsWith(`${qs.SQL_QUERY_ALL_GROUPS} INNER JOIN`)).toBe(true);
    expect(qs.SQL_QUERY_GROUPS_BY_MEMBER.endsWith(`WHERE u."uid" = ?`)).toBe(true);
  });

  it.each([
    ["dc=example,dc=com", "'dc=example,dc=com'"],
    ["dc=o'brien,dc=com", "'dc=o''brien,dc=com'"],
    ['o=x\'); DROP TABLE "Users"; --', "'o=x''); DROP TABLE \"Users\"; --'"],
    ["", "''"],
    ["o=back\\slash", "E'o=back\\\\slash'"],
    ["o=it's\\", "E'o=it''s\\\\'"],
  ])("quoteLiteral(%j) = %s", (text, literal) => {
    expect(quoteLiteral(text)).toBe(literal);
  });

  it.each([
    ["uid", '"uid"'],
    ["uidNumber", '"uidNumber"'],
    ['we"ird', '"we""ird"'],
    ['""', '""""""'],
    ["", '""'],
  ])("quoteIdentifier(%j) = %s", (name, quoted) => {
    expect(quoteIdentifier(name)).toBe(quoted);
  });
});
