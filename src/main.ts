/**
 * Operator entry point and wiring. `runOperator({ reconcile, config })` runs
 * the generic runtime (informers, workqueue, leader election, probes,
 * metrics) around one reconcile function; `main` runs it with the LdapPair
 * reconciler (src/reconcile/reconciler.ts), whose shared inventory poll
 * enqueues a pair through the controller's queue.
 */
import { GROUP, KIND, PLURAL, VERSION } from "./api/ldappair.js";
import { KubeConfig } from "@kubernetes/client-node";
import { pathToFileURL } from "node:url";
import { ConfigError, helpText, parseConfig, type OperatorConfig } from "./config.js";
import { startProbeServer, type Probes, type ProbeServer } from "./observability/http.js";
import { createLogger, redactorOf, type Logger } from "./observability/logger.js";
import { OperatorMetrics } from "./observability/metrics.js";
import { withTimeout } from "./runtime/clock.js";
import { Controller, type Reconciler } from "./runtime/controller.js";
import { errorMessage } from "./runtime/errors.js";
import { EventRecorder } from "./runtime/events.js";
import { Informer, InformerSet, type InformerOptions } from "./runtime/informer.js";
import { LeaderElector } from "./runtime/leaderelection.js";
import { ResourceClient, type ResourceType } from "./runtime/resource.js";
import { StatusPatcher } from "./runtime/status.js";
import { LdapPairReconciler, type LdapPairReconcilerOptions } from "./reconcile/reconciler.js";

export const ldapPairResource: ResourceType = { group: GROUP, version: VERSION, plural: PLURAL, kind: KIND };

export interface RunOperatorOptions {
  /** The controller's logic; the runtime around it knows nothing of LDAP or Proxmox. */
  reconcile: Reconciler;
  config: OperatorConfig;
  resource?: ResourceType;
  controllerName?: string;
  kubeConfig?: KubeConfig;
  logger?: Logger;
  metrics?: OperatorMetrics;
  /** Watch tuning, mostly for tests that need a stall detected in seconds. */
  informer?: Pick<InformerOptions, "watchTimeoutSeconds" | "watchdogGraceMs" | "restartBackoff">;
}

export interface Operator {
  readonly logger: Logger;
  readonly metrics: OperatorMetrics;
  readonly cache: InformerSet;
  readonly controller: Controller;
  readonly status: StatusPatcher;
  readonly probePort: number | undefined;
  readonly metricsPort: number | undefined;
  isLeader(): boolean;
  /** Graceful stop; resolves with the exit code. */
  stop(exitCode?: number): Promise<number>;
  /** Settles when the operator stopped by itself (leadership lost) or through `stop`. */
  readonly finished: Promise<number>;
}

export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  // KUBECONFIG may list several files, which only the client's default loader merges.
  if (path && path === process.env.KUBECONFIG) kc.loadFromDefault();
  else if (path) kc.loadFromFile(path);
  else if (process.env.KUBERNETES_SERVICE_HOST) kc.loadFromCluster();
  else kc.loadFromDefault();
  return kc;
}

/** A reconciler that changes nothing, for running the runtime alone. */
export const observeOnly: Reconciler = async (key, obj, ctx) => {
  ctx.logger.debug("reconcile", { key, exists: obj !== undefined });
};

export async function runOperator(options: RunOperatorOptions): Promise<Operator> {
  const { config } = options;
  const name = options.controllerName ?? "ldappair";
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const metrics = options.metrics ?? new OperatorMetrics();
  const kubeConfig = options.kubeConfig ?? loadKubeConfig(config.kubeconfig);
  const resource = new ResourceClient(kubeConfig, options.resource ?? ldapPairResource);

  const namespaces = config.namespaces.length > 0 ? config.namespaces : [undefined];
  const cache = new InformerSet(
    namespaces.map(
      (namespace) =>
        new Informer({
          resource,
          namespace,
          labelSelector: config.labelSelector,
          logger,
          resyncPeriodMs: config.resyncPeriodMs,
          ...options.informer,
        }),
    ),
  );
  // Secrets registered by a reconcile must reach the redactor the logger actually writes through.
  const redactor = redactorOf(logger);
  const status = new StatusPatcher(resource, { redactor });
  const events = new EventRecorder({
    kubeConfig,
    reportingController: `${resource.type.group}/${name}-controller`,
    reportingInstance: config.identity,
    logger,
    redactor,
  });
  const controller = new Controller({
    name,
    cache,
    reconcile: options.reconcile,
    resource,
    status,
    events,
    logger,
    metrics,
    workers: config.workers,
    registerSecret: (value) => redactor.registerSecret(value),
  });

  let settle: (code: number) => void = () => undefined;
  const finished = new Promise<number>((resolve) => (settle = resolve));
  let stopping: Promise<number> | undefined;
  // Fired whenever leadership is lost, also in the middle of a SIGTERM shutdown.
  const leadershipLost = new AbortController();

  const startWhenSynced = (): void => {
    void waitFor(() => cache.hasSynced).then(() => {
      if (!stopping) controller.start();
    });
  };

  const elector = config.leaderElect
    ? new LeaderElector({
        kubeConfig,
        leaseName: config.leaseName,
        leaseNamespace: config.leaseNamespace,
        identity: config.identity,
        logger,
        timing: {
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        },
        onStartedLeading: () => {
          metrics.leaderStatus.set({ name: config.leaseName }, 1);
          startWhenSynced();
        },
        onStoppedLeading: () => {
          metrics.leaderStatus.set({ name: config.leaseName }, 0);
          // Another replica may already lead: abort running reconciles at once and exit 1 for a restart.
          leadershipLost.abort();
          void finish(1);
        },
      })
    : undefined;

  const probes: Probes = {
    healthy: () => controller.healthy(),
    ready: () => cache.hasSynced || "caches not synced",
  };
  const servers = await startServers(config, probes, metrics);

  /** The first call starts the stop sequence; a loss of leadership still cuts it short through the signal. */
  function finish(exitCode: number): Promise<number> {
    stopping ??= shutDown(
      { controller, events, elector, cache, servers: servers.all, logger },
      { graceMs: config.shutdownGraceMs, exitCode, leadershipLost: leadershipLost.signal },
    ).then((code) => {
      metrics.leaderStatus.set({ name: config.leaseName }, 0);
      settle(code);
      return code;
    });
    return stopping;
  }

  const stop = (exitCode = 0): Promise<number> => finish(exitCode);

  cache.start();
  if (elector) {
    metrics.leaderStatus.set({ name: config.leaseName }, 0);
    elector.start();
  } else {
    startWhenSynced();
  }
  logger.info("operator started", {
    identity: config.identity,
    namespaces: config.namespaces.length ? config.namespaces : "*",
    labelSelector: config.labelSelector,
    leaderElection: config.leaderElect,
    probePort: servers.probe?.port,
    metricsPort: servers.metrics?.port,
  });

  return {
    logger,
    metrics,
    cache,
    controller,
    status,
    probePort: servers.probe?.port,
    metricsPort: servers.metrics?.port,
    isLeader: () => elector?.isLeader ?? true,
    stop,
    finished,
  };
}

export interface ShutdownParts {
  controller: Pick<Controller, "stop">;
  events: Pick<EventRecorder, "flush">;
  elector: Pick<LeaderElector, "stop"> | undefined;
  cache: Pick<InformerSet, "stop">;
  servers: ReadonlyArray<Pick<ProbeServer, "close">>;
  logger: Logger;
}

export interface ShutdownRequest {
  graceMs: number;
  /** The code asked for (0 on SIGTERM); leadership lost at any point makes it 1. */
  exitCode: number;
  /** Aborted when leadership is lost, before the stop sequence or while it runs. */
  leadershipLost: AbortSignal;
}

/**
 * The stop sequence; resolves with the exit code. On SIGTERM running
 * reconciles get the grace period, and the lease is handed back only if they
 * all finished: one still running must not overlap a new leader's work. Once
 * leadership is lost (before or during that grace period) another replica may
 * lead already, so reconciles are aborted at once, nothing is released (the
 * lease is not ours), and the exit code is 1, as client-go's callers do.
 */
export async function shutDown(parts: ShutdownParts, how: ShutdownRequest): Promise<number> {
  const { controller, events, elector, cache, servers, logger } = parts;
  const lost = (): boolean => how.leadershipLost.aborted;
  const graceMs = lost() ? 0 : how.graceMs;
  logger.info("shutting down", { graceMs, leadershipLost: lost() });
  const clean = await controller.stop(graceMs, how.leadershipLost);
  // A hung API call must not keep a terminating pod from exiting.
  await withTimeout(events.flush(), 2_000, undefined);
  const release = clean && !lost();
  if (elector && !clean && !lost())
    logger.warn("lease not released: reconciles still running, a standby takes over when it expires");
  await withTimeout(elector?.stop(release), 5_000, undefined);
  await withTimeout(cache.stop(), 2_000, undefined);
  await Promise.all(servers.map((s) => s.close()));
  const exitCode = lost() ? 1 : how.exitCode;
  logger.info("stopped", { exitCode, leadershipLost: lost() });
  return exitCode;
}

async function startServers(config: OperatorConfig, probes: Probes, metrics: OperatorMetrics) {
  const disabled = (address: string): boolean => address === "0" || address === "";
  if (!disabled(config.probeAddress) && config.probeAddress === config.metricsAddress) {
    const both = await startProbeServer(config.probeAddress, { probes, registry: metrics.registry });
    return { probe: both, metrics: both, all: [both] };
  }
  const probe = disabled(config.probeAddress)
    ? undefined
    : await startProbeServer(config.probeAddress, { probes });
  const metricsServer = disabled(config.metricsAddress)
    ? undefined
    : await startProbeServer(config.metricsAddress, { registry: metrics.registry });
  return { probe, metrics: metricsServer, all: [probe, metricsServer].filter((s): s is ProbeServer => !!s) };
}

function waitFor(condition: () => boolean, intervalMs = 100): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (condition()) resolve();
      else setTimeout(check, intervalMs).unref();
    };
    check();
  });
}

/** Wires signals: the first SIGTERM/SIGINT stops gracefully, a second one exits at once. */
export function exitOnSignals(operator: Operator): void {
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) process.exit(1);
    signalled = true;
    operator.logger.info("signal received", { signal });
    void operator.stop(0);
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  void operator.finished.then((code) => process.exit(code));
}

async function main(argv: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig(argv);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n\n${helpText()}`);
    process.exit(2);
  }
  if (parsed.help) {
    process.stdout.write(helpText());
    return;
  }
  const reconciler = new LdapPairReconciler(reconcilerOptions(parsed.config));
  const operator = await runOperator({ reconcile: reconciler.reconcile, config: parsed.config });
  reconciler.bindQueue((key) => operator.controller.queue.add(key));
  // Polls and kept connections end with the operator (before exitOnSignals exits the process).
  void operator.finished.then(() => reconciler.close());
  exitOnSignals(operator);
}

/** The LdapPair reconciler's settings from the operator's flags. */
export function reconcilerOptions(config: OperatorConfig): LdapPairReconcilerOptions {
  return {
    inventory: {
      intervalMs: config.inventoryIntervalMs,
      busyIntervalMs: config.inventoryBusyIntervalMs,
      pollTimeoutMs: config.inventoryTimeoutMs,
    },
    proxmoxTimeoutMs: config.proxmoxTimeoutMs,
    probeTimeouts: config.probeTimeouts,
    timeScale: config.timeScale,
  };
}

const entry = process.argv[1];
if (entry && import.meta.url === pathToFileURL(entry).href) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    createLogger().error("operator failed to start", { error: errorMessage(err) });
    process.exit(1);
  });
}
