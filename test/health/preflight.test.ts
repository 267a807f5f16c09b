// The database preflight against a real PostgreSQL with the management
// tables: what it finds on a good URI, and how each fault is reported with
// the variable named and the password nowhere in the result.
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderQueries } from "../../src/gateway/queries.js";
import { preflight, type PreflightResult } from "../../src/health/preflight.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";

const SLACK_MS = 2_000;

let db: TestPostgres;
let password: string;
const servers: net.Server[] = [];

beforeAll(async () => {
  // This file stops its database, so it has its own rather than the run's shared one.
  db = await startPostgres();
  password = decodeURIComponent(new URL(db.url).password);
}, 120_000);

afterAll(async () => {
  for (const s of servers) s.close();
  await db?.stop();
});

/**
 * Forwards to the database until the client sends a message containing
 * `freezeOn`; from then on it forwards nothing either way and keeps the
 * connection open: a server that stopped answering.
 */
async function freezingProxy(targetPort: number, freezeOn: string): Promise<number> {
  const server = net.createServer((client) => {
    let frozen = false;
    const upstream = net.connect(targetPort, "127.0.0.1");
    client.on("data", (chunk: Buffer) => {
      if (chunk.includes(freezeOn)) frozen = true;
      if (!frozen) upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!frozen) client.write(chunk);
    });
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on("error", () => undefined);
      a.on("close", () => b.destroy());
    }
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

const withPassword = (pw: string) => {
  const url = new URL(db.url);
  url.password = encodeURIComponent(pw);
  return url.toString();
};

function expectNoSecret(result: PreflightResult, ...secrets: string[]) {
  const text = JSON.stringify(result);
  for (const s of secrets) {
    expect(text).not.toContain(s);
    expect(text).not.toContain(encodeURIComponent(s));
  }
}

describe("a good URI and the rendered queries", () => {
  it("is reachable, counts users and groups, and names the first user as the one to probe for", async () => {
    const queries = renderQueries();
    const r = await preflight(db.url, queries);
    const first = await db.query<{ username: string }>(queries.SQL_QUERY_ALL_USERS);
    expect(r).toMatchObject({
      ok: true,
      reachable: true,
      userCount: db.seed.users.length,
      groupCount: db.seed.groups.length,
      knownUser: first.rows[0]!.username,
    });
    expect(r.problem).toBeUndefined();
    // `?` bound to the known user, as the gateway binds it.
    const member = db.seed.users.find((u) => u.uid === r.knownUser)!;
    expect(r.queries.map((q) => [q.variable, q.status, q.rows])).toEqual([
      ["SQL_QUERY_ALL_USERS", "passed", db.seed.users.length],
      ["SQL_QUERY_ONE_USER", "passed", 1],
      ["SQL_QUERY_ALL_GROUPS", "passed", db.seed.groups.length],
      ["SQL_QUERY_GROUPS_BY_MEMBER", "passed", member.groups.length],
    ]);
    expectNoSecret(r, password);
    console.log(`preflight took ${r.durationMs} ms`);
  });
});

describe("faults", () => {
  it("a wrong password: unreachable, the database's message, no password in it", async () => {
    const wrong = "Wr0ng-but-secret%p@ss";
    const r = await preflight(withPassword(wrong), renderQueries());
    expect(r).toMatchObject({ ok: false, reachable: false });
    expect(r.connectError).toContain("password authentication failed");
    expect(r.problem).toContain("database unreachable: password authentication failed");
    expect(r.queries.every((q) => q.status === "notRun")).toBe(true);
    expectNoSecret(r, wrong, password);
  });

  it("a broken query: that query fails naming its variable, the others still run", async () => {
    const queries = {
      ...renderQueries(),
      SQL_QUERY_ONE_USER: 'SELECT "uidd" AS username FROM "Users" WHERE "uid" = ?',
    };
    const r = await preflight(db.url, queries);
    expect(r).toMatchObject({ ok: false, reachable: true, userCount: db.seed.users.length });
    const oneUser = r.queries.find((q) => q.variable === "SQL_QUERY_ONE_USER")!;
    expect(oneUser).toMatchObject({
      status: "failed",
      error: 'SQL_QUERY_ONE_USER: column "uidd" does not exist',
    });
    expect(r.problem).toBe(oneUser.error);
    expect(r.queries.filter((q) => q.status === "passed").map((q) => q.variable)).toEqual([
      "SQL_QUERY_ALL_USERS",
      "SQL_QUERY_ALL_GROUPS",
      "SQL_QUERY_GROUPS_BY_MEMBER",
    ]);
  });

  it("a slow query is cancelled by the statement timeout", async () => {
    const queries = {
      ...renderQueries(),
      SQL_QUERY_ALL_GROUPS: 'SELECT pg_sleep(10), g."cn" AS name FROM "Groups" g',
    };
    const r = await preflight(db.url, queries, { statementTimeoutMs: 300 });
    const groups = r.queries.find((q) => q.variable === "SQL_QUERY_ALL_GROUPS")!;
    expect(groups.error).toBe("SQL_QUERY_ALL_GROUPS: canceling statement due to statement timeout");
    expect(groups.durationMs).toBeLessThan(300 + SLACK_MS);
    expect(r.queries.find((q) => q.variable === "SQL_QUERY_GROUPS_BY_MEMBER")?.status).toBe("passed");
  });

  it("a database that accepts TCP and never answers: unreachable within the connect timeout", async () => {
    const server = net.createServer((sock) => {
      sock.on("error", () => undefined);
      sock.resume();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const uri = `postgres://manager:${encodeURIComponent(password)}@127.0.0.1:${port}/manager`;
    const r = await preflight(uri, renderQueries(), { connectTimeoutMs: 500 });
    expect(r).toMatchObject({ ok: false, reachable: false });
    expect(r.connectError).toMatch(/timeout/i);
    expect(r.durationMs).toBeGreaterThanOrEqual(450);
    expect(r.durationMs).toBeLessThan(500 + SLACK_MS);
    expectNoSecret(r, password);
  });

  it("a database that stops answering mid-run: that query ends at the client's bound, the rest are not run", async () => {
    const proxy = await freezingProxy(db.port, 'FROM "Groups"');
    const uri = `postgres://manager:${encodeURIComponent(password)}@127.0.0.1:${proxy}/manager`;
    const r = await preflight(uri, renderQueries(), { statementTimeoutMs: 300 });
    expect(r).toMatchObject({ ok: false, reachable: true, userCount: db.seed.users.length });
    expect(r.queries.map((q) => q.status)).toEqual(["passed", "passed", "failed", "notRun"]);
    const groups = r.queries[2]!;
    expect(groups.error).toBe(
      "SQL_QUERY_ALL_GROUPS: no answer within 1300 ms: the database stopped answering",
    );
    expect(groups.durationMs).toBeLessThan(1300 + SLACK_MS);
    // Closing the connection to a silent server is bounded too.
    expect(r.durationMs).toBeLessThan(1300 + 1000 + SLACK_MS);
  });

  it("a malformed URI: unreachable, and the URI is not echoed", async () => {
    const r = await preflight(`manager:${password}@127.0.0.1/manager`, renderQueries());
    expect(r).toMatchObject({ ok: false, reachable: false });
    expect(r.connectError).toBe("the SQL URI is not a postgres:// or postgresql:// URI with a host");
    expectNoSecret(r, password);
  });

  it("a URI naming a CA file this process cannot read: unreachable, the file named, no password", async () => {
    const url = new URL(db.url);
    url.searchParams.set("sslrootcert", "/nonexistent/ca.pem");
    const r = await preflight(url.toString(), renderQueries());
    expect(r).toMatchObject({ ok: false, reachable: false });
    expect(r.connectError).toContain("/nonexistent/ca.pem");
    expect(r.queries.map((q) => q.status)).toEqual(["notRun", "notRun", "notRun", "notRun"]);
    expectNoSecret(r, password);
  });

  // Last: stops the database and starts it again.
  it("the database down: unreachable at once, nothing run", async () => {
    await db.stopServer();
    try {
      const r = await preflight(db.url, renderQueries());
      expect(r).toMatchObject({ ok: false, reachable: false });
      expect(r.connectError).toContain("ECONNREFUSED");
      expect(r.queries.map((q) => q.status)).toEqual(["notRun", "notRun", "notRun", "notRun"]);
      expect(r.durationMs).toBeLessThan(SLACK_MS);
      expectNoSecret(r, password);
    } finally {
      await db.startServer();
    }
    expect((await preflight(db.url, renderQueries())).ok).toBe(true);
  });
});
