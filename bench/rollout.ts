/**
 * An image rollout of the example pair, once per strategy in one run, measured against what the
 * simulated site makes unavoidable. The whole end-to-end world (its own control plane, PostgreSQL,
 * the Proxmox simulator with the gateway stand-in, the operator as its own process) at real timings
 * unless `--scale` shrinks them all (E2E_TIME_SCALE's factor; the operator's own delays follow).
 *
 *   npx tsx bench/rollout.ts [--scale=1] [--json=FILE]
 *
 * For each strategy:
 * - wall: from the image change applied to the pair Ready on the new image (status polled every 50 ms);
 * - floor: the simulator's task durations and the gateways' boots, one after the other as the operator
 *   runs them, plus the wait the peer gate imposes: the second server may go down only a settle time
 *   after the first did, so the work between the two stops counts as max(settle time, its duration).
 *   The first server goes down when the stop task signals its gateway, which stops accepting then
 *   (the simulator's stop or shutdown duration after the task began), not when the task begins: the
 *   settle time counts from there. Task times are sampled from the simulator's state every 10 ms; a
 *   boot is the time from the end of a start task to the gateway listening. Goal: wall / floor <= 1.05;
 *   the idle time before each piece (after the one before it ended) says where the rest goes;
 * - each server's unavailable window as a client of that server alone sees it (an SSSD-like client
 *   with ldap_uri naming only that server, looking up every 50 ms, retrying at once), against
 *   stop + start + boot: what is left of the stop task once the client lost the server (a gateway
 *   keeps serving an open connection through its shutdown), the start task of its new container and
 *   that container's boot. Goal: <= 1.2;
 * - failed lookups of an SSSD-like client of both servers (5 per second at real timings). Goal: 0.
 *
 * Prints a table and the figures as JSON (also written to --json).
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { FailoverClient } from "../test/failover-client/client.js";
import { LookupStream, type StreamReport, type Window } from "../test/failover-client/stream.js";
import type { World } from "../test/e2e/harness.js";
import { InvariantMonitor, type ContainerEventAt, type TaskTiming } from "../test/e2e/invariants.js";
import {
  image,
  instanceOf,
  patchPair,
  rolledOutTo,
  rolloutWorld,
  runningOf,
  STRATEGIES,
  TASK,
  untilPair,
  until,
  type Instance,
  type RolloutWorld,
  type Strategy,
} from "../test/e2e/rollout-world.js";

const SERVERS = ["ldap1", "ldap2"] as const;
const GOALS = { wall: 1.05, window: 1.2, failed: 0 };

const { values } = parseArgs({
  options: { scale: { type: "string", default: "1" }, json: { type: "string" } },
});
const scale = Number(values.scale);
if (!Number.isFinite(scale) || scale <= 0 || scale > 1) throw new Error("--scale must be in (0, 1]");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A piece of the operator's critical path: a task, or a gateway booting after its start task. */
interface Work {
  what: string;
  from: number;
  ms: number;
  /** Since the piece before it ended: the operator's own time on the critical path. */
  idleMs?: number;
}

interface FloorParts {
  beforeFirstStop: number;
  betweenStops: number;
  settle: number;
  /** From the first stop task's start to its gateway signalled: the server serves until then. */
  firstDownAfter: number;
  afterSecondStop: number;
  floor: number;
  work: Work[];
}

/** The tasks and boots of the rollout, and the floor they and the settle time make. */
function floorOf(
  tasks: TaskTiming[],
  events: ContainerEventAt[],
  stops: number[],
  settleMs: number,
  firstDownAfter: number,
): FloorParts {
  const work: Work[] = [];
  for (const t of tasks) {
    if (t.endedAt === undefined) continue;
    work.push({ what: `${t.type} ${t.id}`, from: t.seenAt, ms: t.endedAt - t.seenAt });
    if (t.type !== TASK.start) continue;
    // The gateway's own start-up that outlasts the start task.
    const booted = events.find((e) => e.kind === "booted" && String(e.vmid) === t.id && e.at >= t.seenAt);
    if (booted && booted.at > t.endedAt)
      work.push({ what: `boot ${t.id}`, from: t.endedAt, ms: booted.at - t.endedAt });
  }
  let end = -Infinity;
  for (const w of work.sort((a, b) => a.from - b.from)) {
    if (end > -Infinity) w.idleMs = Math.max(0, w.from - end);
    end = Math.max(end, w.from + w.ms);
  }
  const [first, second] = stops;
  const sum = (keep: (w: Work) => boolean) => work.filter(keep).reduce((n, w) => n + w.ms, 0);
  const beforeFirstStop = sum((w) => w.from < first!);
  const betweenStops = sum((w) => w.from >= first! && w.from < second!);
  const afterSecondStop = sum((w) => w.from >= second!);
  return {
    beforeFirstStop,
    betweenStops,
    settle: settleMs,
    firstDownAfter,
    afterSecondStop,
    floor: beforeFirstStop + Math.max(firstDownAfter + settleMs, betweenStops) + afterSecondStop,
    work,
  };
}

interface WindowFigures {
  server: string;
  windowMs: number;
  stopRestMs: number;
  startMs: number;
  bootMs: number;
  idealMs: number;
  ratio: number;
}

/** A server's window as its own client saw it, against the stop left, the start and the boot. */
function windowOf(
  server: string,
  seen: Window[],
  old: Instance,
  fresh: Instance,
  tasks: TaskTiming[],
  events: ContainerEventAt[],
): WindowFigures {
  const w = seen[0];
  if (!w || w.to === undefined) throw new Error(`${server}: its client saw no closed unavailable window`);
  const isStopOfOld = (t: TaskTiming) => /^vz(stop|shutdown)$/.test(t.type) && t.id === String(old.vmid);
  const firstStop = tasks.find(isStopOfOld);
  if (!firstStop) throw new Error(`${server}: no stop of CT ${old.vmid}`);
  const start = tasks.find(
    (t) => t.type === TASK.start && t.id === String(fresh.vmid) && t.seenAt >= firstStop.seenAt,
  );
  if (!start?.endedAt) throw new Error(`${server}: no start task of CT ${fresh.vmid}`);
  const stopEnd = Math.max(
    ...tasks.filter((t) => isStopOfOld(t) && t.seenAt <= start.seenAt).map((t) => t.endedAt ?? w.from),
    w.from,
  );
  const booted = events.find(
    (e) =>
      e.kind === "booted" && e.vmid === fresh.vmid && e.address === fresh.address && e.at >= start.seenAt,
  );
  const bootMs = booted ? Math.max(0, booted.at - start.endedAt) : 0;
  const stopRestMs = Math.max(0, stopEnd - w.from);
  const startMs = start.endedAt - start.seenAt;
  const idealMs = stopRestMs + startMs + bootMs;
  const windowMs = w.to - w.from;
  return { server, windowMs, stopRestMs, startMs, bootMs, idealMs, ratio: windowMs / idealMs };
}

/** A client of one server alone that notices it gone and back within one lookup interval. */
const soloClient = (world: World, server: string): FailoverClient =>
  world.failoverClient({
    uris: [`ldaps://${server}:636`],
    failedServerMemoryMs: 0,
    offlineTimeoutMs: 0,
    offlineRandomMs: 0,
  });

interface Result {
  strategy: Strategy;
  wallMs: number;
  floor: Omit<FloorParts, "work">;
  wallRatio: number;
  windows: WindowFigures[];
  lookups: { total: number; failed: number; maxLatencyMs: number; switches: string[] };
  violations: string[];
  work: Work[];
}

async function rollOnce(rw: RolloutWorld, strategy: Strategy, to: string): Promise<Result> {
  const { world, uid } = rw;
  await patchPair(world, { spec: { rollout: { strategy } } });
  const from = runningOf(world, uid, "ldap1")!.image!;
  await untilPair(world, `strategy ${strategy}`, (v) => rolledOutTo(v, from), rw.patience(60_000));
  const old = Object.fromEntries(SERVERS.map((s) => [s, instanceOf(world, uid, s)]));
  const uids = world.postgres.seed.users.map((u) => u.uid);
  const pairClient = world.failoverClient();
  const clients = [pairClient, ...SERVERS.map((s) => soloClient(world, s))];
  const [pair, ...solo] = clients.map(
    (client, i) =>
      new LookupStream({
        client,
        uids,
        intervalMs: i === 0 ? Math.max(10, 200 * scale) : Math.max(10, 50 * scale),
      }),
  );
  for (const s of [pair!, ...solo]) s.start();
  await until("first answers", () => (pair!.report().succeeded > 3 ? true : undefined), 30_000, 20);
  const monitor = new InvariantMonitor(world.sim, { uid, armed: true, everyMs: 10 });
  const started = Date.now();
  await patchPair(world, { spec: { image: to } });
  await untilPair(world, `rolled out to ${to}`, (v) => rolledOutTo(v, to), rw.patience(600_000), 50);
  const wallMs = Date.now() - started;
  // Past the failover client's memory of the last failure: a late failed lookup still counts.
  await sleep(world.times.failedServerMemoryMs + 500);
  monitor.stop();
  const reports: StreamReport[] = [];
  for (const s of [pair!, ...solo]) reports.push(await s.stop());
  for (const c of clients) await c.close();
  const fresh = Object.fromEntries(SERVERS.map((s) => [s, instanceOf(world, uid, s)]));
  const tasks = monitor.tasks.filter((t) => t.seenAt >= started && t.seenAt <= started + wallMs);
  const stopTasks = SERVERS.map((s) =>
    tasks.find((t) => /^vz(stop|shutdown)$/.test(t.type) && t.id === String(old[s]!.vmid)),
  );
  const stops = stopTasks.map((t) => t?.seenAt ?? Number.NaN);
  const { work, ...floor } = floorOf(
    tasks,
    monitor.events,
    stops,
    world.times.settleTimeMs,
    signalledAfter(world, stopTasks[0]?.type),
  );
  const windows = SERVERS.map((s, i) =>
    windowOf(s, reports[i + 1]!.unavailable[s] ?? [], old[s]!, fresh[s]!, tasks, monitor.events),
  );
  const p = reports[0]!;
  return {
    strategy,
    wallMs,
    floor,
    wallRatio: wallMs / floor.floor,
    windows,
    lookups: {
      total: p.total,
      failed: p.failed.length,
      maxLatencyMs: p.maxLatencyMs,
      switches: p.switches.map(([, s]) => s),
    },
    violations: monitor.violations.map((v) => `${v.kind}: ${v.detail}`),
    work: work.map((w) => ({ ...w, from: w.from - started })),
  };
}

/** How long a stop or shutdown task of the simulator runs before it signals the container's process. */
function signalledAfter(world: World, type: string | undefined): number {
  const { durations, speed } = world.sim.config;
  return (type === TASK.shutdown ? durations.shutdown : durations.stop) * speed;
}

const s1 = (ms: number) => (ms / 1000).toFixed(1);
const r2 = (x: number) => x.toFixed(2);

function table(results: Result[]): string {
  const head = [
    "strategy",
    "wall s",
    "floor s",
    `wall/floor (<=${GOALS.wall})`,
    ...SERVERS.map((s) => `${s} window s / stop+start+boot s (<=${GOALS.window})`),
    "lookups failed/total",
  ];
  const rows = results.map((r) => [
    r.strategy,
    s1(r.wallMs),
    s1(r.floor.floor),
    r2(r.wallRatio),
    ...r.windows.map((w) => `${s1(w.windowMs)} / ${s1(w.idealMs)} = ${r2(w.ratio)}`),
    `${r.lookups.failed}/${r.lookups.total}`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const started = Date.now();
  console.error(`starting the world at time scale ${scale} ...`);
  const rw = await rolloutWorld({ timeScale: scale, log: (l) => console.error(`  ${l}`) });
  const results: Result[] = [];
  try {
    let n = 0;
    for (const strategy of STRATEGIES) {
      console.error(`rolling out with ${strategy} ...`);
      const r = await rollOnce(rw, strategy, image(`2.0.${++n}`));
      console.error(`  ${s1(r.wallMs)} s, floor ${s1(r.floor.floor)} s`);
      results.push(r);
    }
  } finally {
    await rw.world.stop();
  }
  const summary = {
    scale,
    settleTimeMs: rw.world.times.settleTimeMs,
    goals: GOALS,
    results,
    benchSeconds: Math.round((Date.now() - started) / 1000),
  };
  console.log(table(results));
  for (const r of results) {
    const f = r.floor;
    console.log(
      `${r.strategy}: floor = ${s1(f.beforeFirstStop)} s before the first stop + max(${s1(f.firstDownAfter)} s to its signal + settle ${s1(f.settle)} s, ` +
        `${s1(f.betweenStops)} s of work) + ${s1(f.afterSecondStop)} s after the second; ` +
        r.windows
          .map(
            (w) =>
              `${w.server}: ${s1(w.stopRestMs)} s stop left + ${s1(w.startMs)} s start + ${s1(w.bootMs)} s boot`,
          )
          .join("; ") +
        `; idle before each piece: ${r.work
          .filter((w) => w.idleMs !== undefined)
          .map((w) => `${w.what.split(" ")[0]} ${s1(w.idleMs!)}`)
          .join(", ")}, after the last: ${s1(r.wallMs - Math.max(...r.work.map((w) => w.from + w.ms)))}` +
        (r.violations.length ? `; VIOLATIONS: ${r.violations.join(", ")}` : ""),
    );
  }
  console.log(JSON.stringify(summary, null, 2));
  if (values.json) writeFileSync(values.json, JSON.stringify(summary, null, 2));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
