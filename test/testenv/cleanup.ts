// Process-exit safety net for the test environment.
//
// Every helper that spawns a long-lived process registers a synchronous
// cleanup here. The cleanups run on a normal exit, on an uncaught failure and
// on SIGINT/SIGTERM/SIGHUP, so an interrupted test run leaves no server
// behind. Cleanups must be synchronous: an 'exit' listener cannot await.

import { readFileSync } from "node:fs";

type Cleanup = () => void;

const cleanups = new Set<Cleanup>();
let installed = false;

function runAll(): void {
  for (const fn of [...cleanups]) {
    cleanups.delete(fn);
    try {
      fn();
    } catch {
      // Best effort: one failing cleanup must not stop the others.
    }
  }
}

function onSignal(signal: NodeJS.Signals): void {
  runAll();
  // Re-raise with default behaviour so the exit status still tells the
  // parent which signal ended us, unless someone else also listens.
  process.removeListener(signal, onSignal);
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on("exit", runAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(sig, onSignal);
}

/** Registers a synchronous cleanup; returns a function that unregisters it. */
export function registerCleanup(fn: Cleanup): () => void {
  install();
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

/** Sends a signal to a pid, ignoring "no such process". */
export function killQuietly(pid: number | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/**
 * True while the pid runs. A zombie counts as gone: it holds no resources,
 * and where PID 1 does not reap orphans it would otherwise look alive forever.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return true; // no /proc: trust kill(0)
  }
}

/** Blocks the thread for ms milliseconds; only for exit paths that cannot await. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
