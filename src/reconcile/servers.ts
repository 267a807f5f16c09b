// One server as this reconcile sees it: which of our containers is kept (and
// which are extra), how its probe streak stands, when it last went down and
// when it started. Built from Proxmox's view and the previous status; where
// they disagree Proxmox wins (the status only carries what Proxmox cannot
// say: probe history and times). Pure.
import type { ServerState, ServerStatus } from "../api/ldappair.js";
import { recordProbe } from "../health/pass-streak.js";
import { conditionTime } from "../runtime/conditions.js";
import type { DesiredServer, ForeignContainer, ObservedContainer, ObservedServer } from "./model.js";

export interface ServerView {
  desired: DesiredServer;
  before?: ServerStatus;
  foreign: readonly ForeignContainer[];
  addressTaken?: ObservedServer["addressTaken"];
  /** The container the pair keeps for this server: during a swap, the one that runs (else the new one). */
  main?: ObservedContainer;
  /**
   * CreateThenSwap under way: exactly two containers of ours, one built for
   * the desired configuration (next), one not (old). Told apart by their build
   * tags, so the duplicate rule leaves them alone.
   */
  swap?: SwapPair;
  /** Further containers of ours for this server: a fault to repair. */
  extras: readonly ObservedContainer[];
  running: boolean;
  /** The latest probe passed. */
  passing: boolean;
  /** Passes in a row on the current address, counted up to the number required (so a steady pair writes nothing). */
  passes: number;
  /** Passed often enough in a row: healthy for the gate and for Ready. */
  verified: boolean;
  healthySince?: string;
  lastDownAt?: string;
  /** When the running container started: from its uptime, else the start the operator saw succeed. */
  runningSince?: Date;
  /** Why it is not healthy: the failed probe step and reason, or what is missing. */
  problem?: string;
}

export interface SwapPair {
  old: ObservedContainer;
  next: ObservedContainer;
}

/** Built for the desired server: the rebuild inputs (build tag) and the node match. */
export function builtFor(c: ObservedContainer, desired: DesiredServer): boolean {
  if (c.node !== desired.node) return false;
  return c.buildHash !== undefined ? c.buildHash === desired.buildHash : c.configHash === desired.configHash;
}

/** Two containers of ours, exactly one of them built for the desired server: a swap, not a duplicate. */
export function swapPair(
  containers: readonly ObservedContainer[],
  desired: DesiredServer,
): SwapPair | undefined {
  if (containers.length !== 2) return undefined;
  const [a, b] = containers as [ObservedContainer, ObservedContainer];
  if (builtFor(a, desired) === builtFor(b, desired)) return undefined;
  return builtFor(a, desired) ? { old: b, next: a } : { old: a, next: b };
}

/** The one that serves: the new container once it runs, the old one until then. */
function swapMain({ old, next }: SwapPair): ObservedContainer {
  if (next.status === "running" || old.status !== "running") return next;
  return old;
}

/**
 * The container to keep among several of ours: one built for the desired
 * configuration, then a running one, then the newest (highest vmid).
 */
export function keptContainer(containers: readonly ObservedContainer[], desired: DesiredServer) {
  const score = (c: ObservedContainer) =>
    (c.configHash === desired.configHash ? 4 : 0) + (c.status === "running" ? 2 : 0);
  return [...containers].sort((a, b) => score(b) - score(a) || b.vmid - a.vmid)[0];
}

export function serverView(
  desired: DesiredServer,
  observed: ObservedServer | undefined,
  before: ServerStatus | undefined,
  now: Date,
  requiredPasses: number,
): ServerView {
  const containers = observed?.containers ?? [];
  const swap = swapPair(containers, desired);
  const main = swap ? swapMain(swap) : keptContainer(containers, desired);
  const running = main?.status === "running";
  const probe = running && main?.address ? main.probe : undefined;
  const passing = probe?.healthy === true;
  const streak = recordProbe(
    { address: before?.address ?? "", passes: before?.passes ?? 0 },
    main?.address ?? "",
    passing,
  );
  const passes = Math.min(streak.passes, requiredPasses);
  const verified = passing && passes >= requiredPasses;
  const wasHealthy = before?.healthy === true;
  const stamp = conditionTime(now);
  const problem = !main
    ? "no container"
    : !running
      ? `CT ${main.vmid} is ${main.status}`
      : !main.address
        ? `CT ${main.vmid} has no address yet`
        : !probe
          ? "not probed"
          : passing
            ? undefined
            : (probe.reason ?? "its probe failed");
  return {
    desired,
    ...(before ? { before } : {}),
    foreign: observed?.foreign ?? [],
    ...(observed?.addressTaken ? { addressTaken: observed.addressTaken } : {}),
    ...(main ? { main } : {}),
    ...(swap ? { swap } : {}),
    extras: swap ? [] : containers.filter((c) => c !== main),
    running,
    passing,
    passes,
    verified,
    ...(passing ? { healthySince: before?.healthySince && wasHealthy ? before.healthySince : stamp } : {}),
    // A server that was healthy and no longer is went down now; otherwise keep the last time.
    // To the millisecond: the settle time is waited from it, and whole seconds would cut it short.
    ...(wasHealthy && !verified
      ? { lastDownAt: now.toISOString() }
      : before?.lastDownAt
        ? { lastDownAt: before.lastDownAt }
        : {}),
    ...runningSince(main, before, now),
    ...(problem ? { problem } : {}),
  };
}

function runningSince(main: ObservedContainer | undefined, before: ServerStatus | undefined, now: Date) {
  if (main?.status !== "running") return {};
  if (main.uptimeSeconds !== undefined)
    return { runningSince: new Date(now.getTime() - main.uptimeSeconds * 1000) };
  return before?.startedAt ? { runningSince: new Date(before.startedAt) } : {};
}

/** The status entry of a server, as `kubectl describe` shows it. */
export function serverStatus(
  view: ServerView,
  state: ServerState,
  o: { now: Date; image?: string; message?: string; envKeys?: readonly string[]; startedAt?: string },
): ServerStatus {
  const { main, before, desired } = view;
  const envKeys = o.envKeys ?? before?.envKeys;
  const startedAt = o.startedAt ?? before?.startedAt;
  const outcomeChanged =
    before?.healthy !== view.verified ||
    before?.failedStep !== failedStep(view) ||
    before?.address !== main?.address;
  // Rewritten only when the outcome changes: a steady pair costs no status write.
  const lastProbeTime = outcomeChanged && main?.probe ? conditionTime(o.now) : before?.lastProbeTime;
  return {
    name: desired.name,
    node: main?.node ?? desired.node,
    ...(main ? { vmid: main.vmid } : {}),
    ...(main?.address ? { address: main.address } : {}),
    ...(o.image ? { image: o.image } : {}),
    ...(main?.configHash ? { configHash: main.configHash } : {}),
    ...(main?.buildHash ? { buildHash: main.buildHash } : {}),
    state,
    healthy: view.verified,
    passes: view.passes,
    ...(view.healthySince ? { healthySince: view.healthySince } : {}),
    ...(view.lastDownAt ? { lastDownAt: view.lastDownAt } : {}),
    ...(startedAt && main ? { startedAt } : {}),
    ...(lastProbeTime ? { lastProbeTime } : {}),
    ...(failedStep(view) ? { failedStep: failedStep(view) } : {}),
    ...(envKeys && main ? { envKeys: [...envKeys] } : {}),
    ...(o.message ? { message: o.message } : {}),
  };
}

const failedStep = (view: ServerView): string | undefined =>
  view.running && view.main?.probe && !view.main.probe.healthy ? view.main.probe.failedStep : undefined;
