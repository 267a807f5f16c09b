// The whole world of an end-to-end test (and of `npm run demo`) in one call:
//
//   const world = await startWorld({ kubeconfig: inject("kubeconfig") });
//   await world.apply(world.exampleLdapPair());
//   await world.waitForCondition("site-a", "Ready", "True", 60_000);
//   await world.stop();
//
// A control plane (the suite's, or one of its own), a PostgreSQL with the
// sample users, the Proxmox simulator with two nodes running the gateway
// stand-in, the site's DNS, the LdapPair CRD, a namespace with the Secrets
// the example refers to, and the operator as its own process with its JSON
// log in a file. Every duration follows one factor, E2E_TIME_SCALE
// (time-scale.ts). stop() leaves no process behind, and leftoverProcesses()
// tells which ones would have stayed.
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { GROUP, PLURAL, VERSION } from "../../src/api/ldappair.js";
import { FailoverClient, type FailoverClientOptions } from "../failover-client/client.js";
import type { CatalogEntry } from "../pve-sim/config.js";
import { attachLdapSite, GATEWAY_CWD_VAR, ldapGatewayImage, type LdapSite } from "../pve-sim/ldap-site.js";
import { PveSimulator } from "../pve-sim/simulator.js";
import type { ContainerState } from "../pve-sim/state.js";
import { startControlPlane, type ControlPlane } from "../testenv/controlplane.js";
import { freePort } from "../testenv/ports.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";
import { EXAMPLE_DOMAIN, exampleLdapPair, SECRETS, type ExampleLdapPair, type Overrides } from "./example.js";
import { kubectlFor, type Kubectl } from "./kubectl.js";
import { operatorBundle } from "./operator-bundle.js";
import { OperatorProcess, type OperatorProcessOptions } from "./operator-process.js";
import { processesMarkedBy, type ProcessInfo, type WorldMarkers } from "./processes.js";
import {
  DEFAULT_TEST_TIME_SCALE,
  scaledTimes,
  TIME_SCALE_VAR,
  timeScaleFrom,
  type ScaledTimes,
} from "./time-scale.js";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CRD_NAME = `${PLURAL}.${GROUP}`;
/** Environment marker of every process the world starts itself (the operator). */
export const WORLD_VAR = "E2E_WORLD";

export interface WorldOptions {
  /** An existing control plane (a suite's: `inject("kubeconfig")`); without it the world starts its own. */
  kubeconfig?: string;
  /** Default: `e2e-` and a random suffix. */
  namespace?: string;
  /** Default: E2E_TIME_SCALE, else 0.05. */
  timeScale?: number;
  /** Default pve1, pve2. */
  nodes?: string[];
  /** Default true; false leaves `world.operator` unstarted (start it with `world.operator.start()`). */
  startOperator?: boolean;
  /** Extra operator flags, after the harness's own (a later flag wins). */
  operatorArgs?: string[];
  /**
   * `bundle` (default): src/main.ts bundled once per test process, started with plain node (a start
   * takes a second, not tsx's several); `src`: node --import tsx src/main.ts; `dist`: the built dist/main.js.
   */
  operatorEntry?: "bundle" | "src" | "dist";
  /**
   * Point the nodes' DNS at the site DNS from the start. Default false: the nodes start with the
   * simulator's own resolver, as a fresh Proxmox install does, and the LdapPair's nodeDns fixes it.
   */
  configureNodeDns?: boolean;
  /** Keep the world's directory (operator log, container working directories) after stop. */
  keepDir?: boolean;
  /** Progress lines while it comes up and goes down (the demo prints them). */
  log?: (line: string) => void;
}

export interface World {
  id: string;
  namespace: string;
  kubeconfig: string;
  /** The world's own directory: operator.log, operator.stderr.log, containers/<vmid>/. */
  dir: string;
  times: ScaledTimes;
  kc: KubeConfig;
  core: CoreV1Api;
  objects: CustomObjectsApi;
  /** Only when the world started its own. */
  controlPlane: ControlPlane | undefined;
  postgres: TestPostgres;
  sim: PveSimulator;
  site: LdapSite;
  /** host:port of the site DNS. */
  dnsServer: string;
  baseDn: string;
  nodes: string[];
  operator: OperatorProcess;
  /** `kubectl --kubeconfig ... --namespace <world's> ...args`. */
  kubectl: Kubectl;
  /** `kubectl apply -f -`; resolves with the object as stored. */
  apply(object: object): Promise<StoredObject>;
  getLdapPair(name: string): Promise<StoredObject>;
  /** `kubectl wait --for=condition=TYPE=STATUS ldappair/NAME`; rejects with the conditions and the operator log. */
  waitForCondition(name: string, type: string, status?: string, timeoutMs?: number): Promise<void>;
  /** The example LdapPair for this world, servers on the first two nodes; `overrides` are merged in. */
  exampleLdapPair(overrides?: Overrides): ExampleLdapPair;
  /** An SSSD-like client for ldap1, ldap2 through the site DNS, on the world's time scale. */
  failoverClient(options?: Partial<FailoverClientOptions>): FailoverClient;
  /** The container whose hostname is `name` (a running one first), as the simulator holds it. */
  container(name: string): ContainerState | undefined;
  /** Processes of this world still alive (none after stop()). */
  leftoverProcesses(): Promise<ProcessInfo[]>;
  /** Stops everything the world started, in reverse order; idempotent. */
  stop(): Promise<void>;
}

export interface StoredObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; generation: number; [key: string]: unknown };
  spec?: Record<string, unknown>;
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] } & Record<
    string,
    unknown
  >;
}

/** Cleanups in start order; run newest first, each once, all of them even when one fails. */
class Teardown {
  private readonly steps: { done: string; run: () => Promise<unknown> }[] = [];
  private done: Promise<void> | undefined;

  constructor(private readonly log: (line: string) => void) {}

  /** `done` is what the log says once `run` has finished, e.g. "stopped the operator". */
  add(done: string, run: () => Promise<unknown>): void {
    this.steps.push({ done, run });
  }

  run(): Promise<void> {
    this.done ??= (async () => {
      const errors: unknown[] = [];
      for (const step of this.steps.reverse()) {
        const started = Date.now();
        try {
          await step.run();
          this.log(`${step.done} (${seconds(Date.now() - started)})`);
        } catch (err) {
          errors.push(err);
          this.log(`could not finish "${step.done}": ${(err as Error).message}`);
        }
      }
      if (errors.length) throw new AggregateError(errors, "the world did not stop cleanly");
    })();
    return this.done;
  }
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

/** What startWorld has started, before the handles are put together. */
interface Parts {
  id: string;
  namespace: string;
  nodes: string[];
  times: ScaledTimes;
  dir: string;
  kubeconfig: string;
  kc: KubeConfig;
  kubectl: Kubectl;
  controlPlane: ControlPlane | undefined;
  postgres: TestPostgres;
  sim: PveSimulator;
  site: LdapSite;
  operator: OperatorProcess;
  teardown: Teardown;
}

export async function startWorld(options: WorldOptions = {}): Promise<World> {
  const log = options.log ?? (() => undefined);
  const teardown = new Teardown(log);
  try {
    return handles(await startParts(options, log, teardown));
  } catch (err) {
    await teardown.run().catch(() => undefined);
    throw err;
  }
}

async function startParts(
  options: WorldOptions,
  log: (line: string) => void,
  teardown: Teardown,
): Promise<Parts> {
  const id = randomBytes(4).toString("hex");
  const namespace = options.namespace ?? `e2e-${id}`;
  const nodes = options.nodes ?? ["pve1", "pve2"];
  const times = scaledTimes(
    options.timeScale ?? timeScaleFrom(process.env[TIME_SCALE_VAR], DEFAULT_TEST_TIME_SCALE),
  );
  const dir = mkdtempSync(join(tmpdir(), "ldappair-e2e-"));
  teardown.add("removed the world's directory", async () => {
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
  });
  const timed = async <T>(what: (value: T) => string, start: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const value = await start();
    log(`${what(value)} (${seconds(Date.now() - started)})`);
    return value;
  };

  // The control plane first: the first run builds it, which takes minutes.
  let controlPlane: ControlPlane | undefined;
  let kubeconfig = options.kubeconfig;
  if (!kubeconfig) {
    controlPlane = await timed(
      (cp) => `control plane at ${cp.server}`,
      () => startControlPlane(),
    );
    teardown.add("stopped the control plane", () => controlPlane!.stop());
    kubeconfig = controlPlane.kubeconfigPath;
  }
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const kubectl = kubectlFor(kubeconfig, namespace);

  // Settled, not all: a part still starting when another fails must register its cleanup first.
  const [postgres, { sim, site }] = await allStarted([
    timed(
      (pg) => `PostgreSQL at ${pg.host}:${pg.port} with ${pg.seed.users.length} sample users`,
      () => startPostgres(),
    ).then((pg) => {
      teardown.add("stopped PostgreSQL", () => pg.stop());
      return pg;
    }),
    timed(
      ({ sim }) => `Proxmox simulator (${nodes.join(", ")}) at ${sim.url}, time scale ${times.scale}`,
      () => startSite(dir, nodes, times, options.configureNodeDns ?? false, teardown),
    ),
    timed(
      () => `CRD ${CRD_NAME} installed`,
      () => installCrd(kubectl),
    ),
    timed(
      () => `namespace ${namespace}`,
      () => createNamespace(kc, kubectl, namespace, !controlPlane, teardown),
    ),
  ] as const);
  await createSecrets(kc, namespace, sim, postgres);
  log(`Secrets ${SECRETS.token.name}, ${SECRETS.database.name}, ${SECRETS.ca.name}`);

  const [probePort, metricsPort] = [await freePort(), await freePort()];
  const operator = new OperatorProcess({
    root: REPO_ROOT,
    entry: await operatorEntry(options.operatorEntry ?? "bundle"),
    args: operatorArgs({
      kubeconfig,
      namespace,
      id,
      probePort,
      metricsPort,
      extra: options.operatorArgs ?? [],
    }),
    env: { [WORLD_VAR]: id },
    logFile: join(dir, "operator.log"),
    stderrFile: join(dir, "operator.stderr.log"),
    probePort,
    metricsPort,
  });
  teardown.add("stopped the operator", () => operator.stop());
  if (options.startOperator ?? true) {
    await timed(
      () => `operator running (log ${operator.logFile})`,
      async () => {
        operator.start();
        await operator.waitReady();
      },
    );
  }
  return {
    id,
    namespace,
    nodes,
    times,
    dir,
    kubeconfig,
    kc,
    kubectl,
    controlPlane,
    postgres,
    sim,
    site,
    operator,
    teardown,
  };
}

function handles({ teardown, ...p }: Parts): World {
  const { namespace, times, sim, site, postgres, operator, kubectl } = p;
  const objects = p.kc.makeApiClient(CustomObjectsApi);
  const baseDn = postgres.seed.baseDn;
  const dnsServer = site.dns.address.server;
  const markers: WorldMarkers = {
    paths: [p.dir, postgres.dataDir, ...(p.controlPlane ? [p.controlPlane.dir] : [])],
    env: [`${WORLD_VAR}=${p.id}`, `PVE_SIM_ADDRESS=127.${sim.core.addresses.octet}.`],
  };
  const getLdapPair = async (name: string) =>
    (await objects.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      name,
    })) as StoredObject;
  const facts = {
    namespace,
    proxmoxUrl: sim.url,
    nodes: p.nodes,
    dnsAddress: site.dnsAddress,
    settleTime: times.settleTime,
  };
  return {
    ...p,
    core: p.kc.makeApiClient(CoreV1Api),
    objects,
    dnsServer,
    baseDn,
    apply: async (object) =>
      JSON.parse(
        await kubectl.withInput(JSON.stringify(object), "apply", "-f", "-", "-o", "json"),
      ) as StoredObject,
    getLdapPair,
    waitForCondition: (name, type, status = "True", timeoutMs = 60_000) =>
      waitForCondition({ kubectl, getLdapPair, operator }, name, type, status, timeoutMs),
    exampleLdapPair: (overrides = {}) => exampleLdapPair(facts, overrides),
    failoverClient: (extra = {}) =>
      new FailoverClient({
        uris: ["ldaps://ldap1:636", "ldaps://ldap2:636"],
        dnsServer,
        baseDn,
        failedServerMemoryMs: times.failedServerMemoryMs,
        offlineTimeoutMs: times.offlineTimeoutMs,
        offlineRandomMs: times.offlineRandomMs,
        searchTimeoutMs: times.searchTimeoutMs,
        connectTimeoutMs: times.connectTimeoutMs,
        ...extra,
      }),
    container: (name) => containerNamed(sim, name),
    leftoverProcesses: () => processesMarkedBy(markers),
    stop: () => teardown.run(),
  };
}

/** Promise.all that waits for every part to settle before it rejects with the first failure. */
async function allStarted<T extends readonly unknown[]>(parts: {
  [K in keyof T]: Promise<T[K]>;
}): Promise<T> {
  const settled = await Promise.allSettled(parts);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** The harness's flags, production names; `extra` comes last so a test can override any of them. */
async function operatorEntry(entry: "bundle" | "src" | "dist"): Promise<OperatorProcessOptions["entry"]> {
  return entry === "bundle" ? { bundle: await operatorBundle(REPO_ROOT) } : entry;
}

function operatorArgs(o: {
  kubeconfig: string;
  namespace: string;
  id: string;
  probePort: number;
  metricsPort: number;
  extra: string[];
}): string[] {
  return [
    `--kubeconfig=${o.kubeconfig}`,
    `--namespaces=${o.namespace}`,
    `--metrics-bind-address=127.0.0.1:${o.metricsPort}`,
    `--health-probe-bind-address=127.0.0.1:${o.probePort}`,
    `--lease-namespace=${o.namespace}`,
    `--lease-name=ldappair-operator-${o.id}`,
    // The same identity after a restart renews its own lease at once instead of waiting for it to expire.
    `--identity=e2e-${o.id}`,
    ...o.extra,
  ];
}

/** The simulator with the gateway stand-in in its catalog, and the site's DNS beside it. */
async function startSite(
  dir: string,
  nodes: string[],
  times: ScaledTimes,
  configureNodes: boolean,
  teardown: Teardown,
): Promise<{ sim: PveSimulator; site: LdapSite }> {
  const sim = await PveSimulator.start({
    nodes,
    speed: times.simSpeed,
    stopGraceMs: times.stopGraceMs,
    catalog: [await gatewayImage(dir, times.gatewayStartupScale)],
  });
  teardown.add("stopped the Proxmox simulator and its containers", () => sim.stop());
  const site = await attachLdapSite(sim, { searchDomain: EXAMPLE_DOMAIN, configureNodes });
  teardown.add("stopped the site DNS", () => site.stop());
  return { sim, site };
}

/**
 * The gateway image (the stand-in, or the build PVE_SIM_GATEWAY_COMMAND names), each container in a
 * directory of its own under the world's, as a real container has its own file system: the gateway keeps
 * its certificate in ./cert, and two gateways sharing one would race to write it. PVE_SIM_GATEWAY_CWD,
 * when set, says where instead.
 */
function gatewayImage(dir: string, startupScale: number): Promise<CatalogEntry> {
  const cwd = process.env[GATEWAY_CWD_VAR] || join(dir, "containers", "{vmid}");
  return ldapGatewayImage({ env: { ...process.env, [GATEWAY_CWD_VAR]: cwd }, startupScale });
}

async function installCrd(kubectl: Kubectl): Promise<void> {
  await kubectl("apply", "-f", join(REPO_ROOT, "crds"));
  await kubectl("wait", "--for=condition=Established", `crd/${CRD_NAME}`, "--timeout=60s");
}

async function createNamespace(
  kc: KubeConfig,
  kubectl: Kubectl,
  namespace: string,
  shared: boolean,
  teardown: Teardown,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  // A control plane of the world's own goes away whole; on a shared one the world's objects are removed.
  if (shared)
    teardown.add(`deleted the LdapPairs and namespace ${namespace}`, () =>
      deleteNamespace(kubectl, namespace),
    );
}

/**
 * The test control plane runs no controller manager, so a deleted namespace stays Terminating with
 * everything in it: the LdapPairs are deleted one by one, their finalizers dropped first (with the
 * operator gone nobody else would), so no other operator on the shared control plane ever sees them.
 */
async function deleteNamespace(kubectl: Kubectl, namespace: string): Promise<void> {
  const names = (await kubectl("get", PLURAL, "-o", "jsonpath={.items[*].metadata.name}"))
    .split(/\s+/)
    .filter(Boolean);
  for (const name of names) {
    await kubectl("patch", `${PLURAL}/${name}`, "--type=merge", "-p", '{"metadata":{"finalizers":null}}');
  }
  await kubectl("delete", PLURAL, "--all", "--wait=true", "--timeout=30s");
  await kubectl("delete", "namespace", namespace, "--wait=false");
}

async function createSecrets(
  kc: KubeConfig,
  namespace: string,
  sim: PveSimulator,
  postgres: TestPostgres,
): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const secrets: Record<string, Record<string, string>> = {
    [SECRETS.token.name]: {
      [SECRETS.token.tokenIdKey]: sim.tokenId,
      [SECRETS.token.tokenSecretKey]: sim.tokenSecret,
    },
    [SECRETS.database.name]: { [SECRETS.database.key]: postgres.url },
    [SECRETS.ca.name]: { [SECRETS.ca.key]: sim.certPem },
  };
  for (const [name, stringData] of Object.entries(secrets)) {
    const body = { metadata: { name, namespace }, type: "Opaque", stringData };
    try {
      await core.createNamespacedSecret({ namespace, body });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      await core.replaceNamespacedSecret({ name, namespace, body });
    }
  }
}

function containerNamed(sim: PveSimulator, name: string): ContainerState | undefined {
  const named = Object.values(sim.state.containers).filter((ct) => ct.conf["hostname"] === name);
  return named.find((ct) => ct.status === "running") ?? named[0];
}

async function waitForCondition(
  w: { kubectl: Kubectl; getLdapPair: (name: string) => Promise<StoredObject>; operator: OperatorProcess },
  name: string,
  type: string,
  status: string,
  timeoutMs: number,
): Promise<void> {
  try {
    await w.kubectl(
      "wait",
      `--for=condition=${type}=${status}`,
      `ldappair/${name}`,
      `--timeout=${timeoutMs}ms`,
    );
  } catch (err) {
    const conditions = await w
      .getLdapPair(name)
      .then((pair) => JSON.stringify(pair.status?.conditions ?? [], null, 2))
      .catch((e: unknown) => `(could not read it: ${(e as Error).message})`);
    throw new Error(
      `ldappair/${name} did not reach ${type}=${status} within ${timeoutMs} ms: ${(err as Error).message}\n` +
        `conditions: ${conditions}\n${w.operator.logTail(20)}`,
      { cause: err },
    );
  }
}
