// The SSSD-like failover client against two real gateway stand-ins on their
// own loopback addresses, resolved through the site DNS stand-in.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type RunningGateway } from "../gateway/harness.js";
import { gatewayBundle } from "../gateway/bundle.js";
import { DnsServer } from "../pve-sim/dns-server.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";
import { FailoverClient, type FailoverClientOptions } from "./client.js";
import { LookupStream } from "./stream.js";

let db: TestPostgres;
const dns = new DnsServer({ searchDomain: "example.com" });
// Below 127.16/16: the simulator leases 127.16-254.x.x blocks to parallel test files.
const ADDR = { ldap1: "127.13.0.1", ldap2: "127.13.0.2" } as const;
const live = new Map<string, RunningGateway>();

async function startServer(name: keyof typeof ADDR, ip: string = ADDR[name]): Promise<RunningGateway> {
  const gw = await startGateway({
    DIRECTORY_BACKEND: "sql",
    AUTH_BACKENDS: "sql",
    LDAP_COMMON_NAME: name,
    LDAP_BASE_DN: db.seed.baseDn,
    SQL_URI: db.url,
    REQUIRE_AUTH_FOR_SEARCH: "false",
    BIND_IP: ip,
    ...db.seed.queries,
  });
  live.set(name, gw);
  dns.setRecord(name, ip);
  return gw;
}

async function killServer(name: string): Promise<void> {
  await live.get(name)?.kill();
  live.delete(name);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function client(extra: Partial<FailoverClientOptions> = {}): FailoverClient {
  return new FailoverClient({
    uris: ["ldaps://ldap1:636", "ldaps://ldap2:636"],
    dnsServer: dns.address.server,
    baseDn: db.seed.baseDn,
    searchTimeoutMs: 1500,
    connectTimeoutMs: 1500,
    failedServerMemoryMs: 3000,
    offlineTimeoutMs: 2000,
    offlineRandomMs: 500,
    ...extra,
  });
}

beforeAll(async () => {
  [db] = await Promise.all([startPostgres(), gatewayBundle(), dns.start()]);
  await Promise.all([startServer("ldap1"), startServer("ldap2")]);
}, 120_000);

afterAll(async () => {
  await Promise.all([...live.keys()].map(killServer));
  await dns.stop();
  await db?.stop();
});

describe("FailoverClient", () => {
  it("looks users up over one long-lived connection to the first server", async () => {
    const c = client();
    const r = await c.lookupUser("alice");
    expect(r).toMatchObject({ ok: true, server: "ldap1", entry: { uid: "alice", uidNumber: "2000" } });
    expect(await c.lookupUser("ghost")).toMatchObject({ ok: false, reason: "not-found" });
    expect(c.events.filter((e) => e.event === "connected")).toHaveLength(1);
    await c.close();
  });

  it(
    "loses no lookup when one server is stopped and started again, and does not fail back",
    { timeout: 60_000 },
    async () => {
      const c = client();
      const stream = new LookupStream({ client: c, uids: db.seed.users.map((u) => u.uid), intervalMs: 50 });
      stream.start();
      await sleep(800);
      const t1 = Date.now();
      await killServer("ldap1");
      await sleep(1000);
      await startServer("ldap1");
      await sleep(800);
      // After ldap1 returned the client stays on ldap2 (no fail-back).
      expect(c.currentServer).toBe("ldap2");
      // Wait out the failed-server memory before taking the other one down,
      // as a rolling update must.
      await sleep(3500 - (Date.now() - t1) + 500);
      await killServer("ldap2");
      await sleep(1000);
      await startServer("ldap2");
      await sleep(500);
      const report = await stream.stop();
      await c.close();
      console.log(
        `lookups=${report.total} failed=${report.failed.length} maxLatency=${report.maxLatencyMs}ms ` +
          `switches=${JSON.stringify(report.switches.map(([at, s]) => [at - report.startedAt, s]))} ` +
          `unavailable=${JSON.stringify(report.unavailable)}`,
      );
      expect(report.failed).toEqual([]);
      expect(report.total).toBeGreaterThan(40);
      expect(report.switches.map(([, s]) => s)).toEqual(["ldap1", "ldap2", "ldap1"]);
      expect(report.unavailable.ldap1).toHaveLength(1);
      expect(report.unavailable.ldap2).toHaveLength(1);
      expect(report.offline).toEqual([]);
    },
  );

  it(
    "goes offline when the second server fails within the failed-server memory, and comes back",
    { timeout: 60_000 },
    async () => {
      const c = client();
      const stream = new LookupStream({ client: c, uids: ["alice", "bob"], intervalMs: 50 });
      stream.start();
      await sleep(500);
      await killServer("ldap1");
      await sleep(500);
      await startServer("ldap1"); // back and healthy, but still remembered as failed
      await killServer("ldap2");
      await sleep(800);
      const during = stream.report();
      expect(c.isOffline).toBe(true);
      const offlineFailures = during.failed.filter((f) => f.reason === "offline");
      expect(offlineFailures.length).toBeGreaterThan(3);
      // While offline, lookups fail at once.
      expect(Math.min(...offlineFailures.map((f) => f.ms))).toBeLessThan(50);
      // After offline_timeout (+random) the client retries and finds ldap1.
      await sleep(3000);
      const report = await stream.stop();
      await c.close();
      expect(c.isOffline).toBe(false);
      expect(report.offline).toHaveLength(1);
      expect(report.offline[0]?.to).toBeGreaterThan(report.offline[0]!.from + 1900);
      expect(report.switches.at(-1)?.[1]).toBe("ldap1");
      console.log(
        `offline window ${report.offline[0]!.to! - report.offline[0]!.from} ms, ${report.failed.length} of ${report.total} lookups failed`,
      );
      await startServer("ldap2");
    },
  );

  it("pays the search timeout once for a frozen server, then fails over", { timeout: 30_000 }, async () => {
    const c = client({ searchTimeoutMs: 1000 });
    expect(await c.lookupUser("alice")).toMatchObject({ ok: true, server: "ldap1" });
    const gw = live.get("ldap1")!;
    gw.proc.kill("SIGSTOP");
    try {
      const r = await c.lookupUser("bob");
      expect(r).toMatchObject({ ok: true, server: "ldap2" });
      expect(r.ms).toBeGreaterThanOrEqual(950);
      expect((await c.lookupUser("carol")).ms).toBeLessThan(500);
    } finally {
      gw.proc.kill("SIGCONT");
      await c.close();
    }
  });

  it(
    "resolves the name again on reconnect, following a server to a new address",
    { timeout: 30_000 },
    async () => {
      const c = client({ connectionLifetimeMs: 300 });
      expect(await c.lookupUser("alice")).toMatchObject({ ok: true, server: "ldap1" });
      await killServer("ldap1");
      await startServer("ldap1", "127.13.0.11");
      await sleep(400); // the connection has expired: the next lookup reconnects
      expect(await c.lookupUser("bob")).toMatchObject({ ok: true, server: "ldap1" });
      expect(c.events.filter((e) => e.event === "failed")).toEqual([]);
      expect(dns.queries.filter((q) => q.name === "ldap1").length).toBeGreaterThanOrEqual(2);
      await c.close();
    },
  );
});
