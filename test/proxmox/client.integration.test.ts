// Every operation of the Proxmox client against the simulator, as the operator uses them.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../../src/proxmox/client.js";
import { ProxmoxError, ProxmoxVersionError } from "../../src/proxmox/errors.js";
import { ociVolid } from "../../src/proxmox/oci.js";
import { taskOutcome } from "../../src/proxmox/tasks.js";
import { parseUpid } from "../../src/proxmox/upid.js";
import { IMAGE, SEED_REALM } from "../pve-sim/helpers.js";
import { PveSimulator } from "../pve-sim/simulator.js";
import { clientFor, failure, logged, NET, twoNodeSimulator } from "./support.js";

let sim: PveSimulator;
let pve: ProxmoxClient;

beforeAll(async () => {
  sim = await twoNodeSimulator();
  pve = clientFor(sim);
});
afterAll(async () => {
  pve?.close();
  await sim?.stop();
});
beforeEach(() => {
  sim.faults.clear();
  sim.requestLog.clear();
});

async function done(upid: string): Promise<void> {
  const st = await pve.waitForTask(upid, { pollMs: 10 });
  expect(taskOutcome(st)).toEqual({ state: "ok", warnings: 0 });
}

async function pulled(tag: string): Promise<string> {
  const reference = `${IMAGE}:${tag}`;
  const volid = ociVolid("local", reference);
  const have = await pve.storageContent("pve1", "local", "vztmpl");
  if (!have.some((v) => v.volid === volid))
    await done(await pve.pullOciImage("pve1", "local", { reference }));
  return volid;
}

describe("cluster", () => {
  it("checks the version: 9.1 passes", async () => {
    expect(await pve.checkVersion()).toMatchObject({ version: "9.1.1", release: "9.1" });
  });

  it("refuses a Proxmox older than 9.1 with a typed, permanent error", async () => {
    const old = await PveSimulator.start({ speed: 0 });
    old.router.get("/version", () => ({ version: "8.4.1", release: "8.4", repoid: "abc" }));
    const c = clientFor(old);
    try {
      const e = await failure(c.checkVersion());
      expect(e).toBeInstanceOf(ProxmoxVersionError);
      expect(e).toMatchObject({ reason: "unsupported-version", errorClass: "permanent", version: "8.4.1" });
      expect(e.message).toMatch(/Proxmox VE 8\.4\.1 is older than 9\.1: OCI containers/);
    } finally {
      c.close();
      await old.stop();
    }
  });

  it("nextid is a number", async () => {
    const id = await pve.nextId();
    expect(typeof id).toBe("number");
    expect(id).toBeGreaterThanOrEqual(100);
  });
});

describe("images and containers", () => {
  it("lists storage content and pulls an OCI image to the volume Proxmox names", async () => {
    const before = await pve.storageContent("pve1", "local", "vztmpl");
    expect(before.map((v) => v.volid)).toContain("local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst");
    const upid = await pve.pullOciImage("pve1", "local", { reference: `${IMAGE}:1.2.3` });
    expect(parseUpid(upid)).toMatchObject({ node: "pve1", type: "ociregistrypull", id: "local" });
    await done(upid);
    const after = await pve.storageContent("pve1", "local", "vztmpl");
    expect(after.map((v) => v.volid)).toContain(ociVolid("local", `${IMAGE}:1.2.3`));
    expect(logged(sim, "GET", "/nodes/pve1/storage/local/content")).toBe(2);
    expect(sim.requestLog.find("GET", "/nodes/pve1/storage/local/content")[0]!.params).toEqual({
      content: "vztmpl",
    });
  });

  it("creates stopped with env/entrypoint from the image, PUTs config with digest and delete, starts, reads status and interfaces", async () => {
    const ostemplate = await pulled("1.2.3");
    const vmid = await pve.nextId();
    const create = await pve.createContainer("pve1", {
      vmid,
      ostemplate,
      hostname: "ldap1",
      storage: "local-lvm",
      net0: NET,
      memory: 256,
      unprivileged: true,
      onboot: true,
      tags: "ldappair-b;ldappair-a",
      description: "made by a test",
    });
    expect(parseUpid(create)).toMatchObject({ node: "pve1", type: "vzcreate", id: String(vmid) });
    // Booleans go as 1/0 in a form body.
    const sent = sim.requestLog.find("POST", "/nodes/pve1/lxc")[0]!;
    expect(sent.params).toMatchObject({ vmid: String(vmid), unprivileged: "1", onboot: "1", memory: "256" });
    await done(create);

    const conf = await pve.containerConfig("pve1", vmid);
    expect(conf.digest).toMatch(/^[0-9a-f]{40}$/);
    expect(conf.entrypoint).toBe("docker-entrypoint.sh node index.js");
    expect(conf.env).toContain("NODE_VERSION=24.1.0");
    expect(String(conf["net0"])).toContain("host-managed=1");
    expect(conf.tags).toBe("ldappair-a;ldappair-b");

    await pve.updateContainerConfig("pve1", vmid, {
      set: { env: "NODE_VERSION=24.1.0\0LDAP_BASE_DN=dc=example,dc=com", cores: 2 },
      delete: ["description"],
      digest: conf.digest,
    });
    const changed = await pve.containerConfig("pve1", vmid);
    expect(changed.env).toBe("NODE_VERSION=24.1.0\0LDAP_BASE_DN=dc=example,dc=com");
    expect(changed["cores"]).toBe(2);
    expect(changed["description"]).toBeUndefined();

    // A digest from before that change: refused, permanent, and not repeated.
    sim.requestLog.clear();
    const stale = await failure(
      pve.updateContainerConfig("pve1", vmid, { set: { memory: 512 }, digest: conf.digest }),
    );
    expect(stale).toMatchObject({ reason: "config-changed", errorClass: "permanent", status: 500 });
    expect(logged(sim, "PUT", `/nodes/pve1/lxc/${vmid}/config`)).toBe(1);

    await done(await pve.startContainer("pve1", vmid));
    expect(await pve.containerStatus("pve1", vmid)).toMatchObject({ vmid, status: "running", name: "ldap1" });
    const ifaces = await pve.containerInterfaces("pve1", vmid);
    expect(ifaces.find((i) => i.name === "eth0")?.inet).toMatch(/^127\.\d+\.\d+\.\d+\/8$/);

    // env on a running container waits for the next start.
    await pve.updateContainerConfig("pve1", vmid, { set: { env: "A=1" } });
    const pending = await pve.containerPending("pve1", vmid);
    expect(pending.find((p) => p.key === "env")).toMatchObject({ pending: "A=1" });
    expect((await pve.containerConfig("pve1", vmid, { current: true })).env).not.toBe("A=1");

    // Starting a running container fails at once: permanent, one request.
    sim.requestLog.clear();
    const again = await failure(pve.startContainer("pve1", vmid));
    expect(again).toMatchObject({ reason: "already-running", errorClass: "permanent" });
    expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);

    const resources = await pve.clusterResources();
    expect(resources.find((r) => r.vmid === vmid)).toMatchObject({
      id: `lxc/${vmid}`,
      type: "lxc",
      node: "pve1",
      status: "running",
      tags: "ldappair-a;ldappair-b",
    });
    expect(sim.requestLog.find("GET", "/cluster/resources")[0]!.params).toEqual({ type: "vm" });
  });

  it("shuts down with timeout and forceStop, stops with overrule-shutdown, deletes with purge", async () => {
    const ostemplate = await pulled("1.2.3");
    const vmid = await pve.nextId();
    await done(
      await pve.createContainer("pve1", {
        vmid,
        ostemplate,
        hostname: "ldap2",
        storage: "local-lvm",
        net0: NET,
      }),
    );
    await done(await pve.startContainer("pve1", vmid));

    await done(await pve.shutdownContainer("pve1", vmid, { timeout: 5, forceStop: true }));
    expect(sim.requestLog.find("POST", "*/status/shutdown")[0]!.params).toEqual({
      timeout: "5",
      forceStop: "1",
    });
    expect((await pve.containerStatus("pve1", vmid)).status).toBe("stopped");

    await done(await pve.startContainer("pve1", vmid));
    await done(await pve.stopContainer("pve1", vmid, { overruleShutdown: true }));
    expect(sim.requestLog.find("POST", "*/status/stop")[0]!.params).toEqual({ "overrule-shutdown": "1" });
    expect((await pve.containerStatus("pve1", vmid)).status).toBe("stopped");

    const del = await pve.deleteContainer("pve1", vmid, { purge: true });
    expect(sim.requestLog.find("DELETE", `/nodes/pve1/lxc/${vmid}`)[0]!.params).toEqual({ purge: "1" });
    await done(del);
    expect(sim.container(vmid)).toBeUndefined();
    sim.requestLog.clear();
    const gone = await failure(pve.containerStatus("pve1", vmid));
    expect(gone).toMatchObject({ reason: "does-not-exist", errorClass: "permanent" });
    expect(logged(sim, "GET", `/nodes/pve1/lxc/${vmid}/status/current`)).toBe(1);
  });
});

describe("tasks", () => {
  it("asks the node named in the UPID and reads the whole log", async () => {
    const ostemplate = await pulled("1.2.3");
    const vmid = await pve.nextId();
    const upid = await pve.createContainer("pve1", { vmid, ostemplate, storage: "local-lvm", net0: NET });
    await done(upid);
    // A UPID of another node is asked of that node, whichever node the client talked to before.
    const foreign = upid.replace(/^UPID:pve1:/, "UPID:pve2:");
    sim.requestLog.clear();
    const e = await failure(pve.taskStatus(foreign));
    expect(e).toBeInstanceOf(ProxmoxError);
    await failure(pve.taskLog(foreign));
    expect(sim.requestLog.entries.map((r) => r.path)).toEqual([
      `/nodes/pve2/tasks/${foreign}/status`,
      `/nodes/pve2/tasks/${foreign}/log`,
    ]);

    const st = await pve.taskStatus(upid);
    expect(st).toMatchObject({ upid, node: "pve1", type: "vzcreate", status: "stopped", exitstatus: "OK" });
    const log = await pve.taskLogAll(upid);
    expect(log[0]).toEqual({ n: 1, t: `extracting archive '${ostemplate}'` });
    expect(log.at(-1)?.t).toBe("TASK OK");
    expect(await pve.taskLog(upid, { start: 1, limit: 1 })).toEqual([log[1]]);
    await done(await pve.deleteContainer("pve1", vmid));
  });

  it("refuses a malformed UPID before sending anything", async () => {
    await expect(pve.taskStatus("UPID:pve1:nonsense")).rejects.toThrow(/not a Proxmox task id/);
    expect(sim.requestLog.entries).toHaveLength(0);
  });
});

describe("realms", () => {
  const realm = "ldaptest";
  const seed = {
    ...SEED_REALM,
    realm,
    type: "ldap" as const,
    mode: "ldaps" as const,
    default: true,
    verify: false,
  };

  it("creates, lists, reads with digest, updates with digest and delete, syncs and deletes", async () => {
    await pve.createRealm(seed);
    expect(sim.requestLog.find("POST", "/access/domains")[0]!.params).toMatchObject({
      default: "1",
      verify: "0",
    });
    expect((await pve.realms()).find((r) => r.realm === realm)).toMatchObject({ type: "ldap", default: 1 });
    const cfg = await pve.realm(realm);
    expect(cfg).toMatchObject({ type: "ldap", server1: "ldap1", base_dn: "dc=example,dc=com" });
    expect(cfg.digest).toBeTruthy();

    await pve.updateRealm(realm, {
      set: { comment: "managed" },
      delete: ["sync_attributes"],
      digest: cfg.digest,
    });
    const updated = await pve.realm(realm);
    expect(updated["comment"]).toBe("managed");
    expect(updated["sync_attributes"]).toBeUndefined();
    const stale = await failure(pve.updateRealm(realm, { set: { comment: "x" }, digest: cfg.digest }));
    expect(stale).toMatchObject({ reason: "config-changed", errorClass: "permanent" });

    const exists = await failure(pve.createRealm(seed));
    expect(exists).toMatchObject({ reason: "already-exists", errorClass: "permanent" });

    sim.faults.failNextTask({ type: "auth-realm-sync", message: "no LDAP server in this test" });
    const sync = await pve.syncRealm(realm, { scope: "both", "enable-new": true });
    expect(parseUpid(sync)).toMatchObject({ type: "auth-realm-sync", id: realm });
    expect(sim.requestLog.find("POST", `/access/domains/${realm}/sync`)[0]!.params).toEqual({
      scope: "both",
      "enable-new": "1",
    });
    expect(taskOutcome(await pve.waitForTask(sync, { pollMs: 10 }))).toEqual({
      state: "failed",
      message: "no LDAP server in this test",
    });

    await pve.deleteRealm(realm);
    expect((await pve.realms()).some((r) => r.realm === realm)).toBe(false);
    const missing = await failure(pve.deleteRealm(realm));
    expect(missing).toMatchObject({ reason: "does-not-exist", errorClass: "permanent" });
  });

  it("a sync of an unknown realm is a 400 naming the parameter", async () => {
    const e = await failure(pve.syncRealm("nosuchrealm", { scope: "users" }));
    expect(e).toMatchObject({ status: 400, reason: "bad-request", errorClass: "permanent" });
    expect(Object.keys((e as ProxmoxError).errors ?? {})).not.toHaveLength(0);
    expect(e.message).toMatch(/POST \/access\/domains\/nosuchrealm\/sync: 400 .*\(\w+: /);
  });
});

describe("node DNS", () => {
  it("reads and writes a node's DNS", async () => {
    await pve.updateNodeDns("pve2", { search: "example.com", dns1: "10.0.0.53", dns2: "10.0.0.54" });
    expect(await pve.nodeDns("pve2")).toMatchObject({
      search: "example.com",
      dns1: "10.0.0.53",
      dns2: "10.0.0.54",
    });
    expect(sim.requestLog.find("PUT", "/nodes/pve2/dns")[0]!.params).toEqual({
      search: "example.com",
      dns1: "10.0.0.53",
      dns2: "10.0.0.54",
    });
  });

  it("a malformed address is a 400 naming it, not repeated", async () => {
    const e = await failure(pve.updateNodeDns("pve2", { search: "example.com", dns1: "not-an-ip" }));
    expect(e).toMatchObject({ status: 400, reason: "bad-request", errors: { dns1: expect.any(String) } });
    expect(logged(sim, "PUT", "/nodes/pve2/dns")).toBe(1);
  });
});

describe("parameters", () => {
  it("never deletes the caller's keys, and leaves undefined ones out", async () => {
    const params = { reference: `${IMAGE}:9.9.9`, filename: undefined };
    const upid = await pve.pullOciImage("pve1", "local", params);
    expect(params).toEqual({ reference: `${IMAGE}:9.9.9`, filename: undefined });
    expect("filename" in params).toBe(true);
    expect(sim.requestLog.find("POST", "*/oci-registry-pull")[0]!.params).toEqual({
      reference: `${IMAGE}:9.9.9`,
    });
    await done(upid);
  });
});
