// The one task recorded in status, read from the node named in its UPID (the
// node that ran it, whichever one received the request). A realm sync's log
// comes with it: the planner reads from it what the sync imported.
import type { TaskStatus as RecordedTask } from "../api/ldappair.js";
import type { ProxmoxClient } from "../proxmox/client.js";
import { isProxmoxError } from "../proxmox/errors.js";
import { taskOutcome } from "../proxmox/tasks.js";
import { parseUpid } from "../proxmox/upid.js";
import type { ObservedTask } from "./model.js";
import { proxmoxProblem } from "./problems.js";

/** Tasks whose log the planner reads. */
const LOGGED_ACTIONS = new Set<RecordedTask["action"]>(["SyncRealm"]);

export async function observeTask(
  client: ProxmoxClient,
  task: Pick<RecordedTask, "upid" | "action">,
  signal?: AbortSignal,
): Promise<ObservedTask> {
  const { upid } = task;
  const parsed = parseUpid(upid);
  // A status edited by hand: nothing will ever end such a task, so it counts as failed.
  if (!parsed) return { upid, state: "failed", exitStatus: "status.task.upid is not a Proxmox task id" };
  let outcome;
  try {
    outcome = taskOutcome(await client.taskStatus(upid, { signal }));
  } catch (err) {
    if (isUnknownTask(err))
      return {
        upid,
        state: "failed",
        exitStatus: `node ${parsed.node} does not know the task (lost in a restart of Proxmox?)`,
      };
    return { upid, state: "unknown", problem: proxmoxProblem(err, `reading task ${upid}`) };
  }
  if (outcome.state === "running") return { upid, state: "running" };
  const log = LOGGED_ACTIONS.has(task.action) ? await readLog(client, upid, signal) : undefined;
  const withLog = log ? { log } : {};
  return outcome.state === "ok"
    ? { upid, state: "ok", exitStatus: outcome.warnings ? `WARNINGS: ${outcome.warnings}` : "OK", ...withLog }
    : { upid, state: "failed", exitStatus: outcome.message, ...withLog };
}

/** `400 {errors: {upid: "no such task"}}`: the node has no such task, and never will. */
function isUnknownTask(err: unknown): boolean {
  return isProxmoxError(err) && err.status === 400 && /no such task/i.test(err.errors?.["upid"] ?? "");
}

async function readLog(
  client: ProxmoxClient,
  upid: string,
  signal?: AbortSignal,
): Promise<string[] | undefined> {
  try {
    return (await client.taskLogAll(upid, { signal })).map((line) => line.t);
  } catch {
    // The outcome stands without the counts; the next sync reports them again.
    return undefined;
  }
}
