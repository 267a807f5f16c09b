/**
 * client-go's leader election rules as pure functions: what a candidate does
 * given the lease it read, when it last saw that lease change, and now.
 */

export interface LeaseRecord {
  holderIdentity: string;
  leaseDurationSeconds: number;
  acquireTime: number;
  renewTime: number;
  leaseTransitions: number;
}

export interface Observation {
  record: LeaseRecord;
  /** Local time at which this record was first seen; remote times are never trusted (clock skew). */
  observedAt: number;
}

export interface ElectionTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export const defaultTiming: ElectionTiming = {
  leaseDurationMs: 15_000,
  renewDeadlineMs: 10_000,
  retryPeriodMs: 2_000,
};

/** client-go's jitter factor on the retry period. */
export const jitterFactor = 1.2;

export function validateTiming(t: ElectionTiming): string | undefined {
  if (t.leaseDurationMs <= t.renewDeadlineMs) return "lease duration must be greater than renew deadline";
  if (t.renewDeadlineMs <= jitterFactor * t.retryPeriodMs)
    return "renew deadline must exceed 1.2 x retry period";
  if (t.retryPeriodMs <= 0) return "retry period must be positive";
  return undefined;
}

export type Decision =
  | { action: "create" }
  | { action: "renew" }
  | { action: "acquire" }
  | { action: "wait"; holder: string; expiresInMs: number };

/** Keeps the old observation time while the record is unchanged: only a change proves the holder alive. */
export function observe(previous: Observation | undefined, record: LeaseRecord, now: number): Observation {
  if (previous && sameRecord(previous.record, record)) return previous;
  return { record, observedAt: now };
}

function sameRecord(a: LeaseRecord, b: LeaseRecord): boolean {
  return (
    a.holderIdentity === b.holderIdentity &&
    a.renewTime === b.renewTime &&
    a.acquireTime === b.acquireTime &&
    a.leaseTransitions === b.leaseTransitions &&
    a.leaseDurationSeconds === b.leaseDurationSeconds
  );
}

export function decide(identity: string, observation: Observation | undefined, now: number): Decision {
  if (!observation) return { action: "create" };
  const { record, observedAt } = observation;
  if (record.holderIdentity === identity) return { action: "renew" };
  if (record.holderIdentity === "") return { action: "acquire" };
  const expiresAt = observedAt + record.leaseDurationSeconds * 1000;
  if (expiresAt <= now) return { action: "acquire" };
  return { action: "wait", holder: record.holderIdentity, expiresInMs: expiresAt - now };
}

/** The record to write for a successful create, acquire or renew. */
export function nextRecord(
  identity: string,
  current: LeaseRecord | undefined,
  timing: ElectionTiming,
  now: number,
): LeaseRecord {
  const leaseDurationSeconds = Math.ceil(timing.leaseDurationMs / 1000);
  if (current && current.holderIdentity === identity)
    return { ...current, leaseDurationSeconds, renewTime: now };
  return {
    holderIdentity: identity,
    leaseDurationSeconds,
    acquireTime: now,
    renewTime: now,
    leaseTransitions: current ? current.leaseTransitions + 1 : 0,
  };
}

/** What a leader leaves behind on shutdown so a candidate takes over without waiting out the lease. */
export function releasedRecord(current: LeaseRecord, now: number): LeaseRecord {
  return { ...current, holderIdentity: "", leaseDurationSeconds: 1, acquireTime: now, renewTime: now };
}

/** A leader that has not renewed within the deadline must stop working: another may hold the lease already. */
export function renewalExpired(lastRenewedAt: number, now: number, timing: ElectionTiming): boolean {
  return now - lastRenewedAt >= timing.renewDeadlineMs;
}
