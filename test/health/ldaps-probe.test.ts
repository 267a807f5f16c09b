// The LDAPS health probe against the gateway stand-in serving a real
// PostgreSQL (or another gateway build, through the harness), and against
// servers that misbehave at the transport: each fault fails at its own step,
// within that step's timeout.
import net from "node:net";
import { Client } from "ldapts";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { renderQueries } from "../../src/gateway/queries.js";
import { probeServer, type ProbeResult } from "../../src/health/ldaps-probe.js";
import { preflight } from "../../src/health/preflight.js";
import type { ProbeExpectation } from "../../src/health/probe-plan.js";
import { selfSignedCert } from "../support/self-signed-cert.js";
import { startGateway, type RunningGateway } from "../gateway/harness.js";
import { freePort } from "../testenv/ports.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";

// Short limits keep the fault cases quick; the bounds asserted are loose
// because the machine is shared and loaded.
const TIMEOUTS = { connect: 1_000, rootDse: 1_000, knownUser: 1_500, userCount: 3_000 };
const SLACK_MS = 2_000;

let db: TestPostgres;
let healthy: RunningGateway;
let expected: Required<ProbeExpectation>;
const running: RunningGateway[] = [];
const silentServers: net.Server[] = [];

function gatewayEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DIRECTORY_BACKEND: "sql",
    AUTH_BACKENDS: "sql",
    LDAP_COMMON_NAME: "ldap1",
    LDAP_BASE_DN: db.seed.baseDn,
    SQL_URI: db.url,
    REQUIRE_AUTH_FOR_SEARCH: "false",
    BIND_IP: "127.0.0.1",
    ...renderQueries(),
    ...extra,
  };
}

async function gateway(extra: Record<string, string> = {}): Promise<RunningGateway> {
  const gw = await startGateway(gatewayEnv({ PORT: String(await freePort()), ...extra }));
  running.push(gw);
  return gw;
}

/** Accepts TCP connections and never sends a byte; records when each connection closes. */
async function silentServer(): Promise<{ port: number; closed: Promise<void>[] }> {
  const closed: Promise<void>[] = [];
  const server = net.createServer((sock) => {
    closed.push(new Promise((resolve) => sock.once("close", () => resolve())));
    sock.on("error", () => undefined);
    // Read and discard, or the client's closing never reaches "end" and "close".
    sock.resume();
  });
  silentServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as net.AddressInfo).port, closed };
}

const probe = (gw: { port: number }, expectation: ProbeExpectation = expected) =>
  probeServer({ host: "127.0.0.1", port: gw.port }, expectation, { timeouts: TIMEOUTS });

const statuses = (r: ProbeResult) => Object.fromEntries(r.steps.map((s) => [s.step, s.status]));

beforeAll(async () => {
  // This file stops its database, so it has its own rather than the run's shared one.
  db = await startPostgres();
  const pre = await preflight(db.url, renderQueries());
  expect(pre.ok).toBe(true);
  expected = { baseDn: db.seed.baseDn, knownUser: pre.knownUser!, userCount: pre.userCount! };
  healthy = await gateway();
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((g) => g.kill()));
  for (const s of silentServers) s.close();
  await db?.stop();
});

describe("a healthy server", () => {
  it("passes every step, user count included, and reports how long each took", async () => {
    const r = await probe(healthy);
    expect(r).toMatchObject({ healthy: true, address: `127.0.0.1:${healthy.port}` });
    expect(r.failedStep).toBeUndefined();
    expect(r.steps.map((s) => [s.step, s.status])).toEqual([
      ["connect", "passed"],
      ["rootDse", "passed"],
      ["knownUser", "passed"],
      ["userCount", "passed"],
    ]);
    for (const s of r.steps) expect(s.durationMs).toBeLessThanOrEqual(s.timeoutMs);
    console.log(`healthy probe: ${r.steps.map((s) => `${s.step} ${s.durationMs} ms`).join(", ")}`);
  });

  it("passes without the optional count, which is then not run at all", async () => {
    const { userCount: _, ...withoutCount } = expected;
    const r = await probe(healthy, withoutCount);
    expect(r.healthy).toBe(true);
    expect(r.steps.map((s) => s.step)).toEqual(["connect", "rootDse", "knownUser"]);
  });

  it("passes for every user the database holds, not only the first", async () => {
    for (const u of db.seed.users)
      expect((await probe(healthy, { ...expected, knownUser: u.uid })).healthy).toBe(true);
  });
});

describe("never a bind", () => {
  // With notifications on, a bind that succeeds pushes a prompt to a person's phone.
  it("a whole probe calls no bind, and the gateway's debug log shows none", async () => {
    const watched = await gateway({ LOG_LEVEL: "debug" });
    const spy = vi.spyOn(Client.prototype, "bind");
    const before = watched.logs().length;
    let binds: unknown[][];
    try {
      expect((await probe(watched)).healthy).toBe(true);
    } finally {
      // Restoring clears the record: read it first.
      binds = [...spy.mock.calls];
      spy.mockRestore();
    }
    expect(binds).toEqual([]);
    // The gateway writes its log asynchronously to a pipe: let the last lines arrive.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const during = watched.logs().slice(before);
    expect(during).not.toBe("");
    expect(during).not.toMatch(/\bbind\b/i);
  });
});

describe("a server answering with the wrong data fails at the step that proves it", () => {
  it("wrong base DN: rootDse, naming both DNs; nothing after it runs", async () => {
    const r = await probe(healthy, { ...expected, baseDn: "dc=example,dc=org" });
    expect(r).toMatchObject({ healthy: false, failedStep: "rootDse" });
    expect(r.reason).toContain(`'${db.seed.baseDn}'`);
    expect(r.reason).toContain("'dc=example,dc=org'");
    expect(statuses(r)).toEqual({
      connect: "passed",
      rootDse: "failed",
      knownUser: "notRun",
      userCount: "notRun",
    });
  });

  it("a user the gateway does not know: knownUser", async () => {
    const r = await probe(healthy, { ...expected, knownUser: "nosuchuser" });
    expect(r).toMatchObject({ healthy: false, failedStep: "knownUser" });
    expect(r.reason).toContain("(uid=nosuchuser) returned no entry");
  });

  it("a gateway listing fewer users than the database holds: userCount", async () => {
    const queries = renderQueries();
    const narrowed = await gateway({
      SQL_QUERY_ALL_USERS: `${queries.SQL_QUERY_ALL_USERS} WHERE "uidNumber" > 2000`,
    });
    const r = await probe(narrowed);
    expect(r).toMatchObject({ healthy: false, failedStep: "userCount" });
    expect(r.reason).toContain(`returned ${expected.userCount - 1} posixAccount entries`);
    expect(r.reason).toContain(`holds ${expected.userCount} users`);
    expect(statuses(r)).toMatchObject({ knownUser: "passed" });
  });
});

describe("faults end each step within its timeout", () => {
  it("a port with no listener: connect, at once", async () => {
    const port = await freePort();
    const r = await probe({ port });
    expect(r).toMatchObject({ healthy: false, failedStep: "connect" });
    expect(r.reason).toBe("connect: connection refused");
    expect(r.durationMs).toBeLessThan(TIMEOUTS.connect);
  });

  it("a server that accepts TCP and never answers TLS: connect, at its timeout, connection closed", async () => {
    const silent = await silentServer();
    const r = await probe(silent);
    expect(r).toMatchObject({ healthy: false, failedStep: "connect" });
    expect(r.reason).toBe(
      `connect: TCP connection accepted, but no TLS handshake within ${TIMEOUTS.connect} ms`,
    );
    expect(r.durationMs).toBeGreaterThanOrEqual(TIMEOUTS.connect - 50);
    expect(r.durationMs).toBeLessThan(TIMEOUTS.connect + SLACK_MS);
    expect(silent.closed).toHaveLength(1);
    await silent.closed[0];
  });

  it("a gateway whose database never answers: rootDse passes, knownUser times out", async () => {
    const silentDb = await silentServer();
    const hung = await gateway({ SQL_URI: `postgres://manager:unused@127.0.0.1:${silentDb.port}/manager` });
    const r = await probe(hung);
    expect(r).toMatchObject({ healthy: false, failedStep: "knownUser" });
    expect(r.reason).toBe(`knownUser: no answer within ${TIMEOUTS.knownUser} ms`);
    expect(statuses(r)).toMatchObject({ connect: "passed", rootDse: "passed" });
    const knownUser = r.steps.find((s) => s.step === "knownUser")!;
    expect(knownUser.durationMs).toBeGreaterThanOrEqual(TIMEOUTS.knownUser - 50);
    expect(knownUser.durationMs).toBeLessThan(TIMEOUTS.knownUser + SLACK_MS);
  });

  it("a cancelled probe stops at once and is not a pass", async () => {
    const silent = await silentServer();
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 100);
    const r = await probeServer({ host: "127.0.0.1", port: silent.port }, expected, {
      timeouts: { connect: 10_000 },
      signal: abort.signal,
    });
    expect(r).toMatchObject({
      healthy: false,
      failedStep: "connect",
      reason: "connect: the probe was cancelled",
    });
    expect(r.durationMs).toBeLessThan(SLACK_MS);
  });

  // Last in this file: the shared gateway's database goes away and comes back.
  it("database stopped: the gateway answers success with zero entries, and that fails knownUser", async () => {
    await db.stopServer();
    try {
      const r = await probe(healthy);
      expect(r).toMatchObject({ healthy: false, failedStep: "knownUser" });
      expect(r.reason).toContain("returned no entry");
      expect(statuses(r)).toMatchObject({ connect: "passed", rootDse: "passed", userCount: "notRun" });
      expect(r.durationMs).toBeLessThan(TIMEOUTS.connect + TIMEOUTS.rootDse + TIMEOUTS.knownUser);
    } finally {
      await db.startServer();
    }
    // The gateway recovers by itself; so does the probe's verdict.
    expect((await probe(healthy)).healthy).toBe(true);
  });
});

describe("certificate checks when a CA is given", () => {
  let withCert: RunningGateway;
  let cert: string;
  beforeAll(async () => {
    const pair = await selfSignedCert("ldap1", "DNS:ldap1", 1);
    cert = pair.cert;
    withCert = await gateway({ LDAP_CERT_CONTENT: pair.cert, LDAP_KEY_CONTENT: pair.key });
  });

  it("passes when the certificate is signed by the CA and names the server", async () => {
    const r = await probeServer(
      { host: "127.0.0.1", port: withCert.port, ca: cert, serverName: "ldap1" },
      expected,
    );
    expect(r.healthy).toBe(true);
  });

  it("fails at connect with another CA", async () => {
    const other = await selfSignedCert("ldap1", "DNS:ldap1", 1);
    const r = await probeServer(
      { host: "127.0.0.1", port: withCert.port, ca: other.cert, serverName: "ldap1" },
      expected,
    );
    expect(r).toMatchObject({ healthy: false, failedStep: "connect" });
    expect(r.reason).toMatch(/certificate|signature/i);
  });

  it("fails at connect when the certificate names another server", async () => {
    const r = await probeServer(
      { host: "127.0.0.1", port: withCert.port, ca: cert, serverName: "ldap2" },
      expected,
    );
    expect(r).toMatchObject({ healthy: false, failedStep: "connect" });
    expect(r.reason).toContain("ldap2");
  });
});
