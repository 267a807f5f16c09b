/**
 * Containers as real processes: each container runs the command of its image's catalog entry with the
 * container's env, on its own loopback address (127.X.Y.Z; Linux routes all of 127/8 to lo). A container
 * is booted once something accepts connections on its address and port. Processes are started by a small
 * helper (spawner.mjs), each in its own process group, and killed with their group; the helper kills them
 * all when the simulator's process goes away, however it ends.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface RunSpec {
  vmid: number;
  address: string;
  port: number;
  /** argv; empty with `builtin` false means a container without a process (it just counts as running). */
  command: string[];
  builtin: boolean;
  env: Record<string, string>;
  cwd?: string;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Whether the simulator asked for it (stop, shutdown). */
  requested: boolean;
}

interface Running {
  spec: RunSpec;
  /** Process group (= pid) of the container's process. */
  pid?: number;
  server?: Server;
  sockets: Set<Socket>;
  requested: boolean;
  booted: boolean;
  output: string[];
  exited: Promise<void>;
  onExit: (e: ExitInfo) => void;
  bootTimer?: NodeJS.Timeout;
}

const OUTPUT_LINES = 200;

/**
 * A catalog entry's working directory for one container: `{vmid}` in it gives each container a directory of
 * its own, as each real container has its own filesystem (the LDAP gateway keeps its certificate there).
 */
export function containerWorkDir(template: string, vmid: number): string {
  return template.replaceAll("{vmid}", String(vmid));
}
const SPAWNER = fileURLToPath(new URL("./spawner.mjs", import.meta.url));

/**
 * Process groups of every container process alive in this Node process: killed synchronously if the host
 * process exits without stopping its simulators (process.exit, an uncaught error, SIGTERM/SIGINT/SIGHUP
 * with no handler of its own). After a SIGKILL, the spawner does it when its stdin closes.
 */
const liveGroups = new Set<number>();
let hooksInstalled = false;

function killGroup(pid: number, sig: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(-pid, sig);
  } catch {
    /* already gone */
  }
}

function killLiveGroups(): void {
  for (const pid of liveGroups) killGroup(pid);
  liveGroups.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on("exit", killLiveGroups);
  for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    const handler = () => {
      killLiveGroups();
      if (process.listenerCount(sig) === 1) {
        // Nobody else handles it: behave as the default action would.
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

interface SpawnHandlers {
  spawned: (pid: number) => void;
  error: (message: string) => void;
  out: (line: string) => void;
  exit: (code: number | null, signal: NodeJS.Signals | null) => void;
}

/** The simulator's side of spawner.mjs: spawn requests out, spawned/out/exit events in. */
class Spawner {
  private readonly child: ChildProcess;
  private readonly handlers = new Map<number, SpawnHandlers>();
  private seq = 0;
  private readonly ended: Promise<void>;

  constructor() {
    this.child = spawn(process.execPath, [SPAWNER], { stdio: ["pipe", "pipe", "inherit"] });
    this.child.stdin!.on("error", () => undefined);
    createInterface({ input: this.child.stdout! }).on("line", (line) => this.dispatch(line));
    this.ended = new Promise((resolve) =>
      this.child.once("exit", () => {
        // Whatever it had started is gone with it (or is killed now).
        for (const [id, h] of this.handlers) {
          this.handlers.delete(id);
          h.exit(null, "SIGKILL");
        }
        resolve();
      }),
    );
  }

  private dispatch(line: string): void {
    const msg = JSON.parse(line) as {
      ev: string;
      id: number;
      pid?: number;
      message?: string;
      line?: string;
      code?: number | null;
      signal?: NodeJS.Signals | null;
    };
    const h = this.handlers.get(msg.id);
    if (!h) return;
    if (msg.ev === "spawned") h.spawned(msg.pid!);
    else if (msg.ev === "out") h.out(msg.line ?? "");
    else if (msg.ev === "error") {
      this.handlers.delete(msg.id);
      h.error(msg.message ?? "spawn failed");
    } else if (msg.ev === "exit") {
      this.handlers.delete(msg.id);
      h.exit(msg.code ?? null, msg.signal ?? null);
    }
  }

  spawn(spec: RunSpec, handlers: SpawnHandlers): void {
    let cwd: string | undefined;
    if (spec.cwd !== undefined) {
      cwd = containerWorkDir(spec.cwd, spec.vmid);
      try {
        // Made on first use and kept across starts, like a container's root filesystem.
        mkdirSync(cwd, { recursive: true });
      } catch (e) {
        handlers.error(`cannot make working directory ${cwd}: ${(e as Error).message}`);
        return;
      }
    }
    const id = ++this.seq;
    this.handlers.set(id, handlers);
    this.child.stdin!.write(
      JSON.stringify({ op: "spawn", id, argv: spec.command, env: spec.env, cwd }) + "\n",
    );
  }

  /** Ends the helper (it kills whatever still runs) and waits for it. */
  async close(): Promise<void> {
    this.child.stdin!.end();
    await this.ended;
  }
}

export class ContainerRuntime {
  private readonly procs = new Map<number, Running>();
  private closed = false;
  /** Spawners, started on first use; spawns go round-robin so forks proceed in parallel. */
  private readonly spawners: Spawner[] = [];
  private nextSpawner = 0;

  constructor(
    private readonly opts: { bootTimeoutMs: number; spawners: number; onBooted: (vmid: number) => void },
  ) {}

  /** Starts the container's process; resolves once spawned (or rejects when it cannot be). */
  async start(spec: RunSpec, onExit: (e: ExitInfo) => void): Promise<void> {
    if (this.closed) throw new Error("simulator stopped");
    if (this.procs.has(spec.vmid)) throw new Error(`process of CT ${spec.vmid} already running`);
    let markExited!: () => void;
    const r: Running = {
      spec,
      sockets: new Set(),
      requested: false,
      booted: false,
      output: [],
      exited: new Promise((res) => (markExited = res)),
      onExit,
    };
    const finish = (code: number | null, signal: NodeJS.Signals | null) => {
      if (this.procs.get(spec.vmid) !== r) return;
      this.procs.delete(spec.vmid);
      if (r.bootTimer) clearTimeout(r.bootTimer);
      markExited();
      r.onExit({ code, signal, requested: r.requested });
    };
    if (spec.builtin) {
      const server = createServer((s) => {
        r.sockets.add(s);
        s.on("close", () => r.sockets.delete(s));
        s.on("error", () => undefined);
        s.end(`CT ${spec.vmid} ${spec.env["HOSTNAME"] ?? ""}\n`);
      });
      await new Promise<void>((res, rej) => {
        server.once("error", rej);
        server.listen(spec.port, spec.address, () => res());
      });
      server.on("close", () => finish(0, null));
      r.server = server;
      this.procs.set(spec.vmid, r);
      this.booted(r);
      return;
    }
    this.procs.set(spec.vmid, r);
    if (spec.command.length === 0) return; // no process: running until stopped
    installExitHooks();
    const spawner = this.spawner();
    await new Promise<void>((resolve, reject) => {
      spawner.spawn(spec, {
        spawned: (pid) => {
          r.pid = pid;
          liveGroups.add(pid);
          resolve();
          this.watchBoot(r);
        },
        error: (message) => {
          finish(127, null);
          reject(new Error(message));
        },
        out: (line) => {
          r.output.push(line);
          if (r.output.length > OUTPUT_LINES) r.output.shift();
        },
        exit: (code, signal) => {
          if (r.pid !== undefined) liveGroups.delete(r.pid);
          finish(code, signal);
        },
      });
    });
  }

  private spawner(): Spawner {
    const i = this.nextSpawner++ % Math.max(1, this.opts.spawners);
    return (this.spawners[i] ??= new Spawner());
  }

  private booted(r: Running): void {
    r.booted = true;
    this.opts.onBooted(r.spec.vmid);
  }

  private watchBoot(r: Running): void {
    const deadline = Date.now() + this.opts.bootTimeoutMs;
    const attempt = () => {
      if (this.procs.get(r.spec.vmid) !== r || Date.now() > deadline) return;
      const s = connect({ host: r.spec.address, port: r.spec.port });
      s.setTimeout(1000);
      s.once("connect", () => {
        s.destroy();
        if (this.procs.get(r.spec.vmid) === r) this.booted(r);
      });
      const retry = () => {
        s.destroy();
        r.bootTimer = setTimeout(attempt, 20);
      };
      s.once("error", retry);
      s.once("timeout", retry);
    };
    attempt();
  }

  /**
   * Resolves once the process listens, has ended, or has lived `ms` (real time), whichever comes first:
   * how long a start waits to see whether the container's init survives.
   */
  async settle(vmid: number, ms: number): Promise<void> {
    const r = this.procs.get(vmid);
    if (!r || r.booted || r.pid === undefined) return;
    const end = Date.now() + ms;
    while (this.procs.get(vmid) === r && !r.booted && Date.now() < end)
      await new Promise((res) => setTimeout(res, 5));
  }

  isRunning(vmid: number): boolean {
    return this.procs.has(vmid);
  }

  isBooted(vmid: number): boolean {
    return this.procs.get(vmid)?.booted ?? false;
  }

  pid(vmid: number): number | undefined {
    return this.procs.get(vmid)?.pid;
  }

  output(vmid: number): string[] {
    return [...(this.procs.get(vmid)?.output ?? [])];
  }

  /**
   * Sends `sig` to the container's process group (or closes a builtin listener). A container without a
   * process ends at once; returns false then, true when an exit is still to come.
   */
  private signal(r: Running, sig: NodeJS.Signals): boolean {
    if (r.server) {
      if (sig === "SIGKILL") for (const s of r.sockets) s.destroy();
      r.server.close();
      if (sig === "SIGKILL" || r.sockets.size === 0) r.server.emit("close");
      return true;
    }
    if (r.pid !== undefined) {
      killGroup(r.pid, sig);
      return true;
    }
    this.procs.delete(r.spec.vmid);
    r.onExit({
      code: sig === "SIGKILL" ? null : 0,
      signal: sig === "SIGKILL" ? sig : null,
      requested: r.requested,
    });
    return false;
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Returns whether it needed SIGKILL. */
  async stop(vmid: number, graceMs: number): Promise<boolean> {
    const r = this.procs.get(vmid);
    if (!r) return false;
    r.requested = true;
    if (!this.signal(r, "SIGTERM")) return false;
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.signal(r, "SIGKILL");
    }, graceMs);
    await r.exited;
    clearTimeout(timer);
    return killed;
  }

  /** SIGTERM and waits up to `timeoutMs`; resolves true when the process ended in time (left running otherwise). */
  async shutdown(vmid: number, timeoutMs: number): Promise<boolean> {
    const r = this.procs.get(vmid);
    if (!r) return true;
    r.requested = true;
    if (!this.signal(r, "SIGTERM")) return true;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((res) => (timer = setTimeout(() => res(false), timeoutMs)));
    const ok = await Promise.race([r.exited.then(() => true), timedOut]);
    clearTimeout(timer);
    if (!ok) r.requested = false;
    return ok;
  }

  /** SIGKILL without being asked by the API: the container is then reported stopped, as after a crash. */
  kill(vmid: number): boolean {
    const r = this.procs.get(vmid);
    if (!r) return false;
    this.signal(r, "SIGKILL");
    return true;
  }

  /** Kills every process (SIGKILL to each group), waits for them, and ends the spawners. */
  async killAll(): Promise<void> {
    this.closed = true;
    const all = [...this.procs.values()];
    for (const r of all) r.requested = true;
    // Wait for the spawner to reap them before ending it, so none is left behind as a zombie.
    await Promise.all(all.filter((r) => this.signal(r, "SIGKILL")).map((r) => r.exited));
    await Promise.all(this.spawners.map((s) => s.close()));
  }
}

/**
 * Leases a 127.X.0.0/16 block for one simulator, so simulators running side by side (parallel tests)
 * never hand out the same address. The lease is a file holding the owner's pid under the temp dir;
 * a lease whose process is gone is taken over.
 */
export class AddressBlock {
  private constructor(
    readonly octet: number,
    private readonly file: string | undefined,
  ) {}

  /** `fixed`: use that block without a lease; `preferred`: try that block first (the one of a state file). */
  static lease(fixed?: number, preferred?: number): AddressBlock {
    if (fixed !== undefined) return new AddressBlock(fixed, undefined);
    const dir = join(tmpdir(), "pve-sim-address-blocks");
    mkdirSync(dir, { recursive: true });
    const start = preferred ?? 16 + Math.floor(Math.random() * 239);
    for (let i = 0; i < 239; i++) {
      const octet = 16 + ((start - 16 + i) % 239);
      const file = join(dir, String(octet));
      try {
        const fd = openSync(file, "wx");
        writeFileSync(fd, String(process.pid));
        closeSync(fd);
        return new AddressBlock(octet, file);
      } catch {
        // Taken. A lease whose owner is gone is removed and the block tried again; an empty file is a
        // lease being written, a missing one was just released.
        let owner: number;
        try {
          owner = Number(readFileSync(file, "utf8"));
        } catch {
          owner = 0;
        }
        if (owner > 0 && !alive(owner)) {
          try {
            unlinkSync(file);
            i--;
          } catch {
            /* raced with another simulator */
          }
        }
      }
    }
    throw new Error("no free 127.X.0.0/16 address block");
  }

  /** Address number `n` (1..65024) of the block: 127.X.(n / 254).(n % 254 + 1). */
  address(n: number): string {
    const i = n - 1;
    return `127.${this.octet}.${Math.floor(i / 254)}.${(i % 254) + 1}`;
  }

  release(): void {
    if (this.file)
      try {
        unlinkSync(this.file);
      } catch {
        /* already gone */
      }
  }
}

function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
