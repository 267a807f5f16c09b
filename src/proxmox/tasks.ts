/**
 * What a task's status means. `WARNINGS: N` is a success with warnings; `unexpected status` (a worker that
 * vanished, e.g. in a daemon restart) and any other text are failures, the text being the reason.
 */
import type { TaskStatus } from "./types.js";

export type TaskOutcome =
  { state: "running" } | { state: "ok"; warnings: number } | { state: "failed"; message: string };

export function taskOutcome(status: Pick<TaskStatus, "status" | "exitstatus">): TaskOutcome {
  if (status.status !== "stopped") return { state: "running" };
  const exit = (status.exitstatus ?? "").trim();
  if (exit === "OK") return { state: "ok", warnings: 0 };
  const warn = /^WARNINGS: (\d+)$/.exec(exit);
  if (warn) return { state: "ok", warnings: Number(warn[1]) };
  return { state: "failed", message: exit === "" ? "unexpected status" : exit };
}

/** `waitForTask` gave up; the task itself goes on in Proxmox. */
export class TaskWaitTimeout extends Error {
  override name = "TaskWaitTimeout";
  constructor(
    readonly upid: string,
    readonly waitedMs: number,
  ) {
    super(`task ${upid} still running after ${waitedMs} ms`);
  }
}
