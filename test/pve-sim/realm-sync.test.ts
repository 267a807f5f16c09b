// The LDAP pair as containers of the simulator, from the gateway image, against the real PostgreSQL:
// LDAPS answers, binds, realm sync as Proxmox does it (with failover to server2), and the SSSD-like
// client riding through a stop and start of one server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FailoverClient } from "../failover-client/client.js";
import { LookupStream } from "../failover-client/stream.js";
import { ldapClient, ldapsearch } from "../gateway/ldap-tools.js";
import { queriesWithMembers } from "../testenv/management-schema.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";
import { call, createCt, ok, runTask, SEED_REALM } from "./helpers.js";
import { attachLdapSite, LDAP_GATEWAY_IMAGE, ldapGatewayImage, type LdapSite } from "./ldap-site.js";
import { PveSimulator } from "./simulator.js";

let db: TestPostgres;
let sim: PveSimulator;
let site: LdapSite;
const NODE = "pve1";
const VMID = { ldap1: 9101, ldap2: 9102 } as const;
type Name = keyof typeof VMID;

/** The container env the operator would set: the seed's variables for this server. */
function gatewayEnv(name: Name, queries: Record<string, string> = db.seed.queries): string {
  const env: Record<string, string> = {
    DIRECTORY_BACKEND: "sql",
    LDAP_COMMON_NAME: name,
    LDAP_BASE_DN: db.seed.baseDn,
    AUTH_BACKENDS: "sql",
    SQL_URI: db.url,
    REQUIRE_AUTH_FOR_SEARCH: "false",
    ...queries,
  };
  return Object.entries(env)
    .map(([k, v]) => `${k}=${v}`)
    .join("\0");
}

async function address(name: Name): Promise<string> {
  const ifs = (await ok(sim, "GET", `/nodes/${NODE}/lxc/${VMID[name]}/interfaces`)) as {
    name: string;
    inet?: string;
  }[];
  return ifs.find((i) => i.name === "eth0")!.inet!.split("/")[0]!;
}

async function power(name: Name, action: "start" | "stop"): Promise<void> {
  const st = await runTask(sim, "POST", `/nodes/${NODE}/lxc/${VMID[name]}/status/${action}`);
  expect(st["exitstatus"], `${action} ${name}`).toBe("OK");
  if (action === "start") await sim.waitBooted(VMID[name], 15_000);
}

async function sync(
  params: Record<string, string | number> = {},
): Promise<{ status: Record<string, unknown>; log: string[] }> {
  const upid = (await ok(sim, "POST", "/access/domains/ldap/sync", params)) as string;
  const status = await sim.waitTask(upid, 30_000);
  const log = (await ok(sim, "GET", `/nodes/${NODE}/tasks/${encodeURIComponent(upid)}/log`, {
    limit: 500,
  })) as {
    t: string;
  }[];
  return { status: status as unknown as Record<string, unknown>, log: log.map((l) => l.t) };
}

beforeAll(async () => {
  const [pg, image] = await Promise.all([startPostgres(), ldapGatewayImage()]);
  db = pg;
  sim = await PveSimulator.start({ speed: 0, catalog: [image], stopGraceMs: 1000 });
  site = await attachLdapSite(sim, { searchDomain: "example.com" });
  const pull = await runTask(sim, "POST", `/nodes/${NODE}/storage/local/oci-registry-pull`, {
    reference: `${LDAP_GATEWAY_IMAGE}:1.4.0`,
  });
  expect(pull["exitstatus"]).toBe("OK");
  for (const name of ["ldap1", "ldap2"] as const) {
    const st = await createCt(sim, NODE, VMID[name], "local:vztmpl/ldap-gateway_1.4.0.tar", {
      hostname: name,
    });
    expect(st["exitstatus"]).toBe("OK");
    // The image's Env replaced ours at creation: set it afterwards, then start (as the manager does).
    await ok(sim, "PUT", `/nodes/${NODE}/lxc/${VMID[name]}/config`, { env: gatewayEnv(name) });
    await power(name, "start");
  }
}, 180_000);

afterAll(async () => {
  await site?.stop();
  await sim?.stop();
  await db?.stop();
});

describe("gateway containers", () => {
  it("answer ldapsearch over LDAPS with the database's users, on their own addresses", async () => {
    for (const name of ["ldap1", "ldap2"] as const) {
      const ip = await address(name);
      expect(site.dns.lookup(name)).toBe(ip);
      const r = await ldapsearch(`ldaps://${ip}:636`, [
        "-b",
        db.seed.baseDn,
        "(objectClass=posixAccount)",
        "uid",
        "mail",
      ]);
      expect(r.code).toBe(0);
      expect(r.dns.sort()).toEqual(db.seed.users.map((u) => `uid=${u.uid},${db.seed.baseDn}`).sort());
      expect(r.stdout).toContain("mail: alice@example.com");
    }
  });

  it("check binds against the database's hashes", async () => {
    const c = ldapClient(`ldaps://${await address("ldap1")}:636`);
    const alice = db.seed.users.find((u) => u.uid === "alice")!;
    await c.bind(`uid=alice,${db.seed.baseDn}`, alice.password);
    await expect(c.bind(`uid=alice,${db.seed.baseDn}`, "wrong")).rejects.toThrow(/Invalid credentials|0x31/i);
    await c.unbind();
  });

  it("are resolvable through the site DNS, bare and under the search domain, which follows stops", async () => {
    const { resolveVia } = await import("./dns-server.js");
    const server = site.dns.address.server;
    expect(await resolveVia(server, "ldap2")).toBe(await address("ldap2"));
    expect(await resolveVia(server, "ldap2.example.com")).toBe(await address("ldap2"));
    const node = (await ok(sim, "GET", `/nodes/${NODE}/dns`)) as Record<string, string>;
    expect(node).toMatchObject({ search: "example.com", dns1: site.dnsAddress });
    await power("ldap2", "stop");
    await expect(resolveVia(server, "ldap2")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await power("ldap2", "start");
    expect(await resolveVia(server, "ldap2")).toBe(await address("ldap2"));
  });
});

describe("realm sync", () => {
  beforeAll(async () => {
    await ok(sim, "POST", "/access/domains", SEED_REALM);
  });

  it("imports the database's users (with email) and groups without members, with the seed's queries", async () => {
    const { status, log } = await sync(); // empty body, as the management software calls it
    expect(status["exitstatus"]).toBe("OK");
    expect(status["type"]).toBe("auth-realm-sync");
    expect(log).toContain("starting sync for realm ldap");
    expect(log.some((l) => l.startsWith("connected to ldap1"))).toBe(true);
    expect(log).toContain("adding user 'alice@ldap'");
    const users = (await ok(sim, "GET", "/access/users")) as {
      userid: string;
      email?: string;
      enable: number;
    }[];
    expect(users.map((u) => u.userid).sort()).toEqual(db.seed.users.map((u) => `${u.uid}@ldap`).sort());
    expect(users.find((u) => u.userid === "bob@ldap")).toMatchObject({ email: "bob@example.com", enable: 1 });
    const groups = (await ok(sim, "GET", "/access/groups")) as { groupid: string; users: string }[];
    expect(groups.map((g) => g.groupid).sort()).toEqual(["devs-ldap", "ldapusers-ldap", "sysadmins-ldap"]);
    // The seed's group query returns no member column: Proxmox gets groups without members.
    for (const g of groups) expect(g.users).toBe("");
    expect(await ok(sim, "GET", "/access/groups/devs-ldap")).toEqual({ members: [] });
  });

  it("imports members once the gateways' group query returns `members` (COALESCE/FILTER form)", async () => {
    for (const name of ["ldap1", "ldap2"] as const) {
      await ok(sim, "PUT", `/nodes/${NODE}/lxc/${VMID[name]}/config`, {
        env: gatewayEnv(name, queriesWithMembers(db.seed.baseDn)),
      });
      await power(name, "stop");
      await power(name, "start");
    }
    const { status, log } = await sync();
    expect(status["exitstatus"]).toBe("OK");
    expect(log).toContain("updating group 'devs-ldap' (2 members)");
    expect(await ok(sim, "GET", "/access/groups/devs-ldap")).toEqual({ members: ["alice@ldap", "bob@ldap"] });
    expect(await ok(sim, "GET", "/access/groups/sysadmins-ldap")).toEqual({ members: ["alice@ldap"] });
    expect(
      ((await ok(sim, "GET", "/access/users/alice@ldap")) as { groups: string[] }).groups.sort(),
    ).toEqual(["devs-ldap", "ldapusers-ldap", "sysadmins-ldap"]);
  });

  it("honours dry-run, enable-new and remove-vanished", async () => {
    await db.addUser({ uid: "erin", password: "erin-pw" });
    const dry = await sync({ "dry-run": 1 });
    expect(dry.status["type"]).toBe("auth-realm-sync-test");
    expect(dry.log).toContain("adding user 'erin@ldap'");
    expect((await call(sim, "GET", "/access/users/erin@ldap")).status).toBe(500);
    await sync({ "enable-new": 0 });
    expect(await ok(sim, "GET", "/access/users/erin@ldap")).toMatchObject({
      enable: 0,
      email: "erin@example.com",
    });
    await db.query(`DELETE FROM "Users" WHERE "uid" = 'erin'`);
    const kept = await sync({ scope: "users" });
    expect(kept.log.some((l) => l.includes("removing"))).toBe(false);
    expect((await call(sim, "GET", "/access/users/erin@ldap")).status).toBe(200);
    const removed = await sync({ "remove-vanished": "acl;entry;properties" });
    expect(removed.log).toContain("removing vanished user 'erin@ldap'");
    expect((await call(sim, "GET", "/access/users/erin@ldap")).status).toBe(500);
  });

  it("checks the connection on create when asked (check-connection)", async () => {
    const bad = await call(sim, "POST", "/access/domains", {
      ...SEED_REALM,
      realm: "ldap-check",
      default: 0,
      server1: "nosuchhost",
      server2: "nosuchhost2",
      "check-connection": 1,
    });
    expect(bad.status).toBe(500);
    expect(bad.reason).toMatch(
      /^add auth server failed: LDAP connect failed - nosuchhost: name resolution failed/,
    );
    expect((await call(sim, "GET", "/access/domains/ldap-check")).status).toBe(500);
    await ok(sim, "POST", "/access/domains", {
      ...SEED_REALM,
      realm: "ldap-check",
      default: 0,
      "check-connection": 1,
    });
    expect(await ok(sim, "GET", "/access/domains/ldap-check")).not.toHaveProperty("check-connection");
    await ok(sim, "DELETE", "/access/domains/ldap-check");
  });

  it("fails over to server2 when ldap1 is stopped", async () => {
    await power("ldap1", "stop");
    try {
      const { status, log } = await sync();
      expect(status["exitstatus"]).toBe("OK");
      expect(log.some((l) => l.startsWith("connected to ldap2"))).toBe(true);
      expect(log.some((l) => l.startsWith("connected to ldap1"))).toBe(false);
    } finally {
      await power("ldap1", "start");
    }
  });

  it("also fails over when server1 resolves but refuses connections", async () => {
    // A name whose address has no listener (a stale lease, as DNSMasq keeps after a crash).
    site.dns.setRecord("ldap-stale", `127.${sim.core.addresses.octet}.250.1`);
    await ok(sim, "PUT", "/access/domains/ldap", { server1: "ldap-stale" });
    try {
      const { status, log } = await sync();
      expect(status["exitstatus"]).toBe("OK");
      expect(log.some((l) => l.startsWith("connected to ldap2"))).toBe(true);
    } finally {
      await ok(sim, "PUT", "/access/domains/ldap", { server1: "ldap1" });
      site.dns.removeRecord("ldap-stale");
    }
  });

  it("fails the task with the LDAP error when neither server answers", async () => {
    await power("ldap1", "stop");
    await power("ldap2", "stop");
    try {
      const { status, log } = await sync();
      expect(String(status["exitstatus"])).toMatch(/^LDAP connect failed - ldap1: .*; ldap2: /);
      expect(log.at(-1)).toMatch(/^TASK ERROR: LDAP connect failed/);
    } finally {
      await power("ldap1", "start");
      await power("ldap2", "start");
    }
  });

  it("fails with a certificate error when verify is on (self-signed certificate)", async () => {
    await ok(sim, "PUT", "/access/domains/ldap", { verify: 1 });
    try {
      const { status } = await sync();
      expect(String(status["exitstatus"])).toMatch(/self[- ]signed certificate/i);
    } finally {
      await ok(sim, "PUT", "/access/domains/ldap", { verify: 0 });
    }
  });
});

describe("SSSD-like client against the simulated pair", () => {
  it("loses no lookup when ldap1 is stopped and started again", { timeout: 90_000 }, async () => {
    const client = new FailoverClient({
      uris: ["ldaps://ldap1:636", "ldaps://ldap2:636"],
      dnsServer: site.dns.address.server,
      baseDn: db.seed.baseDn,
      searchTimeoutMs: 2000,
      connectTimeoutMs: 2000,
      failedServerMemoryMs: 5000,
      offlineTimeoutMs: 3000,
    });
    const stream = new LookupStream({ client, uids: db.seed.users.map((u) => u.uid), intervalMs: 100 });
    stream.start();
    await new Promise((r) => setTimeout(r, 1000));
    await power("ldap1", "stop");
    await new Promise((r) => setTimeout(r, 1500));
    await power("ldap1", "start");
    await new Promise((r) => setTimeout(r, 1000));
    const report = await stream.stop();
    await client.close();
    console.log(
      `sim pair: ${report.total} lookups, ${report.failed.length} failed, max ${report.maxLatencyMs} ms, ` +
        `switches ${JSON.stringify(report.switches.map(([t, s]) => [t - report.startedAt, s]))}`,
    );
    expect(report.failed).toEqual([]);
    expect(report.switches.map(([, s]) => s)).toEqual(["ldap1", "ldap2"]);
    expect(report.unavailable["ldap1"]?.length).toBe(1);
  });
});

describe("replacing a server", () => {
  it(
    "moves its DNS record to the new container's address, and the sync follows",
    { timeout: 60_000 },
    async () => {
      const oldIp = await address("ldap2");
      await power("ldap2", "stop");
      const del = await runTask(sim, "DELETE", `/nodes/${NODE}/lxc/${VMID.ldap2}`, { purge: 1 });
      expect(del["exitstatus"]).toBe("OK");
      expect(site.dns.lookup("ldap2")).toBeUndefined();
      const vmid = 9103;
      expect(
        (await createCt(sim, NODE, vmid, "local:vztmpl/ldap-gateway_1.4.0.tar", { hostname: "ldap2" }))[
          "exitstatus"
        ],
      ).toBe("OK");
      await ok(sim, "PUT", `/nodes/${NODE}/lxc/${vmid}/config`, { env: gatewayEnv("ldap2") });
      expect((await runTask(sim, "POST", `/nodes/${NODE}/lxc/${vmid}/status/start`))["exitstatus"]).toBe(
        "OK",
      );
      await sim.waitBooted(vmid, 15_000);
      const newIp = site.dns.lookup("ldap2");
      expect(newIp).toBeDefined();
      expect(newIp).not.toBe(oldIp);
      await power("ldap1", "stop");
      try {
        const { status, log } = await sync();
        expect(status["exitstatus"]).toBe("OK");
        expect(log.some((l) => l.startsWith(`connected to ldap2 (${newIp}:636`))).toBe(true);
      } finally {
        await power("ldap1", "start");
      }
    },
  );
});
