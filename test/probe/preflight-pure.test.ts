// The preflight's pure parts: the gateway's `?` parameters as pg's `$n`, the
// password scrub, the URI check and the one-sentence problem.
import { describe, expect, it } from "vitest";
import { renderQueries } from "../../src/gateway/queries.js";
import {
  PREFLIGHT_QUERIES,
  isPostgresUri,
  preflightProblem,
  uriPasswordScrubber,
  type QueryReport,
} from "../../src/health/preflight.js";
import { toPgPlaceholders } from "../../src/health/sql-placeholders.js";

describe("toPgPlaceholders", () => {
  it.each([
    ["SELECT 1", "SELECT 1", 0],
    ['SELECT * FROM "Users" WHERE "uid" = ?', 'SELECT * FROM "Users" WHERE "uid" = $1', 1],
    ["SELECT ? , ?", "SELECT $1 , $2", 2],
    ["SELECT 'a?b' WHERE x = ?", "SELECT 'a?b' WHERE x = $1", 1],
    ["SELECT 'it''s?' WHERE x = ?", "SELECT 'it''s?' WHERE x = $1", 1],
    ['SELECT "odd?name" FROM t WHERE x = ?', 'SELECT "odd?name" FROM t WHERE x = $1', 1],
    ["SELECT 1 -- why?\nWHERE x = ?", "SELECT 1 -- why?\nWHERE x = $1", 1],
    ["SELECT /* ? */ x WHERE y = ?", "SELECT /* ? */ x WHERE y = $1", 1],
    ["SELECT 'unterminated ?", "SELECT 'unterminated ?", 0],
  ])("%j", (sql, text, parameters) => expect(toPgPlaceholders(sql)).toEqual({ text, parameters }));

  it("gives the rendered one-user and by-member queries exactly one parameter, the listings none", () => {
    const queries = renderQueries();
    const counts = PREFLIGHT_QUERIES.map(({ variable, takesUser }) => [
      takesUser,
      toPgPlaceholders(queries[variable]).parameters,
    ]);
    expect(counts).toEqual([
      [false, 0],
      [true, 1],
      [false, 0],
      [true, 1],
    ]);
  });
});

describe("uriPasswordScrubber", () => {
  it.each([
    ["a plain password", "postgres://manager:s3cretpw@db:5432/m", "auth failed for s3cretpw", "s3cretpw"],
    [
      "a percent-encoded one, in both forms",
      "postgres://m:p%40ss%2Fword@db/m",
      "saw p@ss/word and p%40ss%2Fword",
      "p@ss/word",
    ],
    ["one with an unescaped @", "postgres://m:p@ssw0rd@db/m", "saw p@ssw0rd", "p@ssw0rd"],
    [
      "the whole URI echoed back",
      "postgres://m:hunter22@db/m",
      "cannot parse postgres://m:hunter22@db/m",
      "hunter22",
    ],
  ])("removes %s", (_name, uri, message, secret) => {
    const out = uriPasswordScrubber(uri)(message);
    expect(out).not.toContain(secret);
    expect(out).not.toContain(encodeURIComponent(secret));
    expect(out).toContain("[REDACTED]");
  });

  it("leaves a message without the password alone", () => {
    const message = 'password authentication failed for user "manager"';
    expect(uriPasswordScrubber("postgres://manager:s3cretpw@db/m")(message)).toBe(message);
  });
});

describe("isPostgresUri", () => {
  it.each([
    ["postgres://u:p@db:5432/m", true],
    ["postgresql://u:p@db/m", true],
    ["postgres://u:p@db/m?sslmode=require", true],
    ["mysql://u:p@db/m", false],
    ["u:p@db/m", false],
    ["", false],
    ["postgres:///m", false],
  ])("%j -> %s", (uri, ok) => expect(isPostgresUri(uri)).toBe(ok));
});

describe("preflightProblem", () => {
  const passed = (variable: QueryReport["variable"]): QueryReport => ({
    variable,
    status: "passed",
    rows: 1,
  });
  const all = PREFLIGHT_QUERIES.map(({ variable }) => passed(variable));

  it.each<[string, Parameters<typeof preflightProblem>[0], string | undefined]>([
    ["all four ran", { reachable: true, queries: all }, undefined],
    [
      "unreachable",
      { reachable: false, connectError: "connect ECONNREFUSED 127.0.0.1:5432", queries: [] },
      "database unreachable: connect ECONNREFUSED 127.0.0.1:5432",
    ],
    [
      "the first failed query, by its variable",
      {
        reachable: true,
        queries: [
          all[0]!,
          {
            variable: "SQL_QUERY_ONE_USER",
            status: "failed",
            error: 'SQL_QUERY_ONE_USER: column "x" does not exist',
          },
          { variable: "SQL_QUERY_ALL_GROUPS", status: "failed", error: "SQL_QUERY_ALL_GROUPS: later" },
          all[3]!,
        ],
      },
      'SQL_QUERY_ONE_USER: column "x" does not exist',
    ],
    ["fewer reports than queries", { reachable: true, queries: all.slice(0, 3) }, "not every query ran"],
  ])("%s", (_name, result, problem) => expect(preflightProblem(result)).toBe(problem));
});
