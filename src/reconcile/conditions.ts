// The LdapPair's conditions, from what one plan found, with the invariants
// Flux's kstatus relies on built in rather than hoped for:
//   - Ready exists from the first reconcile (no conditions reads as Current);
//   - Ready is False while Stalled is True;
//   - Reconciling and Stalled are never True at once;
//   - Ready is False while observedGeneration < generation (the shell writes
//     these with the generation the plan was made for).
// Ready/Reconciling/Stalled follow kstatus; DatabaseReachable, RealmSynced
// and Conflict say which part is wrong.
import type { Condition, ConditionUpdate } from "../runtime/conditions.js";

export const READY = "Ready";
export const RECONCILING = "Reconciling";
export const STALLED = "Stalled";
export const DATABASE_REACHABLE = "DatabaseReachable";
export const REALM_SYNCED = "RealmSynced";
export const CONFLICT = "Conflict";

export interface Why {
  reason: string;
  message: string;
}

/** What one plan found, in the terms the conditions need. */
export interface Assessment {
  /** Everything as the spec says and verified; Ready unless stalled. */
  ready: Why | undefined;
  /** Why the pair is not ready while it works on it (or waits). */
  progressing?: Why;
  /** A problem that will not go away without a person: a bad spec or Secret, a conflict, repeated failures. */
  stalled?: Why;
  /** Undefined: the preflight did not run this time (the condition is left as it was). */
  database?: { ok: boolean } & Why;
  /** Undefined: left as it was. */
  realm?: { status: "True" | "False" | "Unknown" } & Why;
  /** Undefined: no conflict. */
  conflict?: Why;
}

export function pairConditions(a: Assessment): ConditionUpdate[] {
  const { ready, stalled } = a;
  const isReady = ready !== undefined && stalled === undefined;
  const notReady: Why = stalled ??
    a.progressing ?? { reason: "Progressing", message: "working towards the spec" };
  const updates: ConditionUpdate[] = [
    isReady ? { type: READY, status: "True", ...ready } : { type: READY, status: "False", ...notReady },
    !isReady && !stalled
      ? { type: RECONCILING, status: "True", ...notReady }
      : {
          type: RECONCILING,
          status: "False",
          reason: stalled ? "Stalled" : "Reconciled",
          message: stalled ? stalled.message : ready!.message,
        },
    stalled
      ? { type: STALLED, status: "True", ...stalled }
      : { type: STALLED, status: "False", reason: "NotStalled", message: "nothing needs a person" },
    a.conflict
      ? { type: CONFLICT, status: "True", ...a.conflict }
      : {
          type: CONFLICT,
          status: "False",
          reason: "NoConflict",
          message: "no foreign container or realm is in the way",
        },
  ];
  if (a.database)
    updates.push({
      type: DATABASE_REACHABLE,
      status: a.database.ok ? "True" : "False",
      reason: a.database.reason,
      message: a.database.message,
    });
  if (a.realm)
    updates.push({
      type: REALM_SYNCED,
      status: a.realm.status,
      reason: a.realm.reason,
      message: a.realm.message,
    });
  return updates;
}

export type KStatus = "Current" | "InProgress" | "Failed" | "Terminating";

/** What kstatus (Flux, kubectl wait's users) concludes from the conditions, in its order. */
export function kstatus(
  conditions: readonly Pick<Condition, "type" | "status">[],
  o: { generation: number; observedGeneration?: number; deleting: boolean },
): KStatus {
  const is = (type: string) => conditions.find((c) => c.type === type)?.status === "True";
  if (o.deleting) return "Terminating";
  if (o.observedGeneration !== undefined && o.observedGeneration !== o.generation) return "InProgress";
  if (conditions.length === 0) return "Current";
  if (is(RECONCILING)) return "InProgress";
  if (is(STALLED)) return "Failed";
  return is(READY) ? "Current" : "InProgress";
}

/** Which of Flux's invariants the conditions break; empty when none. */
export function kstatusViolations(
  conditions: readonly Pick<Condition, "type" | "status" | "observedGeneration">[],
  generation: number,
): string[] {
  const find = (type: string) => conditions.find((c) => c.type === type);
  const is = (type: string) => find(type)?.status === "True";
  const out: string[] = [];
  const ready = find(READY);
  if (!ready) out.push("Ready is missing");
  if (is(READY) && is(STALLED)) out.push("Ready is True while Stalled is True");
  if (is(RECONCILING) && is(STALLED)) out.push("Reconciling and Stalled are both True");
  if (is(READY) && (ready?.observedGeneration ?? generation) < generation)
    out.push("Ready is True for an older generation");
  return out;
}
