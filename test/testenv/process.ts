// Child processes of the test environment: they die with their parent (the
// kernel's parent-death signal, through util-linux's setpriv), so an
// interrupted or crashed test run leaves nothing behind.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";

const SETPRIV = "/usr/bin/setpriv";

export interface Supervised {
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export function startProcess(
  command: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): Supervised {
  const log = createWriteStream(logFile, { flags: "a" });
  const [cmd, argv] = existsSync(SETPRIV)
    ? [SETPRIV, ["--pdeathsig", "SIGKILL", "--", command, ...args]]
    : [command, args];
  const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    async stop(graceMs = 5000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      }
      log.end();
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what} not ready within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ""}`);
}
