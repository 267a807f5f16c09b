// The shared inventory against the Proxmox simulator: one `/cluster/resources`
// call per interval however many pairs subscribe, and drift (a container
// stopped behind the operator's back) seen within one interval.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../../src/proxmox/client.js";
import { InventoryRegistry, type InventoryEvent, type InventoryLister } from "../../src/proxmox/inventory.js";
import { createCt, ok, runTask, TEST_CATALOG } from "../pve-sim/helpers.js";
import { PveSimulator } from "../pve-sim/simulator.js";
import { clientFor } from "./support.js";

/** What a pair hands the registry: its client's `/cluster/resources?type=vm`, cancellable. */
const listerOf =
  (client: ProxmoxClient): InventoryLister =>
  (signal) =>
    client.clusterResources({ signal });
const endpointOf = (client: ProxmoxClient) => ({ url: client.endpoint, tokenId: client.tokenId });
const resourceCalls = (sim: PveSimulator) => sim.requestLog.find("GET", "/cluster/resources");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, probe: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

let sim: PveSimulator;
let template: string;

beforeAll(async () => {
  sim = await PveSimulator.start({ nodes: ["pve1"], speed: 0, catalog: TEST_CATALOG });
  const pull = await runTask(sim, "POST", "/nodes/pve1/storage/local/oci-registry-pull", {
    reference: "docker.io/library/builtin:1.0",
  });
  expect(pull["exitstatus"]).toBe("OK");
  template = "local:vztmpl/builtin_1.0.tar";
});
afterAll(async () => {
  await sim?.stop();
});

async function runningContainer(vmid: number): Promise<void> {
  expect((await createCt(sim, "pve1", vmid, template))["exitstatus"]).toBe("OK");
  expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`))["exitstatus"]).toBe("OK");
}

describe("shared inventory against the simulator", () => {
  it("makes exactly one /cluster/resources call per interval for 50 subscribed pairs", async () => {
    const interval = 400;
    const registry = new InventoryRegistry({ intervalMs: interval });
    sim.requestLog.clear();
    // Each pair brings its own client, as pairs reconciled independently would.
    const clients = Array.from({ length: 50 }, () => clientFor(sim));
    const heard = clients.map(() => [] as InventoryEvent[]);
    const subs = clients.map((c, i) =>
      registry.subscribe(endpointOf(c), listerOf(c), (e) => heard[i]!.push(e)),
    );
    try {
      await until("first snapshot for all", () => (heard.every((s) => s.length > 0) ? true : undefined));
      const start = resourceCalls(sim)[0]!.time;
      // Five intervals and a half: polls at 0, 1, 2, 3, 4 and 5 intervals.
      await sleep(start + 5.5 * interval - Date.now());
      const calls = resourceCalls(sim);
      expect(calls).toHaveLength(6);
      const gaps = calls.slice(1).map((c, i) => c.time - calls[i]!.time);
      for (const gap of gaps) expect(Math.abs(gap - interval)).toBeLessThan(interval / 4);
      expect(heard.every((s) => s[0]?.type === "snapshot" && s[0].first)).toBe(true);
    } finally {
      for (const s of subs) s.unsubscribe();
      for (const c of clients) c.close();
    }
    expect(registry.endpoints).toBe(0);
    const after = resourceCalls(sim).length;
    await sleep(2 * interval);
    expect(resourceCalls(sim)).toHaveLength(after);
  });

  it("reports a container killed, and one stopped by another token, within one interval", async () => {
    await runningContainer(201);
    await runningContainer(202);
    const interval = 1_000;
    const registry = new InventoryRegistry({ intervalMs: interval });
    const events: Array<{ at: number; event: InventoryEvent }> = [];
    const client = clientFor(sim);
    const sub = registry.subscribe(endpointOf(client), listerOf(client), (event) =>
      events.push({ at: Date.now(), event }),
    );
    const stoppedAt = (vmid: number, since: number) =>
      events.find(
        ({ at, event }) =>
          at >= since &&
          event.type === "snapshot" &&
          event.changes.some((c) => c.vmid === vmid && c.kind === "changed" && c.after.status === "stopped"),
      )?.at;
    try {
      await until("both running in the snapshot", () =>
        sub.snapshot()?.containers.get(201)?.status === "running" &&
        sub.snapshot()?.containers.get(202)?.status === "running"
          ? true
          : undefined,
      );

      const killedAt = Date.now();
      await ok(sim, "POST", "/sim/containers/201/kill");
      const seenKill = await until("kill reported", () => stoppedAt(201, killedAt), 3 * interval);
      expect(seenKill - killedAt).toBeLessThanOrEqual(interval + 250);

      const other = sim.addToken({
        id: "admin@pve!other",
        privileges: { "/vms": ["VM.PowerMgmt", "VM.Audit"] },
      });
      const stopAt = Date.now();
      const upid = (await ok(
        sim,
        "POST",
        "/nodes/pve1/lxc/202/status/stop",
        {},
        { authorization: other.authorization },
      )) as string;
      await sim.waitTask(upid);
      const seenStop = await until("stop reported", () => stoppedAt(202, stopAt), 3 * interval);
      expect(seenStop - stopAt).toBeLessThanOrEqual(interval + 250);
      expect(sub.snapshot()?.containers.get(202)?.status).toBe("stopped");
    } finally {
      sub.unsubscribe();
      client.close();
    }
  });
});
