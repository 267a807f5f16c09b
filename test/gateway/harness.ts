// Starts the gateway stand-in (or the build PVE_SIM_GATEWAY_COMMAND names) as
// a separate process for tests, with exactly the environment a container
// would get (plus PATH for openssl) and a working directory of its own, as a
// container has its own filesystem, and makes sure it is killed on teardown
// even when a test fails or the run is interrupted.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { killQuietly, registerCleanup } from "../testenv/cleanup.js";
import { gatewayCommand } from "./launch.js";

export interface RunningGateway {
  proc: ChildProcess;
  host: string;
  port: number;
  url: string;
  /** Milliseconds from spawn to the first successful TLS handshake. */
  startMs: number;
  logs(): string;
  exited: Promise<number | null>;
  /** SIGKILL and wait. */
  kill(): Promise<void>;
}

export interface SpawnOptions {
  /**
   * The stand-in's start-up time as a share of the real gateway's (default 0:
   * as fast as it can; 1: as slow as the real one).
   */
  startupScale?: number;
  /** Working directory (where ./cert and .env live); default: a fresh one, removed when the process exits. */
  cwd?: string;
}

export async function spawnGateway(
  env: Record<string, string>,
  opts: SpawnOptions = {},
): Promise<ChildProcess> {
  const [cmd, ...args] = await gatewayCommand({ startupScale: opts.startupScale ?? 0 });
  const cwd = opts.cwd ?? mkdtempSync(path.join(tmpdir(), "ldap-gateway-"));
  const removeCwd = opts.cwd ? () => undefined : () => rmSync(cwd, { recursive: true, force: true });
  const unregister = registerCleanup(removeCwd);
  const proc = spawn(cmd!, args, {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...env },
    cwd,
    stdio: ["pipe", "pipe", "pipe"],
  });
  proc.once("exit", () => {
    unregister();
    removeCwd();
  });
  return proc;
}

/** Resolves once a TLS handshake with the listener succeeds. */
export async function waitForTls(
  host: string,
  port: number,
  timeoutMs = 10_000,
  proc?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && (proc.exitCode !== null || proc.signalCode !== null)) throw new Error("gateway exited");
    const ok = await new Promise<boolean>((resolve) => {
      const s = tls.connect({ host, port, rejectUnauthorized: false }, () => {
        s.end();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no LDAPS listener on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function startGateway(
  env: Record<string, string>,
  opts: SpawnOptions = {},
): Promise<RunningGateway> {
  const host = env.BIND_IP ?? "0.0.0.0";
  const port = Number(env.PORT ?? (env.LDAP_UNENCRYPTED === "true" ? 389 : 636));
  const started = Date.now();
  const proc = await spawnGateway(env, opts);
  let output = "";
  proc.stdout?.on("data", (b: Buffer) => (output += b.toString()));
  proc.stderr?.on("data", (b: Buffer) => (output += b.toString()));
  const unregister = registerCleanup(() => killQuietly(proc.pid));
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => {
      unregister();
      resolve(code);
    }),
  );
  try {
    await waitForTls(host === "0.0.0.0" ? "127.0.0.1" : host, port, 15_000, proc);
  } catch (err) {
    killQuietly(proc.pid);
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  return {
    proc,
    host,
    port,
    url: `ldaps://${host}:${port}`,
    startMs: Date.now() - started,
    logs: () => output,
    exited,
    async kill() {
      killQuietly(proc.pid);
      await exited;
    },
  };
}
