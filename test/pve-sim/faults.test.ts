import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import { call, createCt, DEBIAN, runTask, TEST_CATALOG, TEST_STORAGES, type Params } from "./helpers.js";

let sim: PveSimulator;
let vmid = 600;

beforeAll(async () => {
  sim = await PveSimulator.start({
    nodes: ["pve1", "pve2"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: [{ ...TEST_STORAGES[0]!, shared: true }, TEST_STORAGES[1]!],
  });
});
afterAll(() => sim?.stop());
beforeEach(() => {
  sim.faults.clear();
  sim.requestLog.clear();
});

describe("request faults", () => {
  it("fails the next N matching requests with the given status and message, without performing them", async () => {
    sim.faults.failRequests({
      method: "POST",
      path: "/nodes/*/lxc",
      count: 2,
      status: 500,
      message: "got timeout",
    });
    for (let i = 0; i < 2; i++) {
      const r = await call(sim, "POST", "/nodes/pve1/lxc", {
        vmid: 650,
        ostemplate: DEBIAN,
        storage: "local-lvm",
      });
      expect([r.status, r.reason, r.body.message]).toEqual([500, "got timeout", "got timeout\n"]);
    }
    expect(sim.container(650)).toBeUndefined();
    expect((await call(sim, "GET", "/nodes/pve1/lxc")).status).toBe(200); // other method: untouched
    expect(
      (
        await runTask(sim, "POST", "/nodes/pve1/lxc", { vmid: 650, ostemplate: DEBIAN, storage: "local-lvm" })
      )["exitstatus"],
    ).toBe("OK");
    expect(sim.requestLog.entries.filter((e) => e.fault === "fail")).toHaveLength(2);
  });

  it("adds latency", async () => {
    sim.faults.addLatency({ path: "/version", ms: 300 });
    const t0 = Date.now();
    expect((await call(sim, "GET", "/version")).status).toBe(200);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    const t1 = Date.now();
    await call(sim, "GET", "/version");
    expect(Date.now() - t1).toBeLessThan(290);
  });

  it("drops the response after performing the action: reset", async () => {
    const id = ++vmid;
    sim.faults.dropResponses({ method: "POST", path: "/nodes/pve1/lxc", mode: "reset" });
    await expect(
      call(sim, "POST", "/nodes/pve1/lxc", { vmid: id, ostemplate: DEBIAN, storage: "local-lvm" }),
    ).rejects.toThrow(/socket hang up|ECONNRESET/);
    expect(sim.container(id)).toBeDefined(); // the creation happened
    await sim.idle();
    const again = await call(sim, "POST", "/nodes/pve1/lxc", {
      vmid: id,
      ostemplate: DEBIAN,
      storage: "local-lvm",
    });
    expect(again.reason).toBe(`CT ${id} already exists on node 'pve1'`);
    expect(sim.requestLog.entries[0]).toMatchObject({ status: 0, fault: "drop" });
  });

  it("drops the response after performing the action: timeout", async () => {
    const id = ++vmid;
    await createCt(sim, "pve1", id, DEBIAN);
    sim.faults.dropResponses({ path: `/nodes/pve1/lxc/${id}/status/start`, mode: "timeout" });
    await expect(
      call(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`, {}, { timeoutMs: 300 }),
    ).rejects.toThrow(/timeout/);
    await sim.idle();
    expect(sim.container(id)?.status).toBe("running");
  });

  it("makes the next task of a type fail with a message; its effect does not happen", async () => {
    const id = ++vmid;
    await createCt(sim, "pve1", id, DEBIAN);
    sim.faults.failNextTask({ type: "vzstart", message: "startup for container failed" });
    expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`))["exitstatus"]).toBe(
      "startup for container failed",
    );
    expect(sim.container(id)?.status).toBe("stopped");
    expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`))["exitstatus"]).toBe("OK");
  });

  it("a node made unreachable answers 595 (or 596) for requests routed to it; others keep working", async () => {
    sim.faults.nodeUnreachable({ node: "pve2" });
    let r = await call(sim, "GET", "/nodes/pve2/lxc");
    expect([r.status, r.reason]).toEqual([595, "Connection refused"]);
    expect((await call(sim, "GET", "/nodes/pve1/lxc")).status).toBe(200);
    expect((await call(sim, "GET", "/cluster/resources", { type: "vm" })).status).toBe(200);
    sim.faults.nodeUnreachable({ node: "pve2", status: 596 });
    r = await call(sim, "POST", "/nodes/pve2/lxc", { vmid: 999, ostemplate: DEBIAN });
    expect([r.status, r.reason]).toEqual([596, "tls_process_server_certificate: certificate verify failed"]);
    expect(sim.container(999)).toBeUndefined();
    sim.faults.nodeReachable("pve2");
    expect((await call(sim, "GET", "/nodes/pve2/lxc")).status).toBe(200);
  });

  it("clear removes every fault", async () => {
    sim.faults.failRequests({ path: "*", always: true, status: 503, message: "down" });
    sim.faults.nodeUnreachable({ node: "pve1" });
    expect((await call(sim, "GET", "/version")).status).toBe(503);
    sim.faults.clear();
    expect((await call(sim, "GET", "/version")).status).toBe(200);
    expect((await call(sim, "GET", "/nodes/pve1/lxc")).status).toBe(200);
  });
});

describe("admin API", () => {
  const admin = (method: string, path: string, body?: Params) =>
    call(sim, method, `/sim${path}`, body ?? {}, { json: true, authorization: null });

  it("injects and lists faults over HTTP, kills processes, shows the request log and state", async () => {
    expect(
      (
        await admin("POST", "/faults/fail-requests", {
          method: "GET",
          path: "/nodes/pve1/dns",
          status: 500,
          message: "boom",
        })
      ).status,
    ).toBe(200);
    expect((await admin("POST", "/faults/node-unreachable", { node: "pve2", status: 596 })).status).toBe(200);
    expect((await admin("POST", "/faults/fail-task", { type: "vzdestroy", message: "nope" })).status).toBe(
      200,
    );
    expect((await admin("POST", "/faults/latency", { path: "/version", ms: 1 })).status).toBe(200);
    expect(
      (await admin("POST", "/faults/drop-responses", { path: "/cluster/nextid", mode: "reset" })).status,
    ).toBe(200);
    const list = (await admin("GET", "/faults")).body.data;
    expect(list.failRequests[0]).toMatchObject({ path: "/nodes/pve1/dns", status: 500, left: 1 });
    expect(list.unreachable).toEqual([{ node: "pve2", status: 596 }]);
    expect(list.failTasks[0]).toMatchObject({ type: "vzdestroy", message: "nope" });
    expect((await call(sim, "GET", "/nodes/pve1/dns")).reason).toBe("boom");
    expect((await call(sim, "GET", "/nodes/pve2/dns")).status).toBe(596);
    expect((await admin("DELETE", "/faults/node-unreachable/pve2")).status).toBe(200);
    expect((await call(sim, "GET", "/nodes/pve2/dns")).status).toBe(200);
    await admin("DELETE", "/faults");
    expect((await admin("GET", "/faults")).body.data.failTasks).toEqual([]);

    const log = (await admin("GET", "/requests")).body.data as { path: string }[];
    expect(log.map((e) => e.path)).toContain("/nodes/pve1/dns");
    const state = (await admin("GET", "/state")).body.data;
    expect(state.version).toBe(1);
    expect(JSON.stringify(state)).not.toContain(sim.tokenSecret);
    const kill = await admin("POST", "/containers/12345/kill");
    expect(kill.body.data).toEqual({ killed: false });
    expect((await admin("GET", "/nope")).status).toBe(404);
    expect((await admin("GET", "")).body.data.routes).toContain(
      "POST /sim/faults/fail-task {type, message, id?, count?}",
    );
  });

  it("warn-task and speed over HTTP", async () => {
    expect((await admin("POST", "/speed", { speed: 0 })).status).toBe(200);
    expect(sim.config.speed).toBe(0);
    await admin("POST", "/faults/warn-task", { type: "vzcreate", message: "careful", warnings: 3 });
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    expect(st["exitstatus"]).toBe("WARNINGS: 3");
    await admin("POST", "/speed", { speed: 0.01 });
  });
});
