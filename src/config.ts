import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { LogLevel } from "./observability/logger.js";
import { maxTimerMs } from "./runtime/clock.js";
import { validateTiming } from "./runtime/leaderdecision.js";

export { maxTimerMs };

export interface OperatorConfig {
  /** Empty: all namespaces. */
  namespaces: string[];
  labelSelector: string | undefined;
  workers: number;
  metricsAddress: string;
  probeAddress: string;
  leaderElect: boolean;
  leaseName: string;
  leaseNamespace: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  resyncPeriodMs: number;
  shutdownGraceMs: number;
  logLevel: LogLevel;
  kubeconfig: string | undefined;
  /** The shared Proxmox inventory poll: interval, interval while a pair has work in flight, bound on one poll. */
  inventoryIntervalMs: number;
  inventoryBusyIntervalMs: number;
  inventoryTimeoutMs: number;
  /** Per request to a Proxmox API. */
  proxmoxTimeoutMs: number;
  /** The LDAPS health probe's bound on each step. */
  probeTimeouts: { connect: number; rootDse: number; knownUser: number; userCount: number };
  /** Multiplies the operator's own delays (task polls, backoff, resync of a pair in sync): tests only. */
  timeScale: number;
}

interface Setting {
  flag: string;
  env: string;
  help: string;
  default?: string;
}

const inClusterNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

const settings = {
  namespaces: {
    flag: "namespaces",
    env: "WATCH_NAMESPACES",
    help: "comma-separated namespaces to watch; empty watches all",
    default: "",
  },
  labelSelector: {
    flag: "label-selector",
    env: "LABEL_SELECTOR",
    help: "only LdapPairs matching this label selector (splits a fleet between deployments)",
  },
  workers: { flag: "workers", env: "WORKERS", help: "concurrent reconciles", default: "1" },
  metricsAddress: {
    flag: "metrics-bind-address",
    env: "METRICS_BIND_ADDRESS",
    help: 'address of /metrics; "0" disables',
    default: ":8080",
  },
  probeAddress: {
    flag: "health-probe-bind-address",
    env: "HEALTH_PROBE_BIND_ADDRESS",
    help: "address of /healthz and /readyz",
    default: ":8081",
  },
  leaderElect: {
    flag: "leader-elect",
    env: "LEADER_ELECT",
    help: "elect a leader on a Lease so only one replica reconciles (true|false)",
    default: "true",
  },
  leaseName: {
    flag: "lease-name",
    env: "LEASE_NAME",
    help: "name of the leader election Lease",
    default: "ldappair-operator-leader",
  },
  leaseNamespace: {
    flag: "lease-namespace",
    env: "LEASE_NAMESPACE",
    help: 'namespace of the Lease; default: POD_NAMESPACE, the in-cluster namespace, or "default"',
  },
  identity: {
    flag: "identity",
    env: "LEADER_IDENTITY",
    help: "this replica's identity in the Lease; default: hostname plus a random suffix",
  },
  leaseDuration: {
    flag: "lease-duration",
    env: "LEASE_DURATION",
    help: "how long a standby waits before taking over a lease that stopped changing",
    default: "15s",
  },
  renewDeadline: {
    flag: "renew-deadline",
    env: "RENEW_DEADLINE",
    help: "how long a leader keeps trying to renew before it stops working",
    default: "10s",
  },
  retryPeriod: {
    flag: "retry-period",
    env: "RETRY_PERIOD",
    help: "interval between lease attempts",
    default: "2s",
  },
  resyncPeriod: {
    flag: "resync-period",
    env: "RESYNC_PERIOD",
    help: "how often every object is reconciled again even without a change",
    default: "10m",
  },
  shutdownGrace: {
    flag: "shutdown-grace-period",
    env: "SHUTDOWN_GRACE_PERIOD",
    help: "time running reconciles get to finish on SIGTERM",
    default: "30s",
  },
  logLevel: { flag: "log-level", env: "LOG_LEVEL", help: "error|warn|info|debug", default: "info" },
  inventoryInterval: {
    flag: "inventory-interval",
    env: "INVENTORY_INTERVAL",
    help: "how often each Proxmox endpoint's containers are listed (one call for every LdapPair on it)",
    default: "10s",
  },
  inventoryBusyInterval: {
    flag: "inventory-busy-interval",
    env: "INVENTORY_BUSY_INTERVAL",
    help: "the listing interval while an LdapPair on the endpoint has a task in flight or waits on a gate",
    default: "2s",
  },
  inventoryTimeout: {
    flag: "inventory-timeout",
    env: "INVENTORY_TIMEOUT",
    help: "a listing that takes longer is abandoned and counts as failed",
    default: "30s",
  },
  proxmoxTimeout: {
    flag: "proxmox-timeout",
    env: "PROXMOX_TIMEOUT",
    help: "bound on each request to a Proxmox API",
    default: "20s",
  },
  probeConnectTimeout: {
    flag: "probe-connect-timeout",
    env: "PROBE_CONNECT_TIMEOUT",
    help: "health probe: TCP and TLS connection to a gateway",
    default: "3s",
  },
  probeSearchTimeout: {
    flag: "probe-search-timeout",
    env: "PROBE_SEARCH_TIMEOUT",
    help: "health probe: the root DSE and the search for a known user",
    default: "5s",
  },
  probeListingTimeout: {
    flag: "probe-listing-timeout",
    env: "PROBE_LISTING_TIMEOUT",
    help: "health probe: the full user listing compared with the database's count",
    default: "15s",
  },
  timeScale: {
    flag: "time-scale",
    env: "TIME_SCALE",
    help: "multiplies the operator's own delays (task polls, backoff, resyncs); for tests, between 0 and 1",
    default: "1",
  },
  kubeconfig: {
    flag: "kubeconfig",
    env: "KUBECONFIG",
    help: "kubeconfig file; default: in-cluster, then ~/.kube/config",
  },
} satisfies Record<string, Setting>;

type Name = keyof typeof settings;

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export function helpText(): string {
  const lines = Object.values(settings).map((s: Setting) => {
    const def = s.default !== undefined && s.default !== "" ? ` (default ${s.default})` : "";
    return `  --${s.flag.padEnd(27)} ${s.help}${def}\n  ${"".padEnd(29)} env ${s.env}`;
  });
  return [
    "Usage: ldappair-operator [flags]",
    "",
    "Runs the LdapPair controller. Every flag can also be set through the environment; a flag wins.",
    "",
    ...lines,
    `  --${"help".padEnd(27)} show this help`,
    "",
  ].join("\n");
}

/**
 * "1500ms", "15s", "10m", "1h", or a bare number of seconds. Every duration
 * here arms a timer: at least 1 ms (0 would spin), at most `maxTimerMs`
 * (about 24.8 days; no setting here is useful beyond that).
 */
export function parseDuration(text: string, name = "duration"): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new ConfigError(`--${name}: invalid duration ${JSON.stringify(text)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "s") as "ms" | "s" | "m" | "h"];
  const ms = Math.round(Number(match[1]) * unit);
  if (ms < 1 || ms > maxTimerMs)
    throw new ConfigError(`--${name}: ${JSON.stringify(text)} must be between 1ms and ${maxTimerMs}ms`);
  return ms;
}

/** A factor in (0, 1]: a test may make the operator faster, nothing may make it slower. */
function parseScale(text: string, name: string): number {
  const scale = Number(text.trim());
  if (!(Number.isFinite(scale) && scale > 0 && scale <= 1))
    throw new ConfigError(`--${name}: expected a number above 0 and at most 1, got ${JSON.stringify(text)}`);
  return scale;
}

function parseBool(text: string, name: string): boolean {
  if (/^(true|1|yes)$/i.test(text)) return true;
  if (/^(false|0|no)$/i.test(text)) return false;
  throw new ConfigError(`--${name}: expected true or false, got ${JSON.stringify(text)}`);
}

function defaultNamespace(env: NodeJS.ProcessEnv): string {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    return readFileSync(inClusterNamespaceFile, "utf8").trim() || "default";
  } catch {
    return "default";
  }
}

/** Each namespace once: a repeated entry would start a second informer on the same objects. */
function namespaceList(text: string): string[] {
  return [...new Set(text.split(",").map((n) => n.trim()))].filter(Boolean);
}

export type ParseResult = { help: true } | { help: false; config: OperatorConfig };

export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  const options = Object.fromEntries(
    Object.values(settings).map((s: Setting) => [s.flag, { type: "string" as const }]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
    });
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  if (parsed.values.help) return { help: true };
  const values = parsed.values as Record<string, string | undefined>;
  const get = (name: Name): string | undefined => {
    const s: Setting = settings[name];
    return values[s.flag] ?? env[s.env] ?? s.default;
  };
  /** For settings with a default, which `get` always applies. */
  const required = (name: Name): string => get(name) ?? "";
  const workers = Number(get("workers"));
  if (!Number.isInteger(workers) || workers < 1)
    throw new ConfigError("--workers must be a positive integer");
  const logLevel = get("logLevel") as LogLevel;
  if (!["error", "warn", "info", "debug"].includes(logLevel))
    throw new ConfigError(`--log-level: unknown level ${logLevel}`);
  const duration = (name: Name): number => parseDuration(required(name), settings[name].flag);
  const config: OperatorConfig = {
    namespaces: namespaceList(required("namespaces")),
    labelSelector: get("labelSelector") || undefined,
    workers,
    metricsAddress: required("metricsAddress"),
    probeAddress: required("probeAddress"),
    leaderElect: parseBool(required("leaderElect"), settings.leaderElect.flag),
    leaseName: required("leaseName"),
    leaseNamespace: get("leaseNamespace") || defaultNamespace(env),
    identity: get("identity") || `${hostname()}_${randomBytes(4).toString("hex")}`,
    leaseDurationMs: duration("leaseDuration"),
    renewDeadlineMs: duration("renewDeadline"),
    retryPeriodMs: duration("retryPeriod"),
    resyncPeriodMs: duration("resyncPeriod"),
    shutdownGraceMs: duration("shutdownGrace"),
    logLevel,
    kubeconfig: get("kubeconfig") || undefined,
    inventoryIntervalMs: duration("inventoryInterval"),
    inventoryBusyIntervalMs: duration("inventoryBusyInterval"),
    inventoryTimeoutMs: duration("inventoryTimeout"),
    proxmoxTimeoutMs: duration("proxmoxTimeout"),
    probeTimeouts: {
      connect: duration("probeConnectTimeout"),
      rootDse: duration("probeSearchTimeout"),
      knownUser: duration("probeSearchTimeout"),
      userCount: duration("probeListingTimeout"),
    },
    timeScale: parseScale(required("timeScale"), settings.timeScale.flag),
  };
  if (config.leaderElect) {
    const problem = validateTiming({
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
    });
    if (problem) throw new ConfigError(`leader election: ${problem}`);
  }
  return { help: false, config };
}
