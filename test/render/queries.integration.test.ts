// The group query with members, run by a real PostgreSQL on the management
// tables: each group gets its members' uids and DNs, an empty group gets
// empty arrays (not the member `null`, and it is not dropped), and the base
// DN stays one literal whatever it contains. Every check runs in a
// transaction that is rolled back, so the run's shared database is untouched.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { pairQueries } from "../../src/gateway/env.js";
import { renderQueries } from "../../src/gateway/queries.js";
import { preflight } from "../../src/health/preflight.js";
import { specWith } from "../support/spec.js";

const databaseUrl = inject("databaseUrl");
let client: pg.Client;

beforeAll(async () => {
  client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
});

const NOW = "2026-12-01T00:00:00Z";
const GROUP_WITH_MEMBERS = 9901;
const EMPTY_GROUP = 9902;

interface GroupRow {
  name: string;
  gid_number: number;
  member_uids: string[];
  members: string[];
}

/** Two users in one new group, a second new group without members; then the query, then ROLLBACK. */
async function groupsFor(baseDn: string, setup = ""): Promise<Map<number, GroupRow>> {
  await client.query("BEGIN");
  try {
    if (setup) await client.query(setup);
    for (const [uidNumber, uid] of [
      [99001, "qa-ann"],
      [99002, "qa-ben"],
    ] as const) {
      await client.query(
        `INSERT INTO "Users" ("uidNumber", "uid", "homeDirectory", "cn", "sn", "givenName", "createdAt", "updatedAt")
         VALUES ($1, $2, $3, $2, $2, $2, $4, $4)`,
        [uidNumber, uid, `/home/${uid}`, NOW],
      );
    }
    for (const [gid, cn] of [
      [GROUP_WITH_MEMBERS, "qa-members"],
      [EMPTY_GROUP, "qa-empty"],
    ] as const)
      await client.query(
        `INSERT INTO "Groups" ("gidNumber", "cn", "createdAt", "updatedAt") VALUES ($1, $2, $3, $3)`,
        [gid, cn, NOW],
      );
    for (const uidNumber of [99001, 99002])
      await client.query(
        `INSERT INTO "UserGroups" ("uidNumber", "gidNumber", "createdAt", "updatedAt") VALUES ($1, $2, $3, $3)`,
        [uidNumber, GROUP_WITH_MEMBERS, NOW],
      );
    const sql = renderQueries({ groupMembers: { baseDn } }).SQL_QUERY_ALL_GROUPS;
    const { rows } = await client.query<GroupRow>(sql);
    return new Map(rows.map((r) => [r.gid_number, r]));
  } finally {
    await client.query("ROLLBACK");
  }
}

const sorted = (values: string[]) => [...values].sort();

describe("SQL_QUERY_ALL_GROUPS with members, on a real PostgreSQL", () => {
  it("returns each group's member uids and DNs, and empty arrays for a group without members", async () => {
    const groups = await groupsFor("dc=example,dc=com");
    const full = groups.get(GROUP_WITH_MEMBERS)!;
    expect(full.name).toBe("qa-members");
    expect(sorted(full.member_uids)).toEqual(["qa-ann", "qa-ben"]);
    expect(sorted(full.members)).toEqual(["uid=qa-ann,dc=example,dc=com", "uid=qa-ben,dc=example,dc=com"]);
    expect(groups.get(EMPTY_GROUP)).toMatchObject({ name: "qa-empty", member_uids: [], members: [] });
  });

  it.each([
    ["a quote", "dc=o'brien,dc=com"],
    ["a quote and SQL after it", `o=x'); DROP TABLE "Users"; --`],
    ["a backslash", "o=back\\slash"],
    ["a quote and a trailing backslash", "o=it's\\"],
  ])("keeps a base DN with %s as one literal", async (_what, baseDn) => {
    const groups = await groupsFor(baseDn);
    expect(sorted(groups.get(GROUP_WITH_MEMBERS)!.members)).toEqual([
      `uid=qa-ann,${baseDn}`,
      `uid=qa-ben,${baseDn}`,
    ]);
    const users = await client.query(`SELECT count(*)::int AS n FROM "Users"`);
    expect(users.rows[0].n).toBeGreaterThan(0);
  });

  it("reads a backslash the same with standard_conforming_strings off", async () => {
    const baseDn = "o=back\\slash";
    const groups = await groupsFor(baseDn, "SET LOCAL standard_conforming_strings = off");
    expect(sorted(groups.get(GROUP_WITH_MEMBERS)!.members)[0]).toBe(`uid=qa-ann,${baseDn}`);
  });

  it("passes the database preflight with the pair's queries, members on and off", async () => {
    for (const groupMembers of [true, false]) {
      const result = await preflight(databaseUrl, pairQueries(specWith({ groupMembers })));
      expect(result.problem).toBeUndefined();
      expect(result.ok).toBe(true);
      expect(result.groupCount).toBeGreaterThanOrEqual(3);
    }
  });
});
