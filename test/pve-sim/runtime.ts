/**
 * Containers as real processes: each container runs the command of its image's catalog entry with the
 * container's env, on its own loopback address (127.X.Y.Z; Linux routes all of 127/8 to lo). A container
 * is booted once something accepts connections on its address and port. Every process is started in its
 * own process group and killed with it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, createServer, type Server, type Socket } from "node:net";
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
  child?: ChildProcess;
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
 * Process groups of every container process alive in this Node process. If the host process goes away
 * without stopping its simulators (process.exit, an uncaught error, SIGTERM/SIGINT/SIGHUP with no handler
 * of its own), they are killed synchronously so no container outlives it. SIGKILL cannot be caught: the
 * fixture listener also exits when its parent disappears.
 */
const liveGroups = new Set<number>();
let hooksInstalled = false;

function killLiveGroups(): void {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
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

export class ContainerRuntime {
  private readonly procs = new Map<number, Running>();
  private closed = false;

  constructor(private readonly opts: { bootTimeoutMs: number; onBooted: (vmid: number) => void }) {}

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
    const child = spawn(spec.command[0]!, spec.command.slice(1), {
      env: spec.env,
      cwd: spec.cwd,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // own process group, killed as a whole
    });
    r.child = child;
    installExitHooks();
    if (child.pid !== undefined) liveGroups.add(child.pid);
    const keep = (chunk: Buffer) => {
      for (const line of chunk.toString("utf8").split("\n")) if (line) r.output.push(line);
      if (r.output.length > OUTPUT_LINES) r.output.splice(0, r.output.length - OUTPUT_LINES);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("exit", (code, signal) => {
      // The group may still hold grandchildren: kill it as a whole.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          /* gone */
        }
        liveGroups.delete(child.pid);
      }
      finish(code, signal);
    });
    await new Promise<void>((res, rej) => {
      child.once("spawn", () => res());
      child.once("error", (e) => {
        finish(127, null);
        rej(e);
      });
    });
    this.watchBoot(r);
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
    if (!r || r.booted || !r.child) return;
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
    return this.procs.get(vmid)?.child?.pid;
  }

  output(vmid: number): string[] {
    return [...(this.procs.get(vmid)?.output ?? [])];
  }

  private signal(r: Running, sig: NodeJS.Signals): void {
    if (r.server) {
      if (sig === "SIGKILL") for (const s of r.sockets) s.destroy();
      r.server.close();
      if (sig === "SIGKILL" || r.sockets.size === 0) r.server.emit("close");
      return;
    }
    const pid = r.child?.pid;
    if (pid === undefined) {
      // A container without a process ends at once.
      this.procs.delete(r.spec.vmid);
      return;
    }
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        r.child?.kill(sig);
      } catch {
        /* gone already */
      }
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. Returns whether it needed SIGKILL. */
  async stop(vmid: number, graceMs: number): Promise<boolean> {
    const r = this.procs.get(vmid);
    if (!r) return false;
    r.requested = true;
    if (!r.child && !r.server) {
      this.procs.delete(vmid);
      r.onExit({ code: 0, signal: null, requested: true });
      return false;
    }
    this.signal(r, "SIGTERM");
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
    if (!r.child && !r.server) {
      await this.stop(vmid, 0);
      return true;
    }
    r.requested = true;
    this.signal(r, "SIGTERM");
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
    if (!r.child && !r.server) {
      this.procs.delete(vmid);
      r.onExit({ code: null, signal: "SIGKILL", requested: false });
      return true;
    }
    this.signal(r, "SIGKILL");
    return true;
  }

  /** Kills every process (SIGKILL to each group) and waits for them. */
  async killAll(): Promise<void> {
    this.closed = true;
    const all = [...this.procs.values()];
    for (const r of all) {
      r.requested = true;
      if (!r.child && !r.server) {
        this.procs.delete(r.spec.vmid);
        continue;
      }
      this.signal(r, "SIGKILL");
    }
    await Promise.all(all.filter((r) => r.child || r.server).map((r) => r.exited));
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
        const owner = Number(readFileSync(file, "utf8"));
        if (!alive(owner)) {
          try {
            unlinkSync(file);
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
