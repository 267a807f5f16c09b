// What a reconcile writes once act() has answered: the plan's status, with
// the task that was started or the failure that was met folded in by the
// planner's own rules (planTaskStarted, planActionFailed), and the events.
// Pure: the time and the outcome are inputs.
import type { ConditionUpdate } from "../runtime/conditions.js";
import type { ActOutcome } from "./act.js";
import { describeAction, type EventRecord, type PlanInput, type Plan, type PlanTimings } from "./model.js";
import { planActionFailed, planTaskStarted } from "./plan.js";

export interface Report {
  /** Status fields to merge; undefined removes one. Absent: write nothing (the plan rests on a stale view). */
  fields?: Record<string, unknown>;
  conditions: ConditionUpdate[];
  events: EventRecord[];
  requeueAfterMs: number;
  /** For the log line. */
  summary: string;
}

export function report(
  input: PlanInput,
  plan: Plan,
  outcome: ActOutcome | undefined,
  timings: Pick<PlanTimings, "taskPollMs">,
): Report {
  const written = (p: Plan, summary: string): Report => ({
    fields: { ...p.status },
    conditions: [...p.conditions],
    events: [...p.events],
    requeueAfterMs: p.requeueAfterMs,
    summary,
  });
  const action = plan.action;
  if (!action || !outcome) return written(plan, plan.explanation);
  const what = describeAction(action);
  switch (outcome.result) {
    case "done":
      return written(plan, `${what}: done`);
    case "started": {
      const status = planTaskStarted(input, plan, outcome.upid);
      // The vmid a create took is known only now.
      const task =
        status.task && outcome.vmid !== undefined ? { ...status.task, vmid: outcome.vmid } : status.task;
      return {
        ...written({ ...plan, status: { ...status, task } }, `${what}: task ${outcome.upid}`),
        requeueAfterMs: Math.min(plan.requeueAfterMs || timings.taskPollMs, timings.taskPollMs),
      };
    }
    case "skipped":
      // The plan was made on a view that no longer holds: none of it is written, the pair is looked at again soon.
      return {
        conditions: [],
        events: [
          {
            type: "Normal",
            reason: "ActionSkipped",
            action: action.kind,
            note: `did not ${what}: ${outcome.reason}`,
          },
        ],
        requeueAfterMs: timings.taskPollMs,
        summary: `skipped: ${what}: ${outcome.reason}`,
      };
    case "unknown":
      return {
        ...written(plan, `${what}: outcome unknown: ${outcome.message}`),
        events: [
          ...plan.events,
          {
            type: "Warning",
            reason: "OutcomeUnknown",
            action: action.kind,
            note: `${what}: no answer from Proxmox; the next look shows whether it happened`,
          },
        ],
        requeueAfterMs: timings.taskPollMs,
      };
    case "failed": {
      const failed = planActionFailed(input, plan, outcome.problem);
      return written(failed, failed.explanation);
    }
  }
}
