// `npm run demo` as a person runs it, on the suite's control plane: it says
// what it is waiting for and why the pair is not Ready, prints the
// look-around commands, runs until SIGINT, and leaves no process behind
// either way.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { REPO_ROOT } from "./harness.js";
import { descendantsOf, listProcesses, type ProcessInfo } from "./processes.js";

const kubeconfig = inject("kubeconfig");

interface DemoRun {
  output: () => string;
  /** Every process seen below the demo while it ran. */
  seen: Map<number, ProcessInfo>;
  exited: Promise<number | null>;
  signal(name: NodeJS.Signals): void;
}

function runDemo(namespace: string, ...args: string[]): DemoRun {
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(REPO_ROOT, "scripts/demo.ts"),
      `--kubeconfig=${kubeconfig}`,
      `--namespace=${namespace}`,
      "--time-scale=0.05",
      ...args,
    ],
    { cwd: REPO_ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr.on("data", (b: Buffer) => (output += b.toString()));
  const seen = new Map<number, ProcessInfo>();
  const watch = setInterval(() => {
    void listProcesses().then((all) => {
      for (const p of descendantsOf(all, child.pid!)) if (!/^ps\b/.test(p.args)) seen.set(p.pid, p);
    });
  }, 200);
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      clearInterval(watch);
      resolve(code);
    }),
  );
  return { output: () => output, seen, exited, signal: (name) => child.kill(name) };
}

/** The processes seen during the run that still live (same pid and command line: not a reused pid). */
async function survivors(run: DemoRun): Promise<ProcessInfo[]> {
  const alive = new Map((await listProcesses()).map((p) => [p.pid, p.args]));
  return [...run.seen.values()].filter((p) => alive.get(p.pid) === p.args);
}

async function until(what: string, check: () => boolean, timeoutMs: number, run: DemoRun): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} not seen within ${timeoutMs} ms:\n${run.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("npm run demo", () => {
  it("with --exit-when-ready, exits 1 when the pair is not Ready in time, says why, and cleans up", async () => {
    const run = runDemo("demo-exit", "--exit-when-ready", "--ready-timeout=1ms");
    const code = await run.exited;
    const out = run.output();
    expect(code, out).toBe(1);
    // Which reason depends on how far the operator got in a millisecond; that it says one does not.
    expect(out).toMatch(/ldappair\/site-a is not Ready after [\d.]+ s \(.+\)\./);
    expect(out).toContain(`export KUBECONFIG=${kubeconfig}`);
    expect(out).toContain("kubectl -n demo-exit describe ldappair site-a");
    expect(out).toContain("the demo exits now, as --exit-when-ready asks");
    expect(out).toContain("Cleaned up: no process of the demo is left.");
    // It did run the world: the operator and PostgreSQL were seen below it, and are gone.
    const seen = [...run.seen.values()].map((p) => p.args);
    expect(seen.some((a) => a.includes("src/main.ts"))).toBe(true);
    expect(seen.some((a) => /postgres -D/.test(a))).toBe(true);
    expect(await survivors(run)).toEqual([]);
  }, 120_000);

  it("runs until SIGINT, then stops everything it started", async () => {
    const run = runDemo("demo-sigint", "--ready-timeout=1s");
    await until("Running until Ctrl-C", () => run.output().includes("Running until Ctrl-C."), 90_000, run);
    expect(run.output()).toContain(
      "Look around (in another shell; Ctrl-C here stops everything and cleans up)",
    );
    expect(run.output()).toContain("The demo keeps running");
    run.signal("SIGINT");
    const code = await run.exited;
    expect(code, run.output()).toBe(0);
    expect(run.output()).toMatch(/SIGINT: stopping[\s\S]*stopped the operator[\s\S]*Cleaned up/);
    expect([...run.seen.values()].some((p) => p.args.includes("src/main.ts"))).toBe(true);
    expect(await survivors(run)).toEqual([]);
  }, 120_000);
});
