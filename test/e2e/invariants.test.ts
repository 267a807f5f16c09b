// The invariant watch's pure parts as tables: what one sample of the
// simulator's state shows, which violations hold in it, how conditions
// become intervals, and how tasks are timed.
import { describe, expect, it } from "vitest";
import { renderTags } from "../../src/proxmox/tags.js";
import { emptyState, type ContainerState, type SimState, type TaskState } from "../pve-sim/state.js";
import {
  baselineOf,
  downConditions,
  emptyLedger,
  record,
  sampleOf,
  timeTasks,
  violationsIn,
  type Condition,
  type Sample,
} from "./invariants.js";

const UID = "0b6a4c1e-2f3d-4e5a-8b9c-0d1e2f3a4b5c";
const OTHER = "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a";
const SERVERS = ["ldap1", "ldap2"];

type Ct = Partial<ContainerState> & { vmid: number };

function ct(o: Ct & { server?: string; owner?: string }): ContainerState {
  const { server, owner, ...rest } = o;
  const tags = server
    ? renderTags({ owner: owner ?? UID, server, configHash: "0123456789abcdef" }).join(";")
    : undefined;
  return {
    node: "pve1",
    conf: { hostname: server ?? `bystander${o.vmid}`, ...(tags ? { tags } : {}) },
    pending: {},
    pendingDelete: [],
    status: "running",
    booted: true,
    address: `127.9.0.${o.vmid - 99}`,
    startedAt: 1_700_000_000,
    ...rest,
  };
}

function task(o: Partial<TaskState> & { upid: string; type: string; id: string }): TaskState {
  return {
    node: "pve1",
    pid: 1,
    pstart: 1,
    starttime: 1,
    user: "root@pam",
    status: "running",
    log: [],
    ...o,
  };
}

function state(containers: ContainerState[], tasks: TaskState[] = []): SimState {
  return {
    ...emptyState(),
    containers: Object.fromEntries(containers.map((c) => [String(c.vmid), c])),
    tasks,
  };
}

const sample = (s: SimState, at = 0): Sample => sampleOf(s, UID, at);

// The world a test starts from: both servers up, a hand-made container and another pair's.
const ldap1 = ct({ vmid: 101, server: "ldap1" });
const ldap2 = ct({ vmid: 102, server: "ldap2", node: "pve2" });
const bystander = ct({ vmid: 200 });
const otherPair = ct({ vmid: 300, server: "ldap1", owner: OTHER });
const start = state(
  [ldap1, ldap2, bystander, otherPair],
  [task({ upid: "UPID:old", type: "vzstop", id: "200" })],
);
const baseline = baselineOf(sample(start));

describe("sampleOf", () => {
  it("names the pair's server from its tags, and no server for another pair's or an untagged container", () => {
    const s = sample(start);
    expect(s.containers.map((c) => [c.vmid, c.server])).toEqual([
      [101, "ldap1"],
      [102, "ldap2"],
      [200, undefined],
      [300, undefined],
    ]);
  });

  it.each([
    ["running", true, true],
    ["running", false, false],
    ["stopped", true, false],
    ["stopped", false, false],
  ] as const)("status %s, booted %s: listening %s", (status, booted, listening) => {
    const s = sample(state([ct({ vmid: 101, server: "ldap1", status, booted })]));
    expect(s.containers[0]).toMatchObject({ running: status === "running", listening });
  });

  it("changes the fingerprint on a config change, a pending change and a restart", () => {
    const print = (c: ContainerState) => sample(state([c])).containers[0]!.fingerprint;
    const base = print(bystander);
    expect(print({ ...bystander, conf: { ...bystander.conf, memory: 1024 } })).not.toBe(base);
    expect(print({ ...bystander, pending: { env: "A=1" } })).not.toBe(base);
    expect(print({ ...bystander, startedAt: bystander.startedAt! + 1 })).not.toBe(base);
    expect(print({ ...bystander })).toBe(base);
  });
});

describe("violationsIn", () => {
  const without = (vmid: number) => [ldap1, ldap2, bystander, otherPair].filter((c) => c.vmid !== vmid);
  const kinds = (s: SimState, armed = true, allowed: number[] = []) =>
    violationsIn(baseline, sample(s), SERVERS, armed, new Set(allowed)).map((v) => [v.kind, v.detail]);

  it.each<[string, SimState, boolean, [string, RegExp][]]>([
    ["both servers up", start, true, []],
    ["ldap1 gone while ldap2 serves (RemoveThenCreate's window)", state(without(101)), true, []],
    [
      "ldap1 stopped, its new container created stopped (CreateThenSwap)",
      state([
        { ...ldap1, status: "stopped", booted: false },
        ct({ vmid: 103, server: "ldap1", status: "stopped", booted: false }),
        ldap2,
        bystander,
        otherPair,
      ]),
      true,
      [],
    ],
    ["both gone", state([bystander, otherPair]), true, [["BothDown", /ldap1 and ldap2 down at once/]]],
    ["both gone before both were ever seen up (provisioning)", state([bystander, otherPair]), false, []],
    [
      "ldap1 running but not listening yet while ldap2 is stopped",
      state([
        { ...ldap1, booted: false },
        { ...ldap2, status: "stopped", booted: false },
        bystander,
        otherPair,
      ]),
      true,
      [["BothDown", /down at once/]],
    ],
    [
      "a foreign container named ldap2 running does not make the pair's ldap2 up",
      state([
        { ...ldap1, status: "stopped", booted: false },
        bystander,
        otherPair,
        { ...ct({ vmid: 104 }), conf: { hostname: "ldap2" } },
      ]),
      true,
      [
        ["BothDown", /down at once/],
        ["ForeignCreated", /CT 104 \(ldap2 on pve1\) appeared without the pair's owner tag/],
      ],
    ],
    [
      "two running containers of ldap1",
      state([...without(0), ct({ vmid: 103, server: "ldap1" })]),
      true,
      [["TwoRunning", /ldap1 runs in CT 101 and CT 103 at once/]],
    ],
    ["two running containers of ldap1, one of them another pair's", start, true, []],
    [
      "the hand-made container stopped",
      state([...without(200), { ...bystander, status: "stopped", booted: false }]),
      true,
      [["ForeignTouched", /CT 200 \(bystander200 on pve1\), not the pair's, was stopped/]],
    ],
    [
      "the hand-made container deleted",
      state(without(200)),
      true,
      [["ForeignTouched", /CT 200 .* was deleted/]],
    ],
    [
      "the hand-made container reconfigured",
      state([...without(200), { ...bystander, conf: { ...bystander.conf, tags: "mine" } }]),
      true,
      [["ForeignTouched", /CT 200 .* was changed/]],
    ],
    [
      "the other pair's container restarted (a later start time)",
      state([...without(300), { ...otherPair, startedAt: otherPair.startedAt! + 5 }]),
      true,
      [["ForeignTouched", /CT 300 .* was changed/]],
    ],
    [
      "a new shutdown task on the hand-made container, even one that failed",
      state(
        [ldap1, ldap2, bystander, otherPair],
        [task({ upid: "UPID:new", type: "vzshutdown", id: "200", status: "stopped", exitstatus: "boom" })],
      ),
      true,
      [["ForeignTouched", /a vzshutdown task ran on CT 200, not the pair's \(boom\)/]],
    ],
    ["the task on it from before watching began", start, true, []],
    [
      "tasks on the pair's containers and a pull on storage 200's namesake",
      state(
        [ldap1, ldap2, bystander, otherPair],
        [
          task({ upid: "UPID:a", type: "vzstop", id: "101" }),
          task({ upid: "UPID:b", type: "ociregistrypull", id: "200" }),
        ],
      ),
      true,
      [],
    ],
    [
      "a container created without the pair's tag",
      state([...without(0), ct({ vmid: 105 })]),
      true,
      [["ForeignCreated", /CT 105 \(bystander105 on pve1\) appeared/]],
    ],
  ])("%s", (_, s, armed, expected) => {
    const found = kinds(s, armed);
    expect(found).toHaveLength(expected.length);
    expected.forEach(([kind, detail], i) => {
      expect(found[i]![0]).toBe(kind);
      expect(found[i]![1]).toMatch(detail);
    });
  });

  it("finds nothing in a simulator watched from its empty start (nothing observed yet)", () => {
    const empty = sample(state([]));
    expect(violationsIn(baselineOf(empty), empty, SERVERS, false)).toEqual([]);
  });

  it("leaves out a container the test made itself after watching began", () => {
    expect(kinds(state([...without(0), ct({ vmid: 105 })]), true, [105])).toEqual([]);
  });
});

describe("downConditions", () => {
  it.each([
    ["both up", start, []],
    ["ldap1 stopped", state([{ ...ldap1, status: "stopped", booted: false }, ldap2]), ["Down:ldap1"]],
    ["ldap2 booting", state([ldap1, { ...ldap2, booted: false }]), ["Down:ldap2"]],
    ["nothing yet", state([]), ["Down:ldap1", "Down:ldap2"]],
  ])("%s", (_, s, keys) => {
    expect(downConditions(sample(s), SERVERS).map((c) => c.key)).toEqual(keys);
  });
});

describe("record", () => {
  const c = (key: string): Condition => ({ key, kind: key.split(":")[0]!, detail: key });

  it("opens an interval when a condition first holds, keeps it while it holds, closes it when it stops", () => {
    let l = emptyLedger();
    l = record(l, [], 0);
    l = record(l, [c("A:1")], 10);
    l = record(l, [c("A:1"), c("B:1")], 20);
    l = record(l, [c("B:1")], 30);
    expect(l.intervals).toEqual([
      { key: "A:1", kind: "A", detail: "A:1", from: 10, to: 30 },
      { key: "B:1", kind: "B", detail: "B:1", from: 20 },
    ]);
    expect(l.open).toEqual({ "B:1": 1 });
  });

  it("records a condition that comes back as a second interval", () => {
    let l = emptyLedger();
    for (const [at, held] of [
      [0, true],
      [5, false],
      [9, true],
    ] as const)
      l = record(l, held ? [c("A:1")] : [], at);
    expect(l.intervals.map((i) => [i.from, i.to])).toEqual([
      [0, 5],
      [9, undefined],
    ]);
  });

  it("does not change the ledger it was given", () => {
    const l = record(emptyLedger(), [c("A:1")], 0);
    record(l, [], 1);
    expect(l.intervals[0]!.to).toBeUndefined();
  });
});

describe("timeTasks", () => {
  const at = (t: number, tasks: TaskState[]) => sample(state([], tasks), t);
  const pull = { upid: "UPID:pull", type: "ociregistrypull", id: "local" };

  it("times a task from the first sample it runs in to the first it has ended in", () => {
    let known = timeTasks({}, at(100, [task(pull)]), baseline);
    known = timeTasks(known, at(150, [task(pull)]), baseline);
    known = timeTasks(known, at(200, [task({ ...pull, status: "stopped", exitstatus: "OK" })]), baseline);
    known = timeTasks(known, at(250, [task({ ...pull, status: "stopped", exitstatus: "OK" })]), baseline);
    expect(known["UPID:pull"]).toMatchObject({ seenAt: 100, endedAt: 200, exitstatus: "OK", node: "pve1" });
  });

  it("gives a task first seen ended a zero length, and leaves out the tasks from before watching began", () => {
    const known = timeTasks(
      {},
      at(300, [
        task({ upid: "UPID:old", type: "vzstop", id: "200" }),
        task({ ...pull, status: "stopped", exitstatus: "OK" }),
      ]),
      baseline,
    );
    expect(Object.keys(known)).toEqual(["UPID:pull"]);
    expect(known["UPID:pull"]).toMatchObject({ seenAt: 300, endedAt: 300 });
  });
});
