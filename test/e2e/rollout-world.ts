// What the rollout end-to-end tests and bench/rollout.ts share: a world with
// the example pair Ready and a hand-made container beside it, the pair's
// status read as the tests need it, waits on the pair and on the simulator,
// gateway images that never become healthy, and a frozen server.
import { PLURAL } from "../../src/api/ldappair.js";
import { operatorTags } from "../../src/proxmox/tags.js";
import type { CatalogEntry } from "../pve-sim/config.js";
import { LDAP_GATEWAY_IMAGE } from "../pve-sim/ldap-site.js";
import type { ContainerState } from "../pve-sim/state.js";
import { eventually } from "./checks.js";
import { EXAMPLE_IMAGE, EXAMPLE_NAME, type Overrides } from "./example.js";
import { startWorld, type World, type WorldOptions } from "./harness.js";
import { provisionByHand, type HandMadeServer } from "./provision.js";

export const STRATEGIES = ["RemoveThenCreate", "CreateThenSwap"] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const image = (tag: string): string => `${LDAP_GATEWAY_IMAGE}:${tag}`;
export { EXAMPLE_IMAGE };

export interface PairCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface ServerView {
  name: string;
  vmid?: number;
  image?: string;
  configHash?: string;
  healthy: boolean;
  state: string;
}

/** The LdapPair as the tests read it. */
export interface PairView {
  generation: number;
  observedGeneration?: number;
  phase?: string;
  conditions: PairCondition[];
  servers: ServerView[];
  rollout?: { server?: string; step?: string; since?: string; message?: string; [k: string]: unknown };
  task?: { action: string; server?: string; upid: string };
  realm?: { lastSyncTime?: string; lastSyncReason?: string; syncState?: string };
  annotations: Record<string, string>;
  raw: Record<string, unknown>;
}

export async function pairView(world: World, name = EXAMPLE_NAME): Promise<PairView> {
  const pair = await world.getLdapPair(name);
  const status = (pair.status ?? {}) as Record<string, unknown>;
  return {
    generation: pair.metadata.generation,
    ...(typeof status["observedGeneration"] === "number"
      ? { observedGeneration: status["observedGeneration"] }
      : {}),
    ...(typeof status["phase"] === "string" ? { phase: status["phase"] } : {}),
    conditions: (status["conditions"] as PairCondition[] | undefined) ?? [],
    servers: (status["servers"] as ServerView[] | undefined) ?? [],
    ...(status["rollout"] ? { rollout: status["rollout"] as PairView["rollout"] } : {}),
    ...(status["task"] ? { task: status["task"] as PairView["task"] } : {}),
    ...(status["realm"] ? { realm: status["realm"] as PairView["realm"] } : {}),
    annotations: (pair.metadata["annotations"] as Record<string, string> | undefined) ?? {},
    raw: pair as unknown as Record<string, unknown>,
  };
}

export const conditionOf = (v: PairView, type: string): PairCondition | undefined =>
  v.conditions.find((c) => c.type === type);

/** The spec as of now is done: Ready, both servers healthy on `wanted`, nothing in flight. */
export function rolledOutTo(v: PairView, wanted: string): boolean {
  return (
    v.observedGeneration === v.generation &&
    conditionOf(v, "Ready")?.status === "True" &&
    v.phase === "Ready" &&
    v.servers.length === 2 &&
    v.servers.every((s) => s.healthy && s.image === wanted) &&
    !v.task &&
    !v.rollout
  );
}

/** Polls `check` until it returns something other than undefined (checks.ts's `eventually`). */
export const until = eventually;

/** Switches the pair's rollout strategy, no configuration of the servers (nothing restarts), and waits until it is seen settled on `image`. */
export async function useStrategy(rw: RolloutWorld, strategy: Strategy, image: string): Promise<void> {
  await patchPair(rw.world, { spec: { rollout: { strategy } } });
  await untilPair(rw.world, `strategy ${strategy} seen`, (v) => rolledOutTo(v, image), rw.patience(30_000));
}

/** Waits until the pair satisfies `ok`; the error shows the last status and the operator's log. */
export async function untilPair(
  world: World,
  what: string,
  ok: (v: PairView) => boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<PairView> {
  let last: PairView | undefined;
  try {
    return await until(
      what,
      async () => {
        last = await pairView(world);
        return ok(last) ? last : undefined;
      },
      timeoutMs,
      everyMs,
    );
  } catch (err) {
    const seen = last
      ? JSON.stringify(
          {
            phase: last.phase,
            rollout: last.rollout,
            task: last.task,
            servers: last.servers,
            conditions: last.conditions,
          },
          null,
          1,
        )
      : "(never read)";
    throw new Error(`${(err as Error).message}\nlast status: ${seen}\n${world.operator.logTail(25)}`, {
      cause: err,
    });
  }
}

/** A merge patch of the LdapPair (kubectl patch --type=merge); `null` removes a field. */
export async function patchPair(world: World, patch: Overrides, name = EXAMPLE_NAME): Promise<number> {
  const out = await world.kubectl(
    "patch",
    `${PLURAL}/${name}`,
    "--type=merge",
    "-p",
    JSON.stringify(patch),
    "-o",
    "json",
  );
  return (JSON.parse(out) as { metadata: { generation: number } }).metadata.generation;
}

/** The pair's containers of `server`, as the simulator holds them now. */
export function containersOf(world: World, uid: string, server: string): ContainerState[] {
  return Object.values(world.sim.state.containers).filter((ct) => {
    const tags = operatorTags(String(ct.conf["tags"] ?? ""));
    return tags?.owner === uid.toLowerCase() && tags.server === server;
  });
}

/** The one running container of `server`, or undefined. */
export const runningOf = (world: World, uid: string, server: string): ContainerState | undefined =>
  containersOf(world, uid, server).find((ct) => ct.status === "running");

/** A server's running container as a client tells one from another: a vmid is reused, an address is not. */
export interface Instance {
  vmid: number;
  address: string;
}

export function instanceOf(world: World, uid: string, server: string): Instance {
  const ct = runningOf(world, uid, server);
  if (!ct) throw new Error(`${server} does not run`);
  return { vmid: ct.vmid, address: ct.address };
}

export interface RolloutWorld {
  world: World;
  uid: string;
  bystander: HandMadeServer;
  /** Every wait of the tests, scaled: `ms` is what it takes at the default scale of 0.05. */
  patience(ms: number): number;
}

/**
 * A world on the suite's control plane with the example pair Ready (on
 * EXAMPLE_IMAGE, with `overrides`) and a gateway made by hand on pve1 that
 * the pair must never touch. The operator's own delays are scaled as the
 * world's are, so a rollout takes seconds.
 */
export async function rolloutWorld(
  options: WorldOptions & { overrides?: Overrides; readyTimeoutMs?: number },
): Promise<RolloutWorld> {
  const { overrides, readyTimeoutMs, ...worldOptions } = options;
  const world = await startWorld({
    // E2E_KEEP_DIR=1 keeps the operator's log and the containers' directories for a look afterwards.
    keepDir: process.env["E2E_KEEP_DIR"] === "1",
    ...worldOptions,
    operatorArgs: operatorArgsFor(worldOptions.timeScale, worldOptions.operatorArgs),
  });
  try {
    const patience = (ms: number) => Math.round(ms * Math.max(1, world.times.scale / 0.05));
    const bystander = await provisionByHand(world.sim, world.postgres, {
      hostname: "bystander",
      node: world.nodes[0]!,
      image: image("bystander"),
    });
    const stored = await world.apply(world.exampleLdapPair(overrides ?? {}));
    await untilPair(
      world,
      "the example pair Ready",
      (v) => rolledOutTo(v, EXAMPLE_IMAGE),
      readyTimeoutMs ?? patience(120_000),
      200,
    );
    return { world, uid: stored.metadata.uid, bystander, patience };
  } catch (err) {
    await world.stop().catch(() => undefined);
    throw err;
  }
}

/** The operator's delays on the world's scale, and a short inventory poll while something is in flight. */
function operatorArgsFor(timeScale: number | undefined, extra: string[] = []): string[] {
  const scale = timeScale ?? Number(process.env["E2E_TIME_SCALE"] || 0.05);
  return [
    `--time-scale=${Math.min(1, Math.max(0.01, scale))}`,
    `--inventory-interval=${Math.max(500, Math.round(10_000 * scale))}ms`,
    `--inventory-busy-interval=${Math.max(100, Math.round(2_000 * scale))}ms`,
    ...extra,
  ];
}

/**
 * Gateway images that never become healthy, added to the running
 * simulator's catalog (it reads the catalog at every pull, create and
 * start), before the gateway's own `ldap-gateway:*` so that they win:
 *   - `nolisten`: the container starts, its process never listens;
 *   - `nousers`: the real stand-in, on a database URI nothing answers on:
 *     it serves the root DSE and no user (what a gateway does while its
 *     database is down).
 */
export function addBrokenImages(world: World): { nolisten: string; nousers: string } {
  const catalog = world.sim.config.catalog;
  const gateway = catalog.find((e) => e.pattern === `${LDAP_GATEWAY_IMAGE}:*`);
  if (!gateway?.command) throw new Error("the simulator has no gateway image to derive broken ones from");
  const nolisten = image("9.9.9-nolisten");
  const nousers = image("9.9.9-nousers");
  const entries: CatalogEntry[] = [
    { ...gateway, pattern: nolisten, command: ["/bin/sh", "-c", "exec sleep 86400"] },
    {
      ...gateway,
      pattern: nousers,
      // Port 9 on loopback: nothing listens (discard is not run), so every query fails at connect.
      command: [
        "/bin/sh",
        "-c",
        'SQL_URI="postgres://nobody@127.0.0.1:9/none" exec "$@"',
        "nousers",
        ...gateway.command,
      ],
    },
  ];
  if (!catalog.some((e) => e.pattern === nolisten)) catalog.unshift(...entries);
  return { nolisten, nousers };
}

/** Freezes a container's process (SIGSTOP): it accepts connections and never answers, as a hung server. */
export function freeze(world: World, vmid: number): void {
  signalGroup(world, vmid, "SIGSTOP");
}

export function thaw(world: World, vmid: number): void {
  signalGroup(world, vmid, "SIGCONT");
}

function signalGroup(world: World, vmid: number, signal: NodeJS.Signals): void {
  const pid = world.sim.core.runtime.pid(vmid);
  if (!pid) throw new Error(`CT ${vmid} has no process`);
  process.kill(-pid, signal);
}

/** A test's budget: `rollouts` rollouts at the default scale of 0.05, more at a slower one. */
export function budget(rollouts = 1): number {
  const scale = Number(process.env["E2E_TIME_SCALE"] || 0.05);
  return Math.round(rollouts * 120_000 * Math.max(1, scale / 0.05));
}

/** Task types by what they are, for reading the simulator's task log. */
export const TASK = {
  pull: "ociregistrypull",
  create: "vzcreate",
  start: "vzstart",
  stop: "vzstop",
  shutdown: "vzshutdown",
  destroy: "vzdestroy",
  sync: "auth-realm-sync",
} as const;
