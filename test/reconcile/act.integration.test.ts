// act() against the Proxmox simulator and the real API server: each Action
// kind does exactly its one call (read back from the simulator's state and
// request log), the re-read guard keeps a plan made on a stale status from
// creating twice, the ownership re-check keeps a delete off a reused vmid,
// a collision on the vmid nextid gave is retried with the next one, and a
// lost answer is reported as an unknown outcome.
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { LdapPair } from "../../src/api/ldappair.js";
import { realmCreateParams } from "../../src/proxmox/normalize.js";
import { act, type ActOutcome } from "../../src/reconcile/act.js";
import { ClientPool, type PooledClient } from "../../src/reconcile/clients.js";
import { realmMarker } from "../../src/reconcile/desired.js";
import { pairMeta } from "../../src/reconcile/meta.js";
import { FINALIZER, type Action, type DesiredServer } from "../../src/reconcile/model.js";
import { mergedEnv, staleEnvKeys } from "../../src/reconcile/tiers.js";
import { ok, runTask } from "../pve-sim/helpers.js";
import { desiredOf, provisionByHand, startWorld, type World } from "./world.js";

let world: World;
let clients: ClientPool;
let client: PooledClient;
let pair: LdapPair;
let desired: DesiredServer;

beforeAll(async () => {
  world = await startWorld({
    kubeconfig: inject("kubeconfig"),
    databaseUrl: inject("databaseUrl"),
    namespace: "reconcile-act",
  });
  clients = new ClientPool({ timeoutMs: 5_000, retry: { retries: 1, minTimeoutMs: 5, maxTimeoutMs: 10 } });
  client = clients.acquire("test", {
    endpoint: world.sim.apiUrl,
    tokenId: world.sim.tokenId,
    tokenSecret: world.sim.tokenSecret,
    ca: world.sim.certPem,
    insecure: false,
  });
  pair = await world.createPair("act");
  desired = desiredOf(world, pair).servers[0]!;
}, 120_000);

afterAll(async () => {
  clients?.close();
  await world?.stop();
});

const run = (action: Action, on: LdapPair = pair): Promise<ActOutcome> =>
  act(action, { pair: on, client, resource: world.resource });

async function taskOf(outcome: ActOutcome): Promise<string> {
  expect(outcome).toMatchObject({ result: "started" });
  const upid = (outcome as { upid: string }).upid;
  const task = await world.sim.waitTask(upid);
  expect(task.exitstatus).toBe("OK");
  return upid;
}

const posts = (path: RegExp) => world.sim.requestLog.find("POST", path).length;

describe("task actions", () => {
  let vmid: number;

  it("PullImage starts a pull of the reference into the named volume", async () => {
    const outcome = await run({
      kind: "PullImage",
      node: "pve1",
      storage: "local",
      reference: desired.pull.reference,
      volid: desired.imageVolume,
    });
    await taskOf(outcome);
    const volumes = (await ok(world.sim, "GET", "/nodes/pve1/storage/local/content")) as { volid: string }[];
    expect(volumes.map((v) => v.volid)).toContain(desired.imageVolume);
  });

  it("PullImage of a volume already there sends nothing more than the refused pull", async () => {
    const outcome = await run({
      kind: "PullImage",
      node: "pve1",
      storage: "local",
      reference: desired.pull.reference,
      volid: desired.imageVolume,
    });
    expect(outcome).toMatchObject({ result: "skipped" });
  });

  it("CreateContainer takes nextid and creates the container stopped, with our tags", async () => {
    const outcome = await run({
      kind: "CreateContainer",
      server: "ldap1",
      node: "pve1",
      params: desired.create,
    });
    await taskOf(outcome);
    vmid = (outcome as { vmid: number }).vmid;
    const ct = world.sim.container(vmid)!;
    expect(ct.status).toBe("stopped");
    expect(ct.conf["hostname"]).toBe("ldap1");
    expect(String(ct.conf["tags"])).toContain(`ldappair-owner-${pair.metadata.uid}`);
  });

  it("ConfigureEnv writes the env against the digest it was planned with", async () => {
    const config = (await ok(world.sim, "GET", `/nodes/pve1/lxc/${vmid}/config`)) as Record<string, string>;
    const env = mergedEnv(config["env"], desired, staleEnvKeys(desired, []));
    const digest = config["digest"]!;
    expect(await run({ kind: "ConfigureEnv", server: "ldap1", node: "pve1", vmid, env, digest })).toEqual({
      result: "done",
    });
    expect(world.sim.containerEnv(vmid)).toMatchObject({
      LDAP_COMMON_NAME: "ldap1",
      PATH: expect.any(String),
    });
    // The same digest again no longer matches: someone (we) changed the config since.
    const again = await run({ kind: "ConfigureEnv", server: "ldap1", node: "pve1", vmid, env, digest });
    expect(again).toMatchObject({ result: "failed", problem: { transient: false } });
  });

  it("StartContainer starts it; UpdateInPlace changes memory on the running container", async () => {
    await taskOf(await run({ kind: "StartContainer", server: "ldap1", node: "pve1", vmid }));
    expect(world.sim.container(vmid)!.status).toBe("running");
    const { digest } = (await ok(world.sim, "GET", `/nodes/pve1/lxc/${vmid}/config`)) as { digest: string };
    const outcome = await run({
      kind: "UpdateInPlace",
      server: "ldap1",
      node: "pve1",
      vmid,
      set: { memory: 640 },
      delete: [],
      digest,
    });
    expect(outcome).toEqual({ result: "done" });
    expect(world.sim.container(vmid)!.conf["memory"]).toBe(640);
    expect(world.sim.container(vmid)!.status).toBe("running");
  });

  it("StopContainer is a shutdown with a timeout that ends in a forced stop", async () => {
    world.sim.requestLog.clear();
    await taskOf(
      await run({ kind: "StopContainer", server: "ldap1", node: "pve1", vmid, timeoutSeconds: 3 }),
    );
    expect(world.sim.container(vmid)!.status).toBe("stopped");
    const [shutdown] = world.sim.requestLog.find("POST", `/nodes/pve1/lxc/${vmid}/status/shutdown`);
    expect(shutdown?.params).toMatchObject({ timeout: "3", forceStop: "1" });
  });

  it("a stop of a container that stopped meanwhile is skipped, shutdown or hard stop alike", async () => {
    for (const overrule of [false, true]) {
      const stop = { kind: "StopContainer", server: "ldap1", node: "pve1", vmid, timeoutSeconds: 3 } as const;
      const outcome = await run(overrule ? { ...stop, overrule } : stop);
      expect(outcome).toMatchObject({ result: "skipped", reason: expect.stringMatching(/already stopped/) });
    }
    expect(world.sim.container(vmid)!.status).toBe("stopped");
  });

  it("DeleteContainer deletes it with purge", async () => {
    world.sim.requestLog.clear();
    await taskOf(await run({ kind: "DeleteContainer", server: "ldap1", node: "pve1", vmid }));
    expect(world.sim.container(vmid)).toBeUndefined();
    const [del] = world.sim.requestLog.find("DELETE", `/nodes/pve1/lxc/${vmid}`);
    expect(del?.params).toMatchObject({ purge: "1" });
  });

  it("DeleteImage removes the volume in an imgdel task", async () => {
    const pull = await runTask(world.sim, "POST", "/nodes/pve1/storage/local/oci-registry-pull", {
      reference: desired.pull.reference,
      filename: "act-delete",
    });
    expect(pull["exitstatus"]).toBe("OK");
    const volid = "local:vztmpl/act-delete.tar";
    world.sim.requestLog.clear();
    const upid = await taskOf(await run({ kind: "DeleteImage", node: "pve1", storage: "local", volid }));
    expect(upid).toContain(":imgdel:local:");
    expect(world.sim.requestLog.find("DELETE", `/nodes/pve1/storage/local/content/${volid}`)).toHaveLength(1);
    const volumes = (await ok(world.sim, "GET", "/nodes/pve1/storage/local/content")) as { volid: string }[];
    expect(volumes.map((v) => v.volid)).not.toContain(volid);
    expect(volumes.map((v) => v.volid)).toContain(desired.imageVolume);
  });
});

describe("guards", () => {
  it("a plan made before status recorded a task creates nothing (the LdapPair is read again first)", async () => {
    const seen = await world.getPair("act");
    const upid = "UPID:pve1:0000C0DE:00000001:67000000:vzcreate:150:root@pam!pve-sim:";
    await world.patchStatus("act", {
      task: {
        upid,
        action: "CreateContainer",
        server: "ldap1",
        node: "pve1",
        vmid: 150,
        startedAt: new Date().toISOString(),
      },
    });
    try {
      const before = posts(/^\/nodes\/pve1\/lxc$/);
      const outcome = await run(
        { kind: "CreateContainer", server: "ldap1", node: "pve1", params: desired.create },
        seen,
      );
      expect(outcome).toMatchObject({ result: "skipped" });
      expect((outcome as { reason: string }).reason).toContain(upid);
      expect(posts(/^\/nodes\/pve1\/lxc$/)).toBe(before);
    } finally {
      await world.patchStatus("act", { task: null });
    }
  });

  it("a plan made on the current status goes ahead", async () => {
    const current = await world.getPair("act");
    const outcome = await run(
      { kind: "CreateContainer", server: "ldap1", node: "pve1", params: desired.create },
      current,
    );
    await taskOf(outcome);
    const vmid = (outcome as { vmid: number }).vmid;
    await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`);
  });

  it("a delete of a vmid that now holds someone else's container is not sent", async () => {
    // Ours first; then, behind the operator's back, deleted and the vmid reused by a foreign container.
    const vmid = await provisionByHand(world, pair, "ldap1");
    await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`, { force: 1 });
    await runTask(world.sim, "POST", "/nodes/pve1/lxc", {
      vmid,
      ostemplate: desired.imageVolume,
      hostname: "ldap1",
      storage: "local-lvm",
    });
    world.sim.requestLog.clear();
    const outcome = await run({ kind: "DeleteContainer", server: "ldap1", node: "pve1", vmid });
    expect(outcome).toMatchObject({ result: "skipped" });
    expect((outcome as { reason: string }).reason).toContain(`CT ${vmid}`);
    expect(world.sim.requestLog.find("DELETE", `/nodes/pve1/lxc/${vmid}`)).toHaveLength(0);
    expect(world.sim.container(vmid)?.conf["hostname"]).toBe("ldap1");
    await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`);
  });

  it("a collision on the id nextid gave is retried with the next id", async () => {
    const next = Number(await ok(world.sim, "GET", "/cluster/nextid"));
    world.sim.faults.failRequests({
      method: "POST",
      path: "/nodes/pve1/lxc",
      status: 500,
      message: `CT ${next} already exists on node 'pve1'`,
    });
    world.sim.requestLog.clear();
    const outcome = await run({
      kind: "CreateContainer",
      server: "ldap1",
      node: "pve1",
      params: desired.create,
    });
    await taskOf(outcome);
    expect((outcome as { vmid: number }).vmid).toBe(next + 1);
    const creates = world.sim.requestLog.find("POST", "/nodes/pve1/lxc");
    expect(creates.map((r) => r.params?.["vmid"])).toEqual([String(next), String(next + 1)]);
    await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${next + 1}`);
  });

  it("a start whose answer is lost is an unknown outcome, sent once", async () => {
    const vmid = await provisionByHand(world, pair, "ldap1");
    await runTask(world.sim, "POST", `/nodes/pve1/lxc/${vmid}/status/stop`);
    world.sim.faults.dropResponses({
      method: "POST",
      path: `/nodes/pve1/lxc/${vmid}/status/start`,
      mode: "reset",
    });
    world.sim.requestLog.clear();
    const outcome = await run({ kind: "StartContainer", server: "ldap1", node: "pve1", vmid });
    expect(outcome).toMatchObject({ result: "unknown" });
    expect(world.sim.requestLog.find("POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toHaveLength(1);
    await world.sim.idle();
    await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`, { force: 1 });
  });

  it("a missing privilege fails naming the privilege and the path", async () => {
    const token = world.sim.addToken({
      id: "root@pam!audit-only",
      privileges: { "/": ["VM.Audit", "Sys.Audit"] },
    });
    const weak = clients.acquire("weak", {
      endpoint: world.sim.apiUrl,
      tokenId: token.id,
      tokenSecret: token.secret,
      ca: world.sim.certPem,
      insecure: false,
    });
    const outcome = await act(
      { kind: "CreateContainer", server: "ldap1", node: "pve1", params: desired.create },
      { pair: await world.getPair("act"), client: weak, resource: world.resource },
    );
    expect(outcome).toMatchObject({
      result: "failed",
      problem: { reason: "ProxmoxForbidden", transient: false },
    });
    const message = (outcome as { problem: { message: string } }).problem.message;
    expect(message).toMatch(/VM\.Allocate/);
    expect(message).toMatch(/\/vms/);
    expect(message).not.toContain(token.secret);
    clients.release("weak");
  });
});

describe("the stop of a hanging shutdown", () => {
  it("overrules our own shutdown still in flight with a hard stop", async () => {
    const vmid = await provisionByHand(world, pair, "ldap1");
    // A shutdown that would wait a minute: the gateway ignores nothing here, the task sleeps first.
    world.sim.setSpeed(60);
    let shutdown: string;
    try {
      shutdown = String(
        await ok(world.sim, "POST", `/nodes/pve1/lxc/${vmid}/status/shutdown`, { timeout: 60 }),
      );
    } finally {
      world.sim.setSpeed(0.01);
    }
    const current = await world.patchStatus("act", {
      task: {
        upid: shutdown,
        action: "StopContainer",
        server: "ldap1",
        node: "pve1",
        vmid,
        startedAt: new Date().toISOString(),
      },
    });
    try {
      world.sim.requestLog.clear();
      const upid = await taskOf(
        await run({ kind: "StopContainer", server: "ldap1", node: "pve1", vmid, timeoutSeconds: 3 }, current),
      );
      const [stop] = world.sim.requestLog.find("POST", `/nodes/pve1/lxc/${vmid}/status/stop`);
      expect(stop?.params).toMatchObject({ "overrule-shutdown": "1" });
      expect(world.sim.task(upid)).toBeDefined();
      expect((await world.sim.waitTask(shutdown)).exitstatus).not.toBe("OK");
      expect(world.sim.container(vmid)!.status).toBe("stopped");
    } finally {
      await world.patchStatus("act", { task: null });
      await runTask(world.sim, "DELETE", `/nodes/pve1/lxc/${vmid}`, { force: 1 });
    }
  });
});

describe("realm, node DNS and finalizer actions", () => {
  const settings = () => desiredOf(world, pair).realm!.settings;

  it("CreateRealm, UpdateRealm (against the digest), SyncRealm and DeleteRealm", async () => {
    const params = { ...realmCreateParams("ldap", settings()), comment: realmMarker(pairMeta(pair)) };
    expect(await run({ kind: "CreateRealm", name: "ldap", params })).toEqual({ result: "done" });
    const { digest } = (await ok(world.sim, "GET", "/access/domains/ldap")) as { digest: string };
    expect(
      await run({
        kind: "UpdateRealm",
        name: "ldap",
        set: { sync_attributes: "email=mail,firstname=givenname" },
        delete: [],
        digest,
      }),
    ).toEqual({
      result: "done",
    });
    expect(await ok(world.sim, "GET", "/access/domains/ldap")).toMatchObject({
      sync_attributes: "email=mail,firstname=givenname",
    });
    const sync = await run({ kind: "SyncRealm", name: "ldap", node: "pve1" });
    expect(sync).toMatchObject({ result: "started" });
    await world.sim.waitTask((sync as { upid: string }).upid);
    expect(await run({ kind: "DeleteRealm", name: "ldap" })).toEqual({ result: "done" });
    // Gone already: deleting again is done, not a failure.
    expect(await run({ kind: "DeleteRealm", name: "ldap" })).toEqual({ result: "done" });
  });

  it("SetNodeDns writes the node's DNS", async () => {
    const dns = { search: "example.com", dns1: world.site.dnsAddress, dns2: "127.0.0.53" };
    expect(await run({ kind: "SetNodeDns", node: "pve2", dns })).toEqual({ result: "done" });
    expect(await ok(world.sim, "GET", "/nodes/pve2/dns")).toMatchObject(dns);
  });

  it("AddFinalizer and RemoveFinalizer patch the LdapPair", async () => {
    const added = await run({ kind: "AddFinalizer" }, await world.getPair("act"));
    expect(added).toMatchObject({ result: "done" });
    expect((await world.getPair("act")).metadata.finalizers).toContain(FINALIZER);
    const removed = await run({ kind: "RemoveFinalizer" }, await world.getPair("act"));
    expect(removed).toMatchObject({ result: "done" });
    expect((await world.getPair("act")).metadata.finalizers ?? []).not.toContain(FINALIZER);
  });
});
