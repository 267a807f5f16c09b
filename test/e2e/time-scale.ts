// One factor for every duration of the end-to-end world, so that a rollout
// test takes seconds while every ratio between timings stays what it is at a
// real site: Proxmox's task durations, the gateway's start-up, the LdapPair's
// settle time and SSSD's memory of a failed server (the settle time must
// outlast that memory, at every scale) all shrink together.
//
//   E2E_TIME_SCALE=1     real durations (the demo's default)
//   E2E_TIME_SCALE=0.05  the tests' default: a 45 s settle time becomes 2.25 s
//   E2E_TIME_SCALE=0     tasks end at once; only process start-ups take time

export const TIME_SCALE_VAR = "E2E_TIME_SCALE";
export const DEFAULT_TEST_TIME_SCALE = 0.05;

/** The real durations the factor scales, in milliseconds. */
export const REAL_MS = {
  /** The LdapPair's default rollout.settleTime. */
  settleTime: 45_000,
  /** SSSD skips a failed server this long (shared/reference/sssd-client.md). */
  failedServerMemory: 30_000,
  /** SSSD's offline_timeout and its random addition. */
  offlineTimeout: 60_000,
  offlineRandom: 30_000,
  /** SSSD's ldap_search_timeout and ldap_network_timeout. */
  searchTimeout: 6_000,
  /** The simulator's grace between SIGTERM and SIGKILL when it stops a container. */
  stopGrace: 3_000,
} as const;

/**
 * Floors that keep a scaled world working on a loaded machine: a client
 * timeout shorter than a busy event loop's pause reports servers as failed
 * that are not, and a gateway needs a moment to exit on SIGTERM by itself.
 */
export const FLOOR_MS = { searchTimeout: 2_000, stopGrace: 200 } as const;

export interface ScaledTimes {
  scale: number;
  /** PveSimulator `speed`: multiplies every task duration. */
  simSpeed: number;
  /** The gateway stand-in's `--startup-scale`. */
  gatewayStartupScale: number;
  /** The simulator's stopGraceMs. */
  stopGraceMs: number;
  /** The LdapPair's rollout.settleTime, as a duration the CRD accepts. */
  settleTime: string;
  settleTimeMs: number;
  /** FailoverClient timings. */
  failedServerMemoryMs: number;
  offlineTimeoutMs: number;
  offlineRandomMs: number;
  searchTimeoutMs: number;
  connectTimeoutMs: number;
}

/** The factor from E2E_TIME_SCALE (or `fallback` when unset); refuses what is not a number >= 0. */
export function timeScaleFrom(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === "") return fallback;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale < 0) {
    throw new Error(`${TIME_SCALE_VAR} must be a number >= 0 (1 is real time), got '${raw}'`);
  }
  return scale;
}

export function scaledTimes(scale: number): ScaledTimes {
  const ms = (real: number, floor = 0): number => Math.max(floor, Math.round(real * scale));
  const settleTimeMs = ms(REAL_MS.settleTime);
  const searchTimeoutMs = ms(REAL_MS.searchTimeout, FLOOR_MS.searchTimeout);
  return {
    scale,
    simSpeed: scale,
    gatewayStartupScale: scale,
    stopGraceMs: ms(REAL_MS.stopGrace, FLOOR_MS.stopGrace),
    settleTime: durationText(settleTimeMs),
    settleTimeMs,
    failedServerMemoryMs: ms(REAL_MS.failedServerMemory),
    offlineTimeoutMs: ms(REAL_MS.offlineTimeout),
    offlineRandomMs: ms(REAL_MS.offlineRandom),
    searchTimeoutMs,
    connectTimeoutMs: searchTimeoutMs,
  };
}

/** Whole seconds as "45s", anything else as milliseconds ("2250ms"): both are Kubernetes durations. */
export function durationText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
