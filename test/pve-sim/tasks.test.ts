import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import { call, createCt, DEBIAN, ok, TEST_CATALOG, TEST_STORAGES } from "./helpers.js";
import { formatUpid, parseUpid } from "./upid.js";

let sim: PveSimulator;
let vmid = 300;

beforeAll(async () => {
  sim = await PveSimulator.start({
    nodes: ["pve1", "pve2"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: TEST_STORAGES,
  });
});
afterAll(() => sim?.stop());
beforeEach(() => {
  sim.setSpeed(0.01);
  sim.faults.clear();
});

const statusPath = (upid: string) => `/nodes/${upid.split(":")[1]}/tasks/${encodeURIComponent(upid)}/status`;

describe("UPID", () => {
  it("formats and parses node:pid:pstart:starttime:type:id:user", () => {
    const u = {
      node: "pve1",
      pid: 0x1a2b,
      pstart: 0x3c4d5e,
      starttime: 0x6756a1b2,
      type: "vzcreate",
      id: "101",
      user: "op@pve!tok",
    };
    const s = formatUpid(u);
    expect(s).toBe("UPID:pve1:00001A2B:003C4D5E:6756A1B2:vzcreate:101:op@pve!tok:");
    expect(parseUpid(s)).toEqual(u);
    expect(parseUpid("UPID:pve1:xyz")).toBeUndefined();
  });
});

describe("task status and log", () => {
  it("running without exitstatus, then stopped with OK; fields decoded from the UPID", async () => {
    sim.setSpeed(0.2);
    const id = ++vmid;
    const upid = (await ok(sim, "POST", "/nodes/pve1/lxc", {
      vmid: id,
      ostemplate: DEBIAN,
      storage: "local-lvm",
    })) as string;
    const running = (await ok(sim, "GET", statusPath(upid))) as Record<string, unknown>;
    const u = parseUpid(upid)!;
    expect(running).toEqual({
      upid,
      node: "pve1",
      pid: u.pid,
      pstart: u.pstart,
      starttime: u.starttime,
      type: "vzcreate",
      id: String(id),
      user: sim.tokenId,
      tokenid: "pve-sim",
      status: "running",
    });
    await sim.waitTask(upid);
    const done = (await ok(sim, "GET", statusPath(upid))) as Record<string, unknown>;
    expect(done).toMatchObject({ status: "stopped", exitstatus: "OK" });
    const log = (await ok(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`)) as {
      n: number;
      t: string;
    }[];
    expect(log[0]).toEqual({ n: 1, t: `extracting archive '${DEBIAN}'` });
    expect(log.at(-1)?.t).toBe("TASK OK");
    const limited = (await ok(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`, {
      start: 1,
      limit: 1,
    })) as { n: number }[];
    expect(limited.map((l) => l.n)).toEqual([2]);
  });

  it("an error text as exitstatus and TASK ERROR in the log; WARNINGS: N counts as success", async () => {
    sim.faults.failNextTask({ type: "vzcreate", message: "no space left on device" });
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    expect(st["exitstatus"]).toBe("no space left on device");
    const log = (await ok(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent(String(st["upid"]))}/log`)) as {
      t: string;
    }[];
    expect(log.at(-1)?.t).toBe("TASK ERROR: no space left on device");

    sim.faults.warnNextTask({ type: "vzcreate", message: "old kernel", warnings: 2 });
    const id = ++vmid;
    const w = await createCt(sim, "pve1", id, DEBIAN);
    expect(w["exitstatus"]).toBe("WARNINGS: 2");
    expect(sim.container(id)?.conf["lock"]).toBeUndefined();
  });

  it("400 for a malformed UPID; no such task on another node", async () => {
    let r = await call(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent("UPID:garbage")}/status`);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ upid: "unable to parse worker upid" });
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    r = await call(sim, "GET", `/nodes/pve2/tasks/${encodeURIComponent(String(st["upid"]))}/status`);
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ upid: "no such task" });
  });

  it("a token sees its own tasks; others' only with Sys.Audit on the node", async () => {
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    const upid = String(st["upid"]);
    const plain = sim.addToken({ id: "plain@pve!t", privileges: { "/vms": ["VM.Audit"] } });
    const r = await call(sim, "GET", statusPath(upid), {}, { authorization: plain.authorization });
    expect(r.status).toBe(403);
    expect(r.reason).toBe("Permission check failed (/nodes/pve1, Sys.Audit)");
    const auditor = sim.addToken({ id: "audit@pve!t", privileges: { "/nodes/pve1": ["Sys.Audit"] } });
    expect(
      (await call(sim, "GET", statusPath(upid), {}, { authorization: auditor.authorization })).status,
    ).toBe(200);
    const mine = (await ok(
      sim,
      "GET",
      "/nodes/pve1/tasks",
      {},
      { authorization: plain.authorization },
    )) as unknown[];
    expect(mine).toEqual([]);
    const all = (await ok(sim, "GET", "/nodes/pve1/tasks", { typefilter: "vzcreate", limit: 500 })) as {
      upid: string;
    }[];
    expect(all.some((t) => t.upid === upid)).toBe(true);
  });
});
