// Every error class of the client, from the simulator's faults, and the rule that a POST or DELETE is
// sent once: the request log counts what reached the simulator.
import { createServer } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../../src/proxmox/client.js";
import { OutcomeUnknown, ProxmoxError } from "../../src/proxmox/errors.js";
import { ociVolid } from "../../src/proxmox/oci.js";
import { taskOutcome } from "../../src/proxmox/tasks.js";
import { IMAGE, SEED_REALM } from "../pve-sim/helpers.js";
import type { PveSimulator } from "../pve-sim/simulator.js";
import { clientFor, failure, logged, NET, twoNodeSimulator } from "./support.js";

let sim: PveSimulator;
let pve: ProxmoxClient;
let template: string;

const REALM = "faultrealm";

beforeAll(async () => {
  sim = await twoNodeSimulator();
  pve = clientFor(sim);
  template = ociVolid("local", `${IMAGE}:1.0.0`);
  await pve.waitForTask(await pve.pullOciImage("pve1", "local", { reference: `${IMAGE}:1.0.0` }), {
    pollMs: 10,
  });
  await pve.createRealm({
    ...SEED_REALM,
    realm: REALM,
    type: "ldap",
    mode: "ldaps",
    default: false,
    verify: false,
  });
});
afterAll(async () => {
  pve?.close();
  await sim?.stop();
});
beforeEach(() => {
  sim.setSpeed(0.01);
  sim.faults.clear();
  sim.requestLog.clear();
});

async function ended(upid: string) {
  return taskOutcome(await pve.waitForTask(upid, { pollMs: 10 }));
}

/** A new container, stopped or running, on pve1. */
async function container(running = false): Promise<number> {
  const vmid = await pve.nextId();
  await ended(
    await pve.createContainer("pve1", { vmid, ostemplate: template, storage: "local-lvm", net0: NET }),
  );
  if (running) await ended(await pve.startContainer("pve1", vmid));
  sim.requestLog.clear();
  return vmid;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("transient answers", () => {
  it("a GET answered 5xx is repeated with backoff and succeeds", async () => {
    sim.faults.failRequests({
      method: "GET",
      path: "/cluster/nextid",
      count: 2,
      status: 500,
      message: "got timeout",
    });
    expect(await pve.nextId()).toBeGreaterThanOrEqual(100);
    expect(logged(sim, "GET", "/cluster/nextid")).toBe(3);
  });

  it("repeats are bounded: a GET that keeps failing gives up after the policy's retries, transient", async () => {
    sim.faults.failRequests({
      method: "GET",
      path: "/cluster/nextid",
      always: true,
      status: 503,
      message: "busy",
    });
    const e = await failure(pve.nextId());
    expect(e).toMatchObject({ errorClass: "transient", reason: "server-error", status: 503, method: "GET" });
    expect(logged(sim, "GET", "/cluster/nextid")).toBe(4); // 1 + FAST_RETRY.retries
  });

  it("a POST answered 5xx is a transient error, sent once", async () => {
    const vmid = await container();
    sim.faults.failRequests({ method: "POST", path: "*/status/start", status: 500, message: "got timeout" });
    const e = await failure(pve.startContainer("pve1", vmid));
    expect(e).not.toBeInstanceOf(OutcomeUnknown);
    expect(e).toMatchObject({ errorClass: "transient", reason: "server-error" });
    expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);
  });

  it.each([595, 596] as const)(
    "a node unreachable (%i): GETs repeated then transient, a POST sent once",
    async (status) => {
      const vmid = await container();
      await pve.updateContainerConfig("pve1", vmid, { set: { description: "x" } }); // a reachable node works
      sim.faults.nodeUnreachable({ node: "pve1", status });
      const get = await failure(pve.containerStatus("pve1", vmid));
      expect(get).toMatchObject({ errorClass: "transient", reason: "node-unreachable", status });
      expect(logged(sim, "GET", `/nodes/pve1/lxc/${vmid}/status/current`)).toBe(4);
      const post = await failure(pve.startContainer("pve1", vmid));
      expect(post).not.toBeInstanceOf(OutcomeUnknown);
      expect(post).toMatchObject({ errorClass: "transient", reason: "node-unreachable", status });
      expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);
      // The cluster-wide list does not go through the node.
      expect((await pve.clusterResources()).some((r) => r.vmid === vmid)).toBe(true);
      sim.faults.nodeReachable("pve1");
    },
  );
});

describe("locks", () => {
  it("while `lock: create` is held, start fails transient (sent once) and a config PUT is repeated until it passes", async () => {
    sim.setSpeed(0.2); // creation holds the lock for 600 ms
    const vmid = await pve.nextId();
    const create = await pve.createContainer("pve1", {
      vmid,
      ostemplate: template,
      storage: "local-lvm",
      net0: NET,
    });
    const start = await failure(pve.startContainer("pve1", vmid));
    expect(start).toMatchObject({
      errorClass: "transient",
      reason: "locked",
      pveMessage: "CT is locked (create)",
    });
    expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);

    const patient = clientFor(sim, {
      retry: { retries: 12, minTimeoutMs: 50, maxTimeoutMs: 200, jitter: true },
    });
    try {
      await patient.updateContainerConfig("pve1", vmid, { set: { memory: 1024 } });
    } finally {
      patient.close();
    }
    const puts = sim.requestLog.find("PUT", `/nodes/pve1/lxc/${vmid}/config`);
    expect(puts.length).toBeGreaterThan(1);
    expect(puts[0]!.status).toBe(500);
    expect(puts.at(-1)!.status).toBe(200);
    expect(await ended(create)).toEqual({ state: "ok", warnings: 0 });
    expect(sim.container(vmid)?.conf["memory"]).toBe(1024);
  });

  it("`can't lock file ... got timeout`: a PUT is repeated, a POST is not", async () => {
    const vmid = await container();
    const message = `can't lock file '/run/lock/lxc/pve-config-${vmid}.lock' - got timeout`;
    sim.faults.failRequests({ method: "PUT", path: "*/config", status: 500, message });
    await pve.updateContainerConfig("pve1", vmid, { set: { cores: 2 } });
    expect(logged(sim, "PUT", `/nodes/pve1/lxc/${vmid}/config`)).toBe(2);
    sim.faults.failRequests({ method: "POST", path: "*/status/start", status: 500, message });
    const e = await failure(pve.startContainer("pve1", vmid));
    expect(e).toMatchObject({ errorClass: "transient", reason: "lock-timeout" });
    expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);
  });
});

describe("lost answers", () => {
  interface Case {
    /** Sets the scene; returns the call whose answer is lost and how to see that it happened anyway. */
    setup(): Promise<{
      method: string;
      path: string;
      act: (c: ProxmoxClient) => Promise<unknown>;
      happened: () => Promise<boolean>;
    }>;
  }
  let tag = 0;
  const CASES: Record<string, Case> = {
    create: {
      async setup() {
        const vmid = await pve.nextId();
        return {
          method: "POST",
          path: "/nodes/pve1/lxc",
          act: (c) =>
            c.createContainer("pve1", { vmid, ostemplate: template, storage: "local-lvm", net0: NET }),
          happened: async () => (await pve.clusterResources()).some((r) => r.vmid === vmid),
        };
      },
    },
    start: {
      async setup() {
        const vmid = await container();
        return {
          method: "POST",
          path: `/nodes/pve1/lxc/${vmid}/status/start`,
          act: (c) => c.startContainer("pve1", vmid),
          happened: async () => (await pve.containerStatus("pve1", vmid)).status === "running",
        };
      },
    },
    delete: {
      async setup() {
        const vmid = await container();
        return {
          method: "DELETE",
          path: `/nodes/pve1/lxc/${vmid}`,
          act: (c) => c.deleteContainer("pve1", vmid, { purge: true }),
          happened: async () => !(await pve.clusterResources()).some((r) => r.vmid === vmid),
        };
      },
    },
    pull: {
      async setup() {
        const reference = `${IMAGE}:7.0.${++tag}`;
        return {
          method: "POST",
          path: "/nodes/pve1/storage/local/oci-registry-pull",
          act: (c) => c.pullOciImage("pve1", "local", { reference }),
          happened: async () =>
            (await pve.storageContent("pve1", "local", "vztmpl")).some(
              (v) => v.volid === ociVolid("local", reference),
            ),
        };
      },
    },
    sync: {
      async setup() {
        // The sync task itself fails at once (no LDAP servers here); that it started is what counts.
        sim.faults.failNextTask({ type: "auth-realm-sync", message: "no servers" });
        const before = sim.state.tasks.filter((t) => t.type === "auth-realm-sync").length;
        return {
          method: "POST",
          path: `/access/domains/${REALM}/sync`,
          act: (c) => c.syncRealm(REALM, { scope: "users" }),
          happened: async () =>
            sim.state.tasks.filter((t) => t.type === "auth-realm-sync").length === before + 1,
        };
      },
    },
  };

  const rows = Object.keys(CASES).flatMap((name) =>
    (["reset", "timeout"] as const).map((mode) => [name, mode] as const),
  );
  it.each(rows)(
    "%s with the answer lost (%s): OutcomeUnknown, sent once, and it happened",
    async (name, mode) => {
      const c = await CASES[name]!.setup();
      sim.requestLog.clear();
      sim.faults.dropResponses({ method: c.method, path: c.path, mode });
      // A short timeout for the call whose answer never comes.
      const quick = clientFor(sim, { timeoutMs: 300 });
      const e = await failure(c.act(quick)).finally(() => quick.close());
      expect(e).toBeInstanceOf(OutcomeUnknown);
      expect(e).toMatchObject({
        errorClass: "outcome-unknown",
        reason: mode === "reset" ? "connection-reset" : "timeout",
        method: c.method,
        path: c.path,
      });
      expect(e.message).toMatch(/outcome unknown.*not repeated/);
      expect(logged(sim, c.method, c.path)).toBe(1);
      await sim.idle();
      expect(await c.happened()).toBe(true);
      expect(logged(sim, c.method, c.path)).toBe(1);
    },
  );

  it("a config PUT against a digest whose answer is lost: OutcomeUnknown, sent once, and it happened", async () => {
    const vmid = await container();
    const { digest } = await pve.containerConfig("pve1", vmid);
    sim.requestLog.clear();
    sim.faults.dropResponses({ method: "PUT", path: "*/config", mode: "reset" });
    // A repeat would meet the digest the first PUT changed: `detected modified configuration`, blaming nobody.
    const e = await failure(pve.updateContainerConfig("pve1", vmid, { set: { cores: 3 }, digest }));
    expect(e).toBeInstanceOf(OutcomeUnknown);
    expect(e).toMatchObject({ reason: "connection-reset", method: "PUT" });
    expect(logged(sim, "PUT", `/nodes/pve1/lxc/${vmid}/config`)).toBe(1);
    expect(sim.container(vmid)?.conf["cores"]).toBe(3);
  });

  it("a config PUT against a digest is still repeated after an answer that says it was not applied", async () => {
    const vmid = await container();
    const { digest } = await pve.containerConfig("pve1", vmid);
    sim.requestLog.clear();
    const message = `can't lock file '/run/lock/lxc/pve-config-${vmid}.lock' - got timeout`;
    sim.faults.failRequests({ method: "PUT", path: "*/config", status: 500, message });
    await pve.updateContainerConfig("pve1", vmid, { set: { cores: 3 }, digest });
    expect(logged(sim, "PUT", `/nodes/pve1/lxc/${vmid}/config`)).toBe(2);
    expect(sim.container(vmid)?.conf["cores"]).toBe(3);
  });

  it("a config PUT whose answer is lost is repeated (idempotent) and succeeds", async () => {
    const vmid = await container();
    sim.faults.dropResponses({ method: "PUT", path: "*/config", mode: "reset" });
    await pve.updateContainerConfig("pve1", vmid, { set: { swap: 256 } });
    expect(logged(sim, "PUT", `/nodes/pve1/lxc/${vmid}/config`)).toBe(2);
    expect(sim.container(vmid)?.conf["swap"]).toBe(256);
  });
});

describe("timeouts and latency", () => {
  it("a GET slower than the timeout is repeated and succeeds", async () => {
    sim.faults.addLatency({ method: "GET", path: "/version", ms: 400 });
    expect((await pve.version({ timeoutMs: 150 })).version).toBe("9.1.1");
    await wait(350);
    expect(logged(sim, "GET", "/version")).toBe(2);
  });

  it("a POST slower than the timeout: OutcomeUnknown, sent once, and it happened", async () => {
    const vmid = await container();
    sim.faults.addLatency({ method: "POST", path: "*/status/start", ms: 400 });
    const e = await failure(pve.startContainer("pve1", vmid, { timeoutMs: 150 }));
    expect(e).toBeInstanceOf(OutcomeUnknown);
    expect(e).toMatchObject({ reason: "timeout" });
    await wait(350);
    await sim.idle();
    expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);
    expect((await pve.containerStatus("pve1", vmid)).status).toBe("running");
  });

  it("latency within the timeout is only slower", async () => {
    sim.faults.addLatency({ path: "/cluster/nextid", ms: 100 });
    expect(await pve.nextId()).toBeGreaterThanOrEqual(100);
    expect(logged(sim, "GET", "/cluster/nextid")).toBe(1);
  });
});

describe("cancellation", () => {
  it("an aborted GET is cancelled and not repeated", async () => {
    sim.faults.addLatency({ method: "GET", path: "/version", ms: 300 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const e = await failure(pve.version({ signal: ac.signal }));
    expect(e).toMatchObject({ errorClass: "cancelled", reason: "cancelled" });
    await wait(350);
    expect(logged(sim, "GET", "/version")).toBe(1);
  });

  it("an aborted POST in flight is OutcomeUnknown; one aborted before sending is only cancelled", async () => {
    const vmid = await container();
    sim.faults.addLatency({ method: "POST", path: "*/status/start", ms: 300 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const e = await failure(pve.startContainer("pve1", vmid, { signal: ac.signal }));
    expect(e).toBeInstanceOf(OutcomeUnknown);
    expect(e).toMatchObject({ reason: "cancelled" });
    const before = await failure(pve.startContainer("pve1", vmid, { signal: AbortSignal.abort() }));
    expect(before).not.toBeInstanceOf(OutcomeUnknown);
    expect(before).toMatchObject({ errorClass: "cancelled" });
    await wait(350);
    await sim.idle();
    expect(logged(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)).toBe(1);
  });

  it("aborting while waiting between retries ends the call at once", async () => {
    sim.faults.failRequests({
      method: "GET",
      path: "/cluster/nextid",
      always: true,
      status: 500,
      message: "busy",
    });
    const slow = clientFor(sim, { retry: { retries: 5, minTimeoutMs: 10_000, maxTimeoutMs: 10_000 } });
    try {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      const t0 = Date.now();
      const e = await failure(slow.nextId({ signal: ac.signal }));
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(e).toBeInstanceOf(ProxmoxError);
      expect(e).toMatchObject({ errorClass: "cancelled" });
      expect(logged(sim, "GET", "/cluster/nextid")).toBe(1);
    } finally {
      slow.close();
    }
  });
});

describe("failing tasks", () => {
  it("a create task that fails reports its error text and leaves no container", async () => {
    const vmid = await pve.nextId();
    sim.faults.failNextTask({ type: "vzcreate", message: "unable to create CT - disk full" });
    const upid = await pve.createContainer("pve1", {
      vmid,
      ostemplate: template,
      storage: "local-lvm",
      net0: NET,
    });
    expect(await ended(upid)).toEqual({ state: "failed", message: "unable to create CT - disk full" });
    expect((await pve.taskLogAll(upid)).at(-1)?.t).toBe("TASK ERROR: unable to create CT - disk full");
    expect((await pve.clusterResources()).some((r) => r.vmid === vmid)).toBe(false);
  });

  it("a task with warnings is a success", async () => {
    const vmid = await container();
    sim.faults.warnNextTask({ type: "vzstart", message: "something odd", warnings: 2 });
    expect(await ended(await pve.startContainer("pve1", vmid))).toEqual({ state: "ok", warnings: 2 });
  });
});

describe("network failures", () => {
  it("nothing listening: a GET is repeated, a POST is transient (never sent), not OutcomeUnknown", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const dead = clientFor(sim, { endpoint: `https://127.0.0.1:${port}` });
    try {
      const get = await failure(dead.version());
      expect(get).toMatchObject({ errorClass: "transient", reason: "network", code: "ECONNREFUSED" });
      const post = await failure(dead.startContainer("pve1", 100));
      expect(post).not.toBeInstanceOf(OutcomeUnknown);
      expect(post).toMatchObject({ errorClass: "transient", reason: "network", method: "POST" });
    } finally {
      dead.close();
    }
  });
});
