// The operator as the cluster runs it: its own process (`node --import tsx
// src/main.ts`, or the built dist/main.js), production flags, its JSON log in
// a file. It dies with the process that started it (the kernel's
// parent-death signal through setpriv, which execs in place, so the pid held
// here is the operator's own and a signal reaches it directly).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { get } from "node:http";
import { join } from "node:path";

const SETPRIV = "/usr/bin/setpriv";

export interface OperatorProcessOptions {
  /** The repository root: src/main.ts and dist/main.js are found there. */
  root: string;
  /** `src`: node --import tsx src/main.ts; `dist`: the built dist/main.js; else the path of a bundle of src/main.ts. */
  entry: "src" | "dist" | { bundle: string };
  args: string[];
  /** Added to this process's environment. */
  env: Record<string, string>;
  /** JSON log lines (stdout) and anything else the process writes (stderr). */
  logFile: string;
  stderrFile: string;
  probePort: number;
  metricsPort: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export class OperatorProcess {
  private child: ChildProcess | undefined;
  private exit: Promise<Exit> | undefined;
  private starts = 0;

  constructor(private readonly o: OperatorProcessOptions) {}

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  get logFile(): string {
    return this.o.logFile;
  }

  get probePort(): number {
    return this.o.probePort;
  }

  get metricsPort(): number {
    return this.o.metricsPort;
  }

  /** How many times it was started (restarts included). */
  get startCount(): number {
    return this.starts;
  }

  start(): void {
    if (this.running) throw new Error(`the operator is already running (pid ${this.child?.pid})`);
    const entry = this.o.entry;
    const script =
      entry === "dist"
        ? join(this.o.root, "dist", "main.js")
        : entry === "src"
          ? join(this.o.root, "src", "main.ts")
          : entry.bundle;
    if (!existsSync(script))
      throw new Error(`${script} is missing${entry === "dist" ? ": run npm run build" : ""}`);
    const node = [process.execPath, ...(entry === "src" ? ["--import", "tsx"] : []), script, ...this.o.args];
    const [cmd, ...argv] = existsSync(SETPRIV) ? [SETPRIV, "--pdeathsig", "SIGKILL", "--", ...node] : node;
    const out = openSync(this.o.logFile, "a");
    const err = openSync(this.o.stderrFile, "a");
    try {
      const child = spawn(cmd!, argv, {
        cwd: this.o.root,
        env: { ...process.env, ...this.o.env },
        stdio: ["ignore", out, err],
      });
      this.child = child;
      this.exit = new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
      this.starts++;
    } finally {
      // The child holds its own copies of the descriptors.
      closeSync(out);
      closeSync(err);
    }
  }

  /** Resolves once /readyz answers 200 (its caches synced); rejects when the process exits first. */
  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`the operator exited before it was ready\n${this.stderrTail()}`);
      if ((await this.readyz()) === 200) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `the operator was not ready within ${timeoutMs} ms\n${this.logTail()}\n${this.stderrTail()}`,
    );
  }

  /** The HTTP status of /readyz, or undefined when nothing answers. */
  readyz(): Promise<number | undefined> {
    return new Promise((resolve) => {
      const req = get(
        { host: "127.0.0.1", port: this.o.probePort, path: "/readyz", timeout: 1000 },
        (res) => {
          res.resume();
          resolve(res.statusCode);
        },
      );
      req.on("error", () => resolve(undefined));
      req.on("timeout", () => req.destroy());
    });
  }

  /** Sends `signal` and resolves with how the process ended (at once when it is not running). */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<Exit | undefined> {
    if (!this.running) return this.exit ? await this.exit : undefined;
    this.child?.kill(signal);
    return await this.exit;
  }

  /** SIGTERM (a graceful stop: reconciles finish, the lease is handed back), SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<Exit | undefined> {
    if (!this.running) return this.exit ? await this.exit : undefined;
    const timer = setTimeout(() => this.child?.kill("SIGKILL"), graceMs);
    try {
      return await this.kill("SIGTERM");
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops (gracefully unless told `SIGKILL`), starts again with the same flags and waits until it is ready. */
  async restart(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (signal === "SIGKILL") await this.kill("SIGKILL");
    else await this.stop();
    this.start();
    await this.waitReady();
  }

  /** The JSON log lines written so far (restarts included); other lines are skipped. */
  logLines(): LogLine[] {
    const lines: LogLine[] = [];
    for (const text of readText(this.o.logFile).split("\n")) {
      if (!text.startsWith("{")) continue;
      try {
        lines.push(JSON.parse(text) as LogLine);
      } catch {
        // A line cut short by a kill.
      }
    }
    return lines;
  }

  logTail(lines = 40): string {
    return tail("operator log", this.o.logFile, lines);
  }

  stderrTail(lines = 40): string {
    return tail("operator stderr", this.o.stderrFile, lines);
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

function tail(what: string, file: string, lines: number): string {
  return `--- ${what} (${file}), last ${lines} lines\n${readText(file)
    .split("\n")
    .slice(-lines - 1)
    .join("\n")}`;
}
