/** metav1.Condition handling, pure: the time of a change is an input. */

export type ConditionStatus = "True" | "False" | "Unknown";

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

const reasonPattern = /^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/;

export function isValidReason(reason: string): boolean {
  return reason.length <= 1024 && reasonPattern.test(reason);
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
