import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import {
  call,
  createCt,
  DEBIAN,
  ok,
  runTask,
  startCreate,
  TEST_CATALOG,
  TEST_STORAGES,
  ticketLogin,
  type Params,
} from "./helpers.js";
import { logPage, statusFilterFormat, statusType, wantedStatusTypes } from "./tasks.js";
import { formatUpid, ownsTask, parseUpid, splitAuthid } from "./upid.js";

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
    const upid = await startCreate(sim, "pve1", id);
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
      user: "root@pam",
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

describe("facts: tasks (reference: More facts read from the sources)", () => {
  type Entry = { upid: string; user: string; tokenid?: string; status: string; endtime?: number };
  const list = async (params: Params, authorization?: string) => {
    const r = await call(sim, "GET", "/nodes/pve1/tasks", params, authorization ? { authorization } : {});
    expect(r.status).toBe(200);
    return r.body as { data: Entry[]; total: number };
  };
  const logOf = async (upid: string, params: Params = {}) => {
    const r = await call(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`, params);
    expect(r.status).toBe(200);
    return r.body as { data: { n: number; t: string }[]; total: number };
  };

  it("a task started with a token shows user as the token's owner (root@pam) and tokenid apart; the UPID keeps user@realm!token", async () => {
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    const upid = String(st["upid"]);
    expect(parseUpid(upid)?.user).toBe("root@pam!pve-sim");
    expect(st).toMatchObject({ user: "root@pam", tokenid: "pve-sim" });
    const entry = (await list({ typefilter: "vzcreate", vmid, limit: 500 })).data.find(
      (t) => t.upid === upid,
    );
    expect(entry).toMatchObject({ user: "root@pam", tokenid: "pve-sim", status: "OK" });
    // userfilter matches the owner shown, case-insensitively.
    expect((await list({ vmid, userfilter: "ROOT@PAM" })).data.map((t) => t.upid)).toEqual([upid]);
  });

  it("a task is its starter's: a token sees only its own, the owning user also its tokens' (without Sys.Audit)", async () => {
    const id = ++vmid;
    await createCt(sim, "pve1", id, DEBIAN);
    const power = { [`/vms/${id}`]: ["VM.PowerMgmt", "VM.Audit"] };
    const starter = sim.addToken({ id: "ops@pve!start", privileges: power });
    const sibling = sim.addToken({ id: "ops@pve!other", privileges: power });
    const st = await runTask(
      sim,
      "POST",
      `/nodes/pve1/lxc/${id}/status/start`,
      {},
      {
        authorization: starter.authorization,
      },
    );
    expect(st).toMatchObject({ user: "ops@pve", tokenid: "start", exitstatus: "OK" });
    const upid = String(st["upid"]);
    const status = (authorization: string) => call(sim, "GET", statusPath(upid), {}, { authorization });
    expect((await status(sibling.authorization)).status).toBe(403);
    expect((await list({}, sibling.authorization)).data).toEqual([]);

    sim.addUser("ops@pve", "ops-password");
    const cookie = await ticketLogin(sim, "ops@pve", "ops-password");
    expect((await call(sim, "GET", statusPath(upid), {}, cookie)).status).toBe(200);
    const mine = (await call(sim, "GET", "/nodes/pve1/tasks", {}, cookie)).body as { data: Entry[] };
    expect(mine.data.map((t) => t.upid)).toEqual([upid]);
  });

  it("GET /nodes/{node}/tasks: the default source=archive leaves running tasks out; source=active lists them with status RUNNING", async () => {
    sim.setSpeed(0.5);
    const id = ++vmid;
    const upid = await startCreate(sim, "pve1", id);
    const archive = await list({ vmid: id });
    expect(archive).toMatchObject({ data: [], total: 0 });
    expect((await list({ vmid: id, source: "archive" })).data).toEqual([]);
    const active = await list({ vmid: id, source: "active" });
    expect(active.total).toBe(1);
    expect(active.data[0]).toMatchObject({ upid, status: "RUNNING", user: "root@pam", tokenid: "pve-sim" });
    expect(active.data[0]).not.toHaveProperty("endtime");
    expect((await list({ vmid: id, source: "all" })).data.map((t) => t.status)).toEqual(["RUNNING"]);
    // A running task has no exit status yet: statusfilter counts it as unknown.
    expect((await list({ vmid: id, source: "active", statusfilter: "ok,error,warning" })).total).toBe(0);
    expect((await list({ vmid: id, source: "active", statusfilter: "unknown" })).total).toBe(1);

    await sim.waitTask(upid);
    expect((await list({ vmid: id, source: "active" })).data).toEqual([]);
    const ended = (await list({ vmid: id })).data;
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ upid, status: "OK", endtime: expect.any(Number) });
  });

  it("statusfilter (ok, error, warning, unknown) filters the list; an unknown value is 400", async () => {
    const good = await createCt(sim, "pve1", ++vmid, DEBIAN);
    sim.faults.failNextTask({ type: "vzcreate", message: "disk quota exceeded" });
    const bad = await createCt(sim, "pve1", ++vmid, DEBIAN);
    sim.faults.warnNextTask({ type: "vzcreate", message: "old kernel", warnings: 1 });
    const warned = await createCt(sim, "pve1", ++vmid, DEBIAN);
    const upids = (data: Entry[]) => data.map((t) => t.upid);
    const q = { typefilter: "vzcreate", limit: 500 };

    const errors = (await list({ ...q, statusfilter: "error" })).data;
    expect(errors.every((t) => statusType(t.status) === "error")).toBe(true);
    expect(upids(errors)).toContain(bad["upid"]);
    expect(upids(errors)).not.toContain(good["upid"]);
    const okAndWarn = upids((await list({ ...q, statusfilter: "OK;Warning" })).data);
    expect(okAndWarn).toEqual(expect.arrayContaining([good["upid"], warned["upid"]]));
    expect(okAndWarn).not.toContain(bad["upid"]);
    // errors=1 leaves out only ok, whatever statusfilter says.
    const notOk = upids((await list({ ...q, errors: 1, statusfilter: "ok" })).data);
    expect(notOk).toEqual(expect.arrayContaining([bad["upid"], warned["upid"]]));
    expect(notOk).not.toContain(good["upid"]);

    const r = await call(sim, "GET", "/nodes/pve1/tasks", { statusfilter: "ok,failed" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ statusfilter: "invalid format - invalid status 'failed'" });
  });

  it("limit still reports total as the count of all matches", async () => {
    for (let i = 0; i < 3; i++) await createCt(sim, "pve1", ++vmid, DEBIAN);
    const all = await list({ typefilter: "vzcreate", limit: 500 });
    expect(all.total).toBe(all.data.length);
    expect(all.total).toBeGreaterThanOrEqual(3);
    const first = await list({ typefilter: "vzcreate", limit: 1 });
    expect(first.data).toHaveLength(1);
    expect(first.total).toBe(all.total);
    const second = await list({ typefilter: "vzcreate", start: 1, limit: 1 });
    expect(second.data.map((t) => t.upid)).toEqual([all.data[1]!.upid]);
    expect(second.total).toBe(all.total);
  });

  it("GET .../tasks/{upid}/log returns {n, t} lines and total; limit=0 returns every line", async () => {
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    const upid = String(st["upid"]);
    const lines = sim.core.tasks.get(upid)!.log;
    expect(lines.length).toBeGreaterThan(2);
    const every = await logOf(upid, { limit: 0 });
    expect(every.total).toBe(lines.length);
    expect(every.data).toEqual(lines.map((t, i) => ({ n: i + 1, t })));
    const tail = await logOf(upid, { start: 1, limit: 0 });
    expect(tail.data.map((l) => l.n)).toEqual(lines.slice(1).map((_, i) => i + 2));
    const one = await logOf(upid, { start: 1, limit: 1 });
    expect(one).toEqual({ data: [{ n: 2, t: lines[1] }], total: lines.length });
  });

  it("a failed task's log ends with TASK ERROR: <exitstatus>", async () => {
    sim.faults.failNextTask({ type: "vzcreate", message: "unable to create CT - disk full" });
    const st = await createCt(sim, "pve1", ++vmid, DEBIAN);
    const log = await logOf(String(st["upid"]), { limit: 0 });
    expect(log.data.at(-1)).toEqual({ n: log.total, t: `TASK ERROR: ${String(st["exitstatus"])}` });
  });
});

describe("task decisions", () => {
  it.each([
    [undefined, "unknown"],
    ["OK", "ok"],
    ["WARNINGS: 3", "warning"],
    ["unexpected status", "unknown"],
    ["command 'lxc-start' failed", "error"],
    ["WARNINGS: x", "error"],
  ])("exit status %j is of class %s", (exitstatus, type) => {
    expect(statusType(exitstatus)).toBe(type);
  });

  it.each([
    ["ok", undefined],
    ["OK,Error warning;unknown", undefined],
    ["ok,running", "invalid status 'running'"],
    ["", undefined],
  ])("statusfilter %j: %s", (value, error) => {
    expect(statusFilterFormat(value)).toBe(error);
  });

  it.each([
    [undefined, false, ["ok", "warning", "error", "unknown"]],
    ["error", false, ["error"]],
    ["OK,warning", false, ["ok", "warning"]],
    ["ok", true, ["warning", "error", "unknown"]],
  ])("statusfilter %j with errors=%s selects %j", (filter, errors, types) => {
    expect([...wantedStatusTypes(filter, errors)].sort()).toEqual([...types].sort());
  });

  it.each([
    ["root@pam!pve-sim", { user: "root@pam", tokenid: "pve-sim" }],
    ["root@pam", { user: "root@pam" }],
    ["op@ldap!ci.2", { user: "op@ldap", tokenid: "ci.2" }],
  ])("authid %s shows as %j", (authid, shown) => {
    expect(splitAuthid(authid)).toEqual(shown);
  });

  it.each([
    ["op@pve!ci", "op@pve!ci", true],
    ["op@pve!ci", "op@pve", true],
    ["op@pve!ci", "op@pve!cd", false],
    ["op@pve", "op@pve!ci", false],
    ["op@pve", "op@pve", true],
  ])("a task of %s is %s's: %s", (starter, caller, owns) => {
    expect(ownsTask(starter, caller)).toBe(owns);
  });

  it.each([
    [[], 0, 50, 1, [{ n: 1, t: "no content" }]],
    [
      ["a", "b", "c"],
      0,
      0,
      3,
      [
        { n: 1, t: "a" },
        { n: 2, t: "b" },
        { n: 3, t: "c" },
      ],
    ],
    [["a", "b", "c"], 2, 5, 3, [{ n: 3, t: "c" }]],
    [["a", "b", "c"], 5, 0, 3, []],
  ])("log %j from %i limit %i: total %i", (lines, start, limit, total, items) => {
    expect(logPage(lines, start, limit)).toEqual({ total, items });
  });
});
