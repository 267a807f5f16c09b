/** metav1.Condition handling, pure: the time of a change is an input. */

export const CONDITION_STATUSES = ["True", "False", "Unknown"] as const;
export type ConditionStatus = (typeof CONDITION_STATUSES)[number];

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

/** What a reconcile says about a condition; the transition time is derived. */
export type ConditionUpdate = Omit<Condition, "lastTransitionTime" | "observedGeneration">;

// metav1.Condition's own limits (apimachinery's validation), written once:
// the LdapPair schema uses them for status.conditions, so a reason this module
// accepts is one the API server accepts.
export const CONDITION_TYPE_PATTERN =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$";
export const CONDITION_TYPE_MAX_LENGTH = 316;
export const CONDITION_REASON_PATTERN = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";
export const CONDITION_REASON_MAX_LENGTH = 1024;
export const CONDITION_MESSAGE_MAX_LENGTH = 32768;

const reasonPattern = new RegExp(CONDITION_REASON_PATTERN);

export function isValidReason(reason: string): boolean {
  return reason.length <= CONDITION_REASON_MAX_LENGTH && reasonPattern.test(reason);
}

/** Formats as metav1.Time: RFC 3339 to the second, which is all the API server keeps. */
export function conditionTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * Sets one condition in a list keyed by type. `lastTransitionTime` moves only
 * when the status flips, so a steady reconcile yields an identical list.
 */
export function setCondition(
  conditions: readonly Condition[],
  update: ConditionUpdate,
  generation: number | undefined,
  now: Date,
): Condition[] {
  if (!isValidReason(update.reason))
    throw new Error(`invalid condition reason ${JSON.stringify(update.reason)}`);
  const existing = conditions.find((c) => c.type === update.type);
  const next: Condition = {
    type: update.type,
    status: update.status,
    reason: update.reason,
    message: update.message,
    lastTransitionTime:
      existing && existing.status === update.status ? existing.lastTransitionTime : conditionTime(now),
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  if (!existing) return [...conditions, next];
  return conditions.map((c) => (c.type === update.type ? next : c));
}

export function setConditions(
  conditions: readonly Condition[],
  updates: readonly ConditionUpdate[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  return updates.reduce<Condition[]>((acc, u) => setCondition(acc, u, generation, now), [...conditions]);
}

export function removeCondition(conditions: readonly Condition[], type: string): Condition[] {
  return conditions.filter((c) => c.type !== type);
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

export function isConditionTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}
