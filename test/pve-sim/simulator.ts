/**
 * PveSimulator: a Proxmox VE cluster behind one HTTPS endpoint, for the operator's tests, benchmarks and demo.
 *
 *   const sim = await PveSimulator.start({ nodes: ["pve1", "pve2"], speed: 0.01 });
 *   // sim.url, sim.tokenId, sim.tokenSecret, sim.faults, sim.requestLog, sim.state
 *   await sim.stop();
 *
 * Extending it: `sim.router.get|post|put|delete(template, handler)` adds API routes (a handler gets the
 * caller and its parameters; check them with `routeInput` and `checkPriv`, start tasks with
 * `sim.core.tasks.start`, keep state in `sim.core.store.data.ext`); `sim.events` reports container changes.
 *
 * Where it differs from a real cluster, on purpose or for lack of a source (texts marked "inferred" in
 * the code were not read in Proxmox's sources):
 * - a container's address is its loopback address, whatever net0 says (interfaces report it as eth0);
 * - privileges are the union of the ACL entries on a path and its parents (no override by deeper
 *   entries, no roles, no token privilege separation); tag privileges (user-allow) are not checked;
 * - pools exist only as names in the config; HA, replication, backups, snapshots, migration, quotas and
 *   disk space are not simulated (`purge`, `ha-managed` are accepted and have no further effect);
 * - a start task ends once the process listens or has lived `startSettleMs`, shutdown's `timeout` is in
 *   real seconds, stop sends SIGTERM then SIGKILL after `stopGraceMs` (real `pct stop` kills at once);
 * - tasks cannot be stopped (no DELETE on tasks); a task running when the simulator stops is reported
 *   `unexpected status` after a restart, and a `lock: create` it held stays, as after a crash.
 */
import { ALL_PRIVILEGES, Auth } from "./auth.js";
import { makeCert, type Cert } from "./cert.js";
import { registerCluster } from "./cluster.js";
import { resolveConfig, type AclEntry, type SimConfig, type SimConfigInput } from "./config.js";
import { EventEmitter } from "node:events";
import { emitContainer, type ContainerEvent, type SimCore } from "./core.js";
import {
  Faults,
  type DropResponseFault,
  type FailRequestsFault,
  type FailTaskFault,
  type LatencyFault,
  type UnreachableFault,
} from "./faults.js";
import { Lxc, parseEnv } from "./lxc.js";
import { RequestLog } from "./requestlog.js";
import { Router } from "./router.js";
import { AddressBlock, ContainerRuntime } from "./runtime.js";
import { ADMIN_PREFIX, SimServer } from "./server.js";
import { StateStore, type ContainerState, type SimState, type TaskState } from "./state.js";
import { registerRealms } from "./realms.js";
import { registerStorage } from "./storage.js";
import { TaskManager } from "./tasks.js";

export type { ContainerEvent };

export interface PveSimulatorOptions extends SimConfigInput {
  /** JSON file the state is kept in across restarts (default: memory only). */
  stateFile?: string;
}

export interface TokenOptions {
  /** `user@realm!name` */
  id: string;
  /** Default: a random UUID. */
  secret?: string;
  /** Privileges per ACL path, e.g. `{ "/vms": ["VM.Audit"], "/storage/local": ["Datastore.AllocateTemplate"] }`. */
  privileges?: Record<string, string[]>;
  acl?: AclEntry[];
}

export interface TokenInfo {
  id: string;
  secret: string;
  /** Value of the Authorization header. */
  authorization: string;
}

export class PveSimulator {
  /** `https://HOST:PORT` (the API is below `/api2/json`). */
  readonly url: string;
  readonly apiUrl: string;
  /** Base URL of the fault-injection API. */
  readonly adminUrl: string;
  readonly port: number;
  /** The full-privilege token. */
  readonly tokenId: string;
  readonly tokenSecret: string;
  /** root@pam's password for ticket login (`POST /access/ticket`). */
  readonly rootPassword: string;
  /** The API's self-signed certificate (PEM) and its SHA-256 fingerprint, for clients that pin it. */
  readonly certPem: string;
  readonly fingerprint: string;
  readonly faults: Faults;
  readonly requestLog: RequestLog;
  /** Add routes below /api2/json here (e.g. `/access/domains`); handlers get the caller and parameters. */
  readonly router: Router;
  /** Add admin routes below /sim here. */
  readonly adminRouter: Router;
  readonly core: SimCore;
  /** `sim.events.on("container", (e: ContainerEvent) => ...)`: created, started, booted, stopped, destroyed. */
  readonly events: EventEmitter;
  private stopped = false;

  private constructor(
    core: SimCore,
    private readonly server: SimServer,
    cert: Cert,
    port: number,
    token: TokenInfo,
    rootPassword: string,
    adminRouter: Router,
  ) {
    this.core = core;
    this.port = port;
    this.url = `https://${core.config.host}:${port}`;
    this.apiUrl = `${this.url}/api2/json`;
    this.adminUrl = `${this.url}${ADMIN_PREFIX}`;
    this.tokenId = token.id;
    this.tokenSecret = token.secret;
    this.rootPassword = rootPassword;
    this.certPem = cert.cert;
    this.fingerprint = cert.fingerprint;
    this.faults = core.faults;
    this.requestLog = core.requestLog;
    this.router = core.router;
    this.adminRouter = adminRouter;
    this.events = core.events;
  }

  static async start(opts: PveSimulatorOptions = {}): Promise<PveSimulator> {
    const config: SimConfig = resolveConfig(opts);
    const store = new StateStore(opts.stateFile);
    const data = store.data;
    const faults = new Faults();
    const addresses = AddressBlock.lease(config.addressBlock, data.addressBlock);
    data.addressBlock = addresses.octet;
    for (const ct of Object.values(data.containers))
      ct.address = ct.address.replace(/^127\.\d+\./, `127.${addresses.octet}.`);
    const core: SimCore = {
      config,
      store,
      auth: new Auth(),
      tasks: new TaskManager(store, faults, () => config.speed),
      faults,
      runtime: new ContainerRuntime({
        bootTimeoutMs: config.bootTimeoutMs,
        spawners: config.spawners,
        onBooted: (vmid) => {
          const ct = data.containers[String(vmid)];
          if (ct) {
            ct.booted = true;
            emitContainer(core, "booted", ct);
          }
        },
      }),
      addresses,
      requestLog: new RequestLog(),
      router: new Router(),
      events: new EventEmitter(),
    };
    faults.killer = (vmid) => core.runtime.kill(vmid);

    // Credentials: the configured ones, plus a full-privilege token and root's password kept in the state.
    data.secrets["adminToken"] ??= Auth.newSecret();
    data.secrets["rootPassword"] ??= Auth.newSecret();
    const rootPassword = config.rootPassword ?? data.secrets["rootPassword"];
    core.auth.addUser({ userid: "root@pam", password: rootPassword });
    for (const u of config.users) core.auth.addUser(u);
    for (const t of config.tokens) core.auth.addToken(t);
    const adminToken = {
      id: config.adminTokenId,
      secret: data.secrets["adminToken"],
      acl: [{ path: "/", privs: ALL_PRIVILEGES }],
    };
    core.auth.addToken(adminToken);

    const lxc = new Lxc(core);
    lxc.register();
    registerStorage(core);
    registerCluster(core, lxc);
    // /access/domains, its sync task, /access/users and /access/groups (realms.ts).
    registerRealms(core);

    const admin = new Router();
    let cert: Cert;
    let server: SimServer;
    let port: number;
    try {
      cert = await makeCert(config.nodes[0] ?? "pve", config.host);
      server = new SimServer(core, admin, cert);
      port = await server.listen(config.host, config.port);
    } catch (e) {
      addresses.release();
      throw e;
    }
    const sim = new PveSimulator(
      core,
      server,
      cert,
      port,
      { ...adminToken, authorization: `PVEAPIToken=${adminToken.id}=${adminToken.secret}` },
      rootPassword,
      admin,
    );
    sim.registerAdmin(admin);

    // Containers the state file says were running: started again (or shown stopped when resumeRunning is off).
    for (const ct of Object.values(data.containers)) {
      if (ct.status !== "running") continue;
      ct.status = "stopped";
      ct.booted = false;
      if (config.resumeRunning) await lxc.spawn(ct).catch(() => undefined);
    }
    store.changed();
    return sim;
  }

  /** The live state (read it; change it only through the API or the methods here). */
  get state(): Readonly<SimState> {
    return this.core.store.data;
  }

  get config(): SimConfig {
    return this.core.config;
  }

  container(vmid: number): ContainerState | undefined {
    return this.core.store.data.containers[String(vmid)];
  }

  /** Env of a container as `NAME -> value` (pending changes not applied). */
  containerEnv(vmid: number): Record<string, string> {
    return Object.fromEntries(parseEnv(this.container(vmid)?.conf["env"]));
  }

  /** Last lines the container's process wrote (stdout and stderr). */
  containerOutput(vmid: number): string[] {
    return this.core.runtime.output(vmid);
  }

  task(upid: string): TaskState | undefined {
    return this.core.tasks.get(upid);
  }

  waitTask(upid: string, timeoutMs?: number): Promise<TaskState> {
    return this.core.tasks.waitFor(upid, timeoutMs);
  }

  /** Resolves when every task running now has ended. */
  idle(): Promise<void> {
    return this.core.tasks.idle();
  }

  /** Resolves once the container's process listens on its port. */
  async waitBooted(vmid: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.container(vmid)?.booted) {
      if (Date.now() > deadline) throw new Error(`CT ${vmid} did not boot within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  setSpeed(speed: number): void {
    this.core.config.speed = speed;
  }

  addToken(opts: TokenOptions): TokenInfo {
    const acl: AclEntry[] = [...(opts.acl ?? [])];
    for (const [path, privs] of Object.entries(opts.privileges ?? {})) acl.push({ path, privs });
    const secret = opts.secret ?? Auth.newSecret();
    this.core.auth.addToken({ id: opts.id, secret, acl });
    return { id: opts.id, secret, authorization: `PVEAPIToken=${opts.id}=${secret}` };
  }

  addUser(userid: string, password: string, privileges: Record<string, string[]> = {}): void {
    this.core.auth.addUser({
      userid,
      password,
      acl: Object.entries(privileges).map(([path, privs]) => ({ path, privs })),
    });
  }

  /** Stops serving, kills every container process, writes the state file. Containers running now are recorded as running. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const core = this.core;
    core.tasks.close();
    await this.server.close();
    const running = Object.values(core.store.data.containers).filter((c) => c.status === "running");
    await core.runtime.killAll();
    for (const ct of running) ct.status = "running";
    await core.store.close();
    core.addresses.release();
  }

  private registerAdmin(admin: Router): void {
    const faults = this.faults;
    const num = (v: unknown, name: string): number => {
      const n = Number(v);
      if (!Number.isFinite(n)) throw new Error(`${name} must be a number`);
      return n;
    };
    admin.get("/", () => ({
      url: this.url,
      apiUrl: this.apiUrl,
      nodes: this.config.nodes,
      speed: this.config.speed,
      routes: [
        "GET /sim/state",
        "GET|DELETE /sim/requests",
        "GET|DELETE /sim/faults",
        "POST /sim/faults/fail-requests {method?, path, count?, always?, status, message}",
        "POST /sim/faults/latency {method?, path, ms, count?, always?}",
        "POST /sim/faults/drop-responses {method?, path, count?, always?, mode: reset|timeout}",
        "POST /sim/faults/fail-task {type, message, id?, count?}",
        "POST /sim/faults/warn-task {type, message, warnings?, id?, count?}",
        "POST /sim/faults/node-unreachable {node, status?: 595|596, message?}",
        "DELETE /sim/faults/node-unreachable/{node}",
        "POST /sim/containers/{vmid}/kill",
        "GET /sim/containers/{vmid}/output",
        "POST /sim/speed {speed}",
      ],
    }));
    // The simulator's own credentials stay out of it; container configs are shown as they are.
    admin.get("/state", () => ({ ...this.state, secrets: Object.keys(this.state.secrets) }));
    admin.get("/requests", () => this.requestLog.entries);
    admin.delete("/requests", () => this.requestLog.clear());
    admin.get("/faults", () => faults.list());
    admin.delete("/faults", () => faults.clear());
    admin.post("/faults/fail-requests", (c) =>
      faults.failRequests({
        ...(c.input as unknown as FailRequestsFault),
        status: num(c.input["status"], "status"),
      }),
    );
    admin.post("/faults/latency", (c) =>
      faults.addLatency({ ...(c.input as unknown as LatencyFault), ms: num(c.input["ms"], "ms") }),
    );
    admin.post("/faults/drop-responses", (c) =>
      faults.dropResponses(c.input as unknown as DropResponseFault),
    );
    admin.post("/faults/fail-task", (c) => faults.failNextTask(c.input as unknown as FailTaskFault));
    admin.post("/faults/warn-task", (c) =>
      faults.warnNextTask({
        ...(c.input as unknown as FailTaskFault),
        warnings: num(c.input["warnings"] ?? 1, "warnings"),
      }),
    );
    admin.post("/faults/node-unreachable", (c) =>
      faults.nodeUnreachable(c.input as unknown as UnreachableFault),
    );
    admin.delete("/faults/node-unreachable/{node}", (c) => faults.nodeReachable(c.params["node"]!));
    admin.post("/containers/{vmid}/kill", (c) => ({
      killed: faults.killContainer(Number(c.params["vmid"])),
    }));
    admin.get("/containers/{vmid}/output", (c) => this.containerOutput(Number(c.params["vmid"])));
    admin.post("/speed", (c) => this.setSpeed(num(c.input["speed"], "speed")));
  }
}
