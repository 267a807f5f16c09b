// npm run demo [-- --exit-when-ready] [--ready-timeout=3m] [--time-scale=1] [--kubeconfig=PATH]
//
// The whole operator on this machine: builds the test control plane when it
// is not cached, starts it with a PostgreSQL of sample users, the Proxmox
// simulator (pve1, pve2) running the gateway stand-in and the site's DNS,
// installs the CRD, runs the operator, applies the example LdapPair and
// shows it live until it is Ready; then prints how to look around and runs
// until Ctrl-C (SIGINT or SIGTERM), when it stops everything it started.
//
// --exit-when-ready: exit 0 once the pair is Ready, 1 when the wait times out
// (cleaning up either way). Startup failures exit 2.
import { spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseDuration } from "../src/config.js";
import {
  DEMO_STATE_FILE,
  elapsed,
  fitted,
  frameLines,
  lookAroundLines,
  notReadyLines,
  readiness,
  redraw,
  withoutAges,
  type DemoState,
  type LookAround,
  type Readiness,
} from "../test/e2e/demo-view.js";
import { EXAMPLE_NAME, SECRETS } from "../test/e2e/example.js";
import { REPO_ROOT, startWorld, type StoredObject, type World } from "../test/e2e/harness.js";
import { TIME_SCALE_VAR, timeScaleFrom } from "../test/e2e/time-scale.js";

const DEFAULT_NAMESPACE = "ldap-operator";
const USAGE = `usage: npm run demo [-- options]
  --exit-when-ready      exit 0 once the LdapPair is Ready, 1 if the wait times out (for tests)
  --ready-timeout=DUR    how long to wait for Ready (default 3m)
  --time-scale=N         every simulated duration times N (default ${TIME_SCALE_VAR} or 1: real time)
  --kubeconfig=PATH      use this control plane instead of starting one
  --namespace=NAME       the LdapPair's namespace (default ${DEFAULT_NAMESPACE})
`;

interface Options {
  exitWhenReady: boolean;
  readyTimeoutMs: number;
  timeScale: number;
  kubeconfig: string | undefined;
  namespace: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      "exit-when-ready": { type: "boolean", default: false },
      "ready-timeout": { type: "string", default: "3m" },
      "time-scale": { type: "string" },
      kubeconfig: { type: "string" },
      namespace: { type: "string", default: DEFAULT_NAMESPACE },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  return {
    exitWhenReady: values["exit-when-ready"],
    readyTimeoutMs: parseDuration(values["ready-timeout"], "ready-timeout"),
    timeScale: timeScaleFrom(values["time-scale"] ?? process.env[TIME_SCALE_VAR], 1),
    kubeconfig: values.kubeconfig,
    namespace: values.namespace,
  };
}

const say = (line = ""): void => void process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const clock = () => new Date().toTimeString().slice(0, 8);

/** The first signal stops the world and exits; a second one exits at once (the children die with us). */
class Shutdown {
  world: World | undefined;
  interrupted = false;
  private stopping: Promise<void> | undefined;

  constructor() {
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.on(signal, () => {
        if (this.interrupted) process.exit(130);
        this.interrupted = true;
        say(`\n${signal}: stopping (again to exit at once)`);
        if (this.world) void this.exit(0);
      });
    }
  }

  exit(code: number): Promise<void> {
    this.stopping ??= (async () => {
      const world = this.world;
      let status = code;
      if (world) {
        say("Stopping everything the demo started:");
        await world.stop().catch((err: unknown) => {
          say(`  ${(err as Error).message}`);
          status = status || 1;
        });
        const left = await world.leftoverProcesses();
        if (left.length) {
          say(`Left behind: ${left.map((p) => `${p.pid} ${p.args}`).join("; ")}`);
          status = status || 1;
        } else {
          say("Cleaned up: no process of the demo is left.");
        }
      }
      rmSync(DEMO_STATE_FILE, { force: true });
      process.exit(status);
    })();
    return this.stopping;
  }
}

/** Builds kube-apiserver and etcd in a child, saying every 30 s that it still builds. */
async function buildControlPlane(shutdown: Shutdown): Promise<void> {
  const started = Date.now();
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(REPO_ROOT, "test/e2e/build-controlplane.ts")],
    {
      cwd: REPO_ROOT,
      stdio: ["ignore", "inherit", "inherit"],
    },
  );
  const ticker = setInterval(
    () => say(`  ... still building the control plane (${elapsed(Date.now() - started)})`),
    30_000,
  );
  const code = await new Promise<number | null>((resolve) => child.once("exit", (c) => resolve(c)));
  clearInterval(ticker);
  if (shutdown.interrupted) process.exit(130);
  if (code !== 0) throw new Error(`building the control plane failed (exit ${code})`);
}

interface Wait {
  readiness: Readiness;
  waitedMs: number;
  pair: StoredObject | undefined;
}

/** The live view: `kubectl get ldappairs -o wide` and the latest events, redrawn until Ready or the timeout. */
async function watchUntilReady(
  world: World,
  o: Options,
  appliedAt: number,
  shutdown: Shutdown,
): Promise<Wait> {
  const tty = process.stdout.isTTY;
  let drawn = 0;
  let printed = "";
  let printedAt = 0;
  for (;;) {
    const [pairs, events, pair] = await Promise.all([
      world.kubectl("get", "ldappairs", "-o", "wide").catch((e: Error) => e.message),
      world.kubectl("get", "events", "--sort-by=.metadata.creationTimestamp").catch((e: Error) => e.message),
      world.getLdapPair(EXAMPLE_NAME).catch(() => undefined),
    ]);
    if (shutdown.interrupted) await new Promise(() => undefined); // the shutdown exits the process
    const state = readiness(pair);
    const waitedMs = Date.now() - appliedAt;
    const title = state.ready
      ? `ldappair/${EXAMPLE_NAME} is Ready, ${elapsed(waitedMs)} after kubectl apply`
      : `Waiting for ldappair/${EXAMPLE_NAME} to be Ready: ${elapsed(waitedMs)} of ${elapsed(o.readyTimeoutMs)}, ${state.why}`;
    const lines = frameLines({ title, pairs, events });
    if (tty) {
      const shown = fitted(lines, process.stdout.columns || 120);
      process.stdout.write(redraw(drawn, shown));
      drawn = shown.length;
    } else {
      // Without a terminal: plain lines, printed again only when something changed (or every 30 s).
      const key = withoutAges(lines.slice(1)) + (state.ready ? "" : state.why);
      if (key !== printed || Date.now() - printedAt > 30_000 || state.ready) {
        say(`[${clock()}] ${lines[0]}`);
        for (const line of lines.slice(1)) say(line);
        say();
        printed = key;
        printedAt = Date.now();
      }
    }
    if (state.ready || waitedMs >= o.readyTimeoutMs) return { readiness: state, waitedMs, pair };
    await sleep(tty ? 1000 : 2000);
  }
}

function lookAround(world: World): LookAround {
  const ldap1 = world.container("ldap1");
  return {
    kubeconfig: world.kubeconfig,
    namespace: world.namespace,
    name: EXAMPLE_NAME,
    probePort: world.operator.probePort,
    metricsPort: world.operator.metricsPort,
    operatorLog: world.operator.logFile,
    proxmoxApiUrl: world.sim.apiUrl,
    tokenSecret: SECRETS.token.name,
    databaseSecret: SECRETS.database.name,
    baseDn: world.baseDn,
    ...(ldap1?.status === "running"
      ? { ldap1: { vmid: ldap1.vmid, node: ldap1.node, address: ldap1.address } }
      : {}),
  };
}

/** After the wait: report what changes (Ready, ldap1's address) until the signal. */
async function idle(world: World, wasReady: boolean, appliedAt: number): Promise<never> {
  let ready = wasReady;
  let address = lookAround(world).ldap1?.address;
  for (;;) {
    await sleep(2000);
    const state = readiness(await world.getLdapPair(EXAMPLE_NAME).catch(() => undefined));
    if (state.ready !== ready) {
      ready = state.ready;
      say(
        state.ready
          ? `[${clock()}] ldappair/${EXAMPLE_NAME} is Ready, ${elapsed(Date.now() - appliedAt)} after kubectl apply`
          : `[${clock()}] ldappair/${EXAMPLE_NAME} is no longer Ready: ${state.why}`,
      );
    }
    const now = lookAround(world);
    if (now.ldap1?.address !== address) {
      address = now.ldap1?.address;
      const lines = lookAroundLines(now);
      const from = lines.findIndex((l) => l.startsWith("The directory"));
      say(`[${clock()}] ${address ? "ldap1 runs now." : "ldap1 is gone."}`);
      for (const line of lines.slice(from, lines.indexOf("", from))) say(line);
    }
  }
}

function writeState(world: World): void {
  const state: DemoState = {
    pid: process.pid,
    dnsServer: world.dnsServer,
    baseDn: world.baseDn,
    uids: world.postgres.seed.users.map((u) => u.uid),
    failedServerMemoryMs: world.times.failedServerMemoryMs,
    searchTimeoutMs: world.times.searchTimeoutMs,
  };
  writeFileSync(DEMO_STATE_FILE, JSON.stringify(state));
}

const shutdown = new Shutdown();

/** The options, or the usage and exit 2 when they cannot be read. */
function options(): Options {
  try {
    return parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`demo: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

async function main(): Promise<void> {
  const o = options();
  const started = Date.now();
  let built = "a control plane given by --kubeconfig";
  if (!o.kubeconfig) {
    say(
      "Preparing the test control plane (kube-apiserver and etcd, built from Go modules on the first run):",
    );
    await buildControlPlane(shutdown);
    built = `the control plane ready ${elapsed(Date.now() - started)} after the start`;
  }
  say(`Starting the world (time scale ${o.timeScale}):`);
  const world = await startWorld({
    ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
    namespace: o.namespace,
    timeScale: o.timeScale,
    // The operator as `npm run start:dev` runs it, so `ps` shows src/main.ts.
    operatorEntry: "src",
    log: (line) => say(`  ${line}`),
  });
  shutdown.world = world;
  if (shutdown.interrupted) return shutdown.exit(130);
  writeState(world);

  const pair = world.exampleLdapPair();
  await world.apply(pair);
  const appliedAt = Date.now();
  say(`Applied ldappair/${EXAMPLE_NAME} (${pair.spec["image"] as string}, ldap1 on pve1, ldap2 on pve2):`);
  say();
  const wait = await watchUntilReady(world, o, appliedAt, shutdown);
  say();
  if (wait.readiness.ready) {
    say(
      `Ready ${elapsed(wait.waitedMs)} after kubectl apply; ${elapsed(Date.now() - started)} after the demo started ` +
        `(${built}).`,
    );
  } else {
    const hasStatus = !!wait.pair?.status;
    for (const line of notReadyLines(EXAMPLE_NAME, wait.waitedMs, wait.readiness, hasStatus, o.exitWhenReady))
      say(line);
  }
  say();
  for (const line of lookAroundLines(lookAround(world), o.exitWhenReady)) say(line);
  say();
  if (o.exitWhenReady) return shutdown.exit(wait.readiness.ready ? 0 : 1);
  say(`[${clock()}] Running until Ctrl-C.`);
  await idle(world, wait.readiness.ready, appliedAt);
}

main().catch((err: unknown) => {
  // Interrupted while starting, the parts fail as their processes get the signal too: no news.
  if (!shutdown.interrupted) process.stderr.write(`demo: ${(err as Error).stack ?? String(err)}\n`);
  void shutdown.exit(shutdown.interrupted ? 130 : 2);
});
