// What the LDAPS health probe checks, in order, and how the outcomes become a
// verdict: the health gate of shared/reference/ldap-gateway.md ("What a health
// gate can trust"). Pure: the adapter (ldaps-probe.ts) observes, this decides.
//
// Never a bind: with notifications on, a successful bind pushes a prompt to a
// person's phone, and a bind outside the base DN always succeeds.

export type ProbeStepName = "connect" | "rootDse" | "knownUser" | "userCount";

/** What the server must show to pass. */
export interface ProbeExpectation {
  /** The configured LDAP_BASE_DN; the root DSE's namingContexts must equal it. */
  baseDn: string;
  /** A user the database is known to hold (from the preflight); `(uid=<it>)` must return exactly that entry. */
  knownUser: string;
  /** When set, a full `(objectClass=posixAccount)` listing must return this many entries. */
  userCount?: number;
}

export type ProbeTimeouts = Record<ProbeStepName, number>;

/**
 * Loopback and a LAN answer the first two steps in milliseconds; the searches
 * go through the database, and a full listing of 1,000 users took up to
 * 540 ms on a loaded 2-core machine. A hung database hangs searches for good,
 * so every step needs its own bound.
 */
export const DEFAULT_PROBE_TIMEOUTS: ProbeTimeouts = {
  connect: 3_000,
  rootDse: 3_000,
  knownUser: 5_000,
  userCount: 15_000,
};

export interface PlannedStep {
  step: ProbeStepName;
  timeoutMs: number;
}

/** The steps in the order they run; each needs the ones before it to have passed. */
export function probePlan(
  expectation: ProbeExpectation,
  timeouts: Partial<ProbeTimeouts> = {},
): PlannedStep[] {
  const limits = { ...DEFAULT_PROBE_TIMEOUTS, ...timeouts };
  const steps: ProbeStepName[] = ["connect", "rootDse", "knownUser"];
  if (expectation.userCount !== undefined) steps.push("userCount");
  return steps.map((step) => ({ step, timeoutMs: limits[step] }));
}

/** An entry as the knownUser step saw it. */
export interface FoundEntry {
  dn: string;
  uid: string[];
}

/** What each step observes when the server answered. */
export interface StepObservations {
  connect: { protocol: string };
  rootDse: { namingContexts: string[] };
  knownUser: { entries: FoundEntry[] };
  userCount: { count: number };
}

/** The server did not answer in time, or the exchange failed (refused, TLS, an LDAP error). */
export interface StepFault {
  kind: "timeout" | "error" | "cancelled";
  message: string;
}

export type StepOutcome = {
  [S in ProbeStepName]: { step: S; durationMs: number } & (
    { observed: StepObservations[S]; fault?: never } | { fault: StepFault; observed?: never }
  );
}[ProbeStepName];

export type StepStatus = "passed" | "failed" | "notRun";

export interface StepReport {
  step: ProbeStepName;
  status: StepStatus;
  timeoutMs: number;
  durationMs?: number;
  /** Why the step failed; absent when it passed or did not run. */
  reason?: string;
}

export interface ProbeVerdict {
  healthy: boolean;
  /** The first step that failed. */
  failedStep?: ProbeStepName;
  /** `<step>: <why>`, fit for a condition message. */
  reason?: string;
  steps: StepReport[];
}

/** Why one step failed, or undefined when it passed. */
export function stepFailure(outcome: StepOutcome, expectation: ProbeExpectation): string | undefined {
  if (outcome.fault) return outcome.fault.message;
  switch (outcome.step) {
    case "connect":
      return undefined;
    case "rootDse":
      return namingContextFailure(outcome.observed.namingContexts, expectation.baseDn);
    case "knownUser":
      return knownUserFailure(outcome.observed.entries, expectation);
    case "userCount":
      return userCountFailure(outcome.observed.count, expectation.userCount);
  }
}

function namingContextFailure(contexts: string[], baseDn: string): string | undefined {
  if (contexts.length === 0) return "the root DSE has no namingContexts";
  if (contexts.length === 1 && sameDn(contexts[0]!, baseDn)) return undefined;
  return `namingContexts is ${contexts.map((c) => `'${c}'`).join(", ")}, expected '${baseDn}'`;
}

/** The search of the knownUser step, escaped (RFC 4515) so a user name cannot change the filter. */
export function knownUserFilter(uid: string): string {
  return `(uid=${uid.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`)})`;
}

function knownUserFailure(
  entries: FoundEntry[],
  { knownUser, baseDn }: ProbeExpectation,
): string | undefined {
  const filter = knownUserFilter(knownUser);
  // What the gateway answers while its database is unreachable: success, no entries.
  if (entries.length === 0)
    return `${filter} returned no entry (as the gateway answers when its database is down)`;
  if (entries.length > 1) return `${filter} returned ${entries.length} entries, expected exactly one`;
  const [entry] = entries as [FoundEntry];
  const expectedDn = `uid=${knownUser},${baseDn}`;
  if (!sameDn(entry.dn, expectedDn)) return `${filter} returned '${entry.dn}', expected '${expectedDn}'`;
  if (entry.uid.length !== 1 || entry.uid[0] !== knownUser)
    return `${filter} returned an entry whose uid is ${JSON.stringify(entry.uid)}`;
  return undefined;
}

function userCountFailure(count: number, expected: number | undefined): string | undefined {
  if (expected === undefined || count === expected) return undefined;
  return `the full listing returned ${count} posixAccount entries, the database holds ${expected} users`;
}

/**
 * DNs compare case-insensitively (dc and uid values are case-insensitive
 * strings) and without the optional spaces around separators.
 */
export function sameDn(a: string, b: string): boolean {
  const norm = (dn: string) =>
    dn
      .trim()
      .replace(/\s*([,=+])\s*/g, "$1")
      .toLowerCase();
  return norm(a) === norm(b);
}

/**
 * The verdict over the outcomes the adapter collected, in plan order. The
 * first failing step names the verdict; the steps after it did not run. A
 * planned step with no outcome and no failure before it counts as failed:
 * a probe that did not finish is not a pass.
 */
export function judgeProbe(
  plan: PlannedStep[],
  outcomes: StepOutcome[],
  expectation: ProbeExpectation,
): ProbeVerdict {
  let failed: { step: ProbeStepName; reason: string } | undefined;
  const steps = plan.map(({ step, timeoutMs }): StepReport => {
    if (failed) return { step, status: "notRun", timeoutMs };
    const outcome = outcomes.find((o) => o.step === step);
    if (!outcome) {
      failed = { step, reason: "the probe ended before this step ran" };
      return { step, status: "failed", timeoutMs, reason: failed.reason };
    }
    const reason = stepFailure(outcome, expectation);
    if (reason === undefined) return { step, status: "passed", timeoutMs, durationMs: outcome.durationMs };
    failed = { step, reason };
    return { step, status: "failed", timeoutMs, durationMs: outcome.durationMs, reason };
  });
  if (!failed) return { healthy: true, steps };
  return { healthy: false, failedStep: failed.step, reason: `${failed.step}: ${failed.reason}`, steps };
}
