// `npm run demo` as a person runs it, on the suite's control plane: it
// waits for the pair to be Ready and says how long that took, prints the
// look-around commands (each of which works as printed, run here through a
// shell), says why when the pair is not Ready in time, runs until SIGINT, and
// leaves no process behind either way.
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

/** The commands of the look-around block: its lines indented by two spaces, as a person would paste them. */
function printedCommands(out: string): string[] {
  const from = out.indexOf("Look around (in another shell");
  const to = out.indexOf("Running until Ctrl-C.", from);
  return out
    .slice(from, to)
    .split("\n")
    .filter((l) => /^ {2}\S/.test(l))
    .map((l) => l.slice(2));
}

/** Runs one printed command after the printed lines that set the shell up (export, AUTH=). */
function runPrinted(setup: string[], command: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-c", ["set -o pipefail", ...setup, command].join("\n")], {
      cwd: REPO_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, KUBECONFIG: "" },
    });
    let out = "";
    child.stdout.on("data", (b: Buffer) => (out += b.toString()));
    child.stderr.on("data", (b: Buffer) => (out += b.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe("npm run demo", () => {
  it("with --exit-when-ready, exits 0 once the pair is Ready, says how long it took, and cleans up", async () => {
    const run = runDemo("demo-ready", "--exit-when-ready");
    const code = await run.exited;
    const out = run.output();
    expect(code, out).toBe(0);
    expect(out).toMatch(/ldappair\/site-a is Ready, [\d.]+ s after kubectl apply/);
    expect(out).toMatch(
      /Ready [\d.]+ s after kubectl apply; [\d.]+ s after the demo started \(a control plane given by --kubeconfig\)\./,
    );
    // Ready means both servers: the look-around names ldap1's container.
    expect(out).toMatch(/The directory: ldap1 is CT \d+ on pve1 at 127\.\d+\.\d+\.\d+:/);
    expect(out).not.toMatch(/is not Ready after/);
    expect(out).toContain("the demo exits now, as --exit-when-ready asks");
    expect(out).toContain("Cleaned up: no process of the demo is left.");
    const ready = /Ready ([\d.]+) s after kubectl apply;/.exec(out);
    console.log(`demo at time scale 0.05: Ready ${ready?.[1]} s after kubectl apply`);
    expect(await survivors(run)).toEqual([]);
  }, 180_000);

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

  it("runs until SIGINT, every command it printed works as printed, then it stops everything it started", async () => {
    const run = runDemo("demo-sigint");
    await until("Running until Ctrl-C", () => run.output().includes("Running until Ctrl-C."), 150_000, run);
    const out = run.output();
    expect(out).toContain("Look around (in another shell; Ctrl-C here stops everything and cleans up)");
    const commands = printedCommands(out);
    const setup = commands.filter((c) => /^(export |AUTH=)/.test(c));
    const rest = commands.filter((c) => !setup.includes(c));
    expect(setup).toHaveLength(2);
    // What each command shows when it works.
    const shows: [RegExp, RegExp][] = [
      [/get ldappairs -o wide/, /site-a\s+Ready\s.*2\/2/],
      [/describe ldappair site-a/, /Reason:\s+Ready/],
      [/get events/, /RealmSynced/],
      [/wait --for=condition=Ready/, /condition met/],
      [/readyz/, /ok/],
      [/metrics/, /controller_runtime_reconcile_total/],
      [/ldapsearch/, /uid: alice[\s\S]*uid: bob/],
      [/demo:lookup/, /^alice:\*:\d+:\d+:.*\(from ldap1\)$[\s\S]*^bob:/m],
      [/cluster\/resources/, /"name":"ldap1"[\s\S]*"name":"ldap2"|"name":"ldap2"[\s\S]*"name":"ldap1"/],
      [/access\/domains/, /"realm":"ldap"/],
      [/psql/, /alice/],
    ];
    expect(rest).toHaveLength(shows.length);
    for (const command of rest) {
      const [, expected] = shows.find(([which]) => which.test(command)) ?? [undefined, /^$/];
      const { code, out: said } = await runPrinted(setup, command);
      expect({ command, code }).toEqual({ command, code: 0 });
      expect(said, command).toMatch(expected);
    }
    run.signal("SIGINT");
    const code = await run.exited;
    expect(code, run.output()).toBe(0);
    expect(run.output()).toMatch(/SIGINT: stopping[\s\S]*stopped the operator[\s\S]*Cleaned up/);
    expect([...run.seen.values()].some((p) => p.args.includes("src/main.ts"))).toBe(true);
    expect(await survivors(run)).toEqual([]);
  }, 240_000);
});
