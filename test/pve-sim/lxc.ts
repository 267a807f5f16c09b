/** LXC containers: create, config, power, interfaces, destroy; and running their processes. */
import { createHash, randomBytes } from "node:crypto";
import { checkAnyPriv, checkPriv, checkRoot, checkVmPriv, hasVmPriv, isRoot, type Identity } from "./auth.js";
import { matchImage } from "./config.js";
import {
  containerOn,
  emitContainer,
  findContainer,
  findVolume,
  requireStorage,
  volumesOf,
  type SimCore,
} from "./core.js";
import { fail, paramError } from "./errors.js";
import {
  CREATE_ONLY_PARAMS,
  CREATE_SCHEMA,
  UPDATE_SCHEMA,
  enabledFeatures,
  normaliseConfigValue,
  optionExists,
  privilegeForKey,
  printNet,
  splitList,
  updatePctConfig,
} from "./lxcformat.js";
import { routeInput, type RouteContext } from "./router.js";
import { parsePropertyString, type ParamValue } from "./schema.js";
import type { ConfValue, ContainerState } from "./state.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export function lockError(ct: ContainerState): Error | undefined {
  const lock = ct.conf["lock"];
  return lock === undefined ? undefined : fail(`CT is locked (${lock})`);
}

/** SHA-1 over the whole config file (current and pending sections), like PVE's config digest. */
export function configDigest(ct: ContainerState): string {
  return createHash("sha1")
    .update(JSON.stringify([ct.conf, ct.pending, ct.pendingDelete]))
    .digest("hex");
}

/** The config as GET .../config shows it: pending values applied unless `current`. */
export function effectiveConfig(ct: ContainerState, current: boolean): Record<string, ConfValue> {
  const conf: Record<string, ConfValue> = { ...ct.conf };
  if (!current) {
    Object.assign(conf, ct.pending);
    for (const k of ct.pendingDelete) delete conf[k];
  }
  return conf;
}

function randomHwaddr(): string {
  // BC:24:11 is Proxmox's OUI for generated addresses.
  const b = randomBytes(3);
  return ["BC", "24", "11", ...[...b].map((x) => x.toString(16).toUpperCase().padStart(2, "0"))].join(":");
}

function sizeToBytes(size: string | undefined): number {
  if (!size) return 4 * GiB;
  const m = /^(\d+(?:\.\d+)?)([KMGT]?)$/.exec(size);
  if (!m) return 4 * GiB;
  const unit = { "": 1, K: 1024, M: MiB, G: GiB, T: 1024 * GiB }[m[2] as "" | "K" | "M" | "G" | "T"];
  return Math.round(Number(m[1]) * unit);
}

/** `env` as [NAME, value] pairs. */
export function parseEnv(env: ConfValue | undefined): [string, string][] {
  if (typeof env !== "string" || env === "") return [];
  return env
    .split("\0")
    .filter((e) => e.includes("="))
    .map((e) => [e.slice(0, e.indexOf("=")), e.slice(e.indexOf("=") + 1)]);
}

/** Root-only options (a token never passes, even one owned by root@pam). Texts beyond features are inferred. */
function checkRootOnly(id: Identity, params: Record<string, ParamValue>, creating: boolean): void {
  for (const [k, v] of Object.entries(params)) {
    if (k === "features") {
      if (enabledFeatures(String(v)).some((f) => f !== "nesting"))
        checkRoot(id, "changing feature flags (except nesting) is only allowed for root@pam");
    } else if (k === "hookscript") checkRoot(id, "changing the hookscript is only allowed for root@pam");
    else if (/^dev\d+$/.test(k)) checkRoot(id, "configuring device passthrough is only allowed for root@pam");
    else if (/^mp\d+$/.test(k) || k === "rootfs") {
      const p = parsePropertyString(String(v), "volume");
      if (typeof p !== "string" && p.get("volume")?.startsWith("/"))
        checkRoot(id, "Only root can pass arbitrary filesystem paths.");
    } else if (k === "unprivileged" && creating && v === 0)
      checkRoot(id, "creating privileged containers is only allowed for root@pam");
  }
}

function checkConfigPrivs(id: Identity, vmid: number, pool: string | undefined, keys: string[]): void {
  for (const k of keys) checkVmPriv(id, vmid, pool, [privilegeForKey(k)]);
}

/** `skiplock` is for root@pam alone (a token never passes); PVE checks it before anything else. */
function checkSkiplock(id: Identity, params: Record<string, ParamValue>): void {
  if (params["skiplock"] === 1 && !isRoot(id))
    throw paramError({ skiplock: "Only root may use this option." });
}

/** PUT config parameters that are not options: they alone make "no options specified". */
const UPDATE_CONTROL_PARAMS = new Set(["node", "vmid", "digest", "skiplock"]);

/**
 * The text a task killed by another one ends with: the worker dies on SIGTERM with "received interrupt"
 * (inferred from PVE::RESTEnvironment's fork_worker).
 */
const INTERRUPTED = "received interrupt";

/** Settles as `work` does, or fails with INTERRUPTED as soon as `signal` aborts. */
function untilAborted<T>(signal: AbortSignal, work: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(fail(INTERRUPTED));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(fail(INTERRUPTED));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Running vzshutdown tasks per container, so that a stop with `overrule-shutdown` can abort them. */
class ShutdownTasks {
  private readonly byVmid = new Map<number, Map<string, AbortController>>();

  add(vmid: number, upid: string): AbortSignal {
    const tasks = this.byVmid.get(vmid) ?? new Map<string, AbortController>();
    this.byVmid.set(vmid, tasks);
    const abort = new AbortController();
    tasks.set(upid, abort);
    return abort.signal;
  }

  remove(vmid: number, upid: string): void {
    const tasks = this.byVmid.get(vmid);
    tasks?.delete(upid);
    if (tasks?.size === 0) this.byVmid.delete(vmid);
  }

  /** Aborts every running shutdown of the container (PVE::GuestHelpers::abort_guest_tasks); returns their UPIDs. */
  abort(vmid: number): string[] {
    const tasks = [...(this.byVmid.get(vmid) ?? [])];
    this.byVmid.delete(vmid);
    for (const [, abort] of tasks) abort.abort();
    return tasks.map(([upid]) => upid);
  }
}

export class Lxc {
  private readonly mutex = new Map<number, Promise<unknown>>();
  private readonly shutdowns = new ShutdownTasks();

  constructor(private readonly core: SimCore) {}

  /** Runs `fn` after every earlier operation on the container (pve-container's config file lock). */
  private exclusive<T>(vmid: number, fn: () => Promise<T>): Promise<T> {
    const prev = this.mutex.get(vmid) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.mutex.set(vmid, tail);
    void tail.then(() => {
      if (this.mutex.get(vmid) === tail) this.mutex.delete(vmid);
    });
    return next;
  }

  private changed(): void {
    this.core.store.changed();
  }

  register(): void {
    const r = this.core.router;
    r.get("/nodes/{node}/lxc", (c) => this.list(c));
    r.post("/nodes/{node}/lxc", (c) => this.create(c));
    r.get("/nodes/{node}/lxc/{vmid}", (c) => {
      this.ct(c, "VM.Audit");
      return [{ subdir: "config" }, { subdir: "status" }, { subdir: "interfaces" }, { subdir: "pending" }];
    });
    r.get("/nodes/{node}/lxc/{vmid}/config", (c) => this.getConfig(c));
    r.put("/nodes/{node}/lxc/{vmid}/config", (c) => this.putConfig(c));
    r.get("/nodes/{node}/lxc/{vmid}/pending", (c) => this.pending(c));
    r.get("/nodes/{node}/lxc/{vmid}/status/current", (c) => this.statusOf(this.ct(c, "VM.Audit")));
    r.post("/nodes/{node}/lxc/{vmid}/status/start", (c) => this.start(c));
    r.post("/nodes/{node}/lxc/{vmid}/status/stop", (c) => this.stop(c));
    r.post("/nodes/{node}/lxc/{vmid}/status/shutdown", (c) => this.shutdown(c));
    r.get("/nodes/{node}/lxc/{vmid}/interfaces", (c) => this.interfaces(c));
    r.delete("/nodes/{node}/lxc/{vmid}", (c) => this.destroy(c));
  }

  private vmid(c: RouteContext): number {
    const v = c.params["vmid"] ?? "";
    if (!/^\d+$/.test(v)) throw paramError({ vmid: `type check ('integer') failed - got '${v}'` });
    return Number(v);
  }

  private ct(c: RouteContext, priv: string): ContainerState {
    const vmid = this.vmid(c);
    const ct = findContainer(this.core, vmid);
    checkVmPriv(c.identity, vmid, ct?.pool, [priv]);
    return containerOn(this.core, c.params["node"]!, vmid);
  }

  /** One entry of GET /nodes/{node}/lxc and /cluster/resources. */
  summary(ct: ContainerState): Record<string, unknown> {
    const conf = ct.conf;
    const running = ct.status === "running";
    const rootfs = parsePropertyString(String(conf["rootfs"] ?? ""), "volume");
    const out: Record<string, unknown> = {
      vmid: ct.vmid,
      type: "lxc",
      status: ct.status,
      name: conf["hostname"] ?? `CT${ct.vmid}`,
      cpus: Number(conf["cores"] ?? 1),
      maxmem: Number(conf["memory"] ?? 512) * MiB,
      mem: running ? 48 * MiB : 0,
      maxswap: Number(conf["swap"] ?? 512) * MiB,
      swap: 0,
      maxdisk: sizeToBytes(typeof rootfs === "string" ? undefined : rootfs.get("size")),
      disk: running ? 256 * MiB : 0,
      cpu: 0,
      uptime: running && ct.startedAt ? Math.max(0, Math.floor(Date.now() / 1000) - ct.startedAt) : 0,
      netin: 0,
      netout: 0,
      diskread: 0,
      diskwrite: 0,
    };
    if (conf["lock"] !== undefined) out["lock"] = conf["lock"];
    if (conf["tags"] !== undefined) out["tags"] = conf["tags"];
    if (conf["template"] === 1) out["template"] = 1;
    if (running) {
      const pid = this.core.runtime.pid(ct.vmid);
      if (pid !== undefined) out["pid"] = pid;
    }
    return out;
  }

  private list(c: RouteContext): unknown {
    const node = c.params["node"]!;
    return Object.values(this.core.store.data.containers)
      .filter((ct) => ct.node === node && hasVmPriv(c.identity, ct.vmid, ct.pool, "VM.Audit"))
      .map((ct) => this.summary(ct));
  }

  private statusOf(ct: ContainerState): unknown {
    return { ...this.summary(ct), ha: { managed: 0 } };
  }

  private create(c: RouteContext): unknown {
    const core = this.core;
    const node = c.params["node"]!;
    const p = routeInput(c, CREATE_SCHEMA);
    const vmid = Number(p["vmid"]);
    const id = c.identity;

    // VM.Allocate on the guest, or on the pool it goes into.
    const pool = p["pool"] as string | undefined;
    if (pool !== undefined) {
      if (!core.config.pools.includes(pool)) throw fail(`pool '${pool}' does not exist`);
      checkPriv(id, `/pool/${pool}`, ["VM.Allocate"]);
    } else checkPriv(id, `/vms/${vmid}`, ["VM.Allocate"]);

    const existing = findContainer(core, vmid);
    if (existing) throw fail(`CT ${vmid} already exists on node '${existing.node}'`);

    const storageId = String(p["storage"]);
    const rootfsIn = p["rootfs"] !== undefined ? String(p["rootfs"]) : `${storageId}:4`;
    const rootParsed = parsePropertyString(rootfsIn, "volume") as Map<string, string>;
    const rootVol = rootParsed.get("volume")!;
    const rootStorageId = rootVol.startsWith("/") ? undefined : rootVol.slice(0, rootVol.indexOf(":"));
    if (rootStorageId !== undefined) {
      const storage = requireStorage(core, node, rootStorageId);
      if (!storage.content.includes("rootdir"))
        throw fail(`storage '${rootStorageId}' does not support container directories`);
      checkPriv(id, `/storage/${rootStorageId}`, ["Datastore.AllocateSpace"]);
    }

    const ostemplate = String(p["ostemplate"]);
    const tplStorageId = ostemplate.includes(":") ? ostemplate.slice(0, ostemplate.indexOf(":")) : "";
    requireStorage(core, node, tplStorageId);
    checkAnyPriv(id, `/storage/${tplStorageId}`, ["Datastore.AllocateSpace", "Datastore.Audit"]);
    // Privileges of the config keys (and root-only options) are checked before the template is looked at.
    const configKeys = Object.keys(p).filter((k) => !CREATE_ONLY_PARAMS.has(k));
    checkConfigPrivs(
      id,
      vmid,
      pool,
      configKeys.filter((k) => c.input[k] !== undefined),
    );
    checkRootOnly(id, p, true);
    const template = findVolume(core, node, ostemplate);
    // inferred text: the template volume is not on this node's storage.
    if (!template || template.content !== "vztmpl") throw fail(`volume '${ostemplate}' does not exist`);

    // Config with `lock: create` exists from now on: the vmid is taken, and config/start/destroy are refused.
    const conf: Record<string, ConfValue> = { arch: "amd64" };
    for (const k of configKeys) conf[k] = normaliseConfigValue(k, p[k]!);
    conf["hostname"] ??= `CT${vmid}`;
    for (const k of Object.keys(conf))
      if (/^net\d+$/.test(k)) conf[k] = printNet(String(conf[k]), randomHwaddr);
    const image = template.reference;
    if (image) {
      // PVE 9.1 OCI: the image's Entrypoint+Cmd become `entrypoint`, and its Env replaces any env passed here.
      const entry = matchImage(core.config.catalog, image);
      const ep = [...(entry?.entrypoint ?? []), ...(entry?.cmd ?? [])];
      if (ep.length > 0) conf["entrypoint"] = ep.join(" ");
      if (entry?.env && entry.env.length > 0) conf["env"] = entry.env.join("\0");
      else delete conf["env"];
      for (const k of Object.keys(conf)) {
        if (/^net\d+$/.test(k) && !/(^|,)host-managed=/.test(String(conf[k])))
          conf[k] = printNet(`${conf[k]},host-managed=1`, randomHwaddr);
      }
    } else if (/debian|ubuntu|alpine|centos|fedora|archlinux/.test(ostemplate)) {
      conf["ostype"] ??= /debian|ubuntu|alpine|centos|fedora|archlinux/.exec(ostemplate)![0];
    }
    conf["lock"] = "create";
    const data = core.store.data;
    const ct: ContainerState = {
      vmid,
      node,
      conf,
      pending: {},
      pendingDelete: [],
      status: "stopped",
      address: core.addresses.address(data.nextAddress++),
      pool,
      image,
    };
    data.containers[String(vmid)] = ct;
    this.changed();

    return core.tasks.start(node, "vzcreate", String(vmid), id.authid, async (t) => {
      try {
        t.log(`extracting archive '${ostemplate}'`);
        await t.sleep(core.config.durations.create);
        if (rootStorageId !== undefined) {
          const storage = requireStorage(core, node, rootStorageId);
          const size = /^\d+(\.\d+)?$/.test(rootVol.slice(rootStorageId.length + 1))
            ? rootVol.slice(rootStorageId.length + 1)
            : "4";
          const volname =
            storage.type === "dir" || storage.type === "nfs"
              ? `${vmid}/vm-${vmid}-disk-0.raw`
              : `vm-${vmid}-disk-0`;
          const volid = `${rootStorageId}:${volname}`;
          volumesOf(core, storage, node).push({
            volid,
            content: "rootdir",
            format: "raw",
            size: Number(size) * GiB,
            ctime: Math.floor(Date.now() / 1000),
            vmid,
          });
          rootParsed.delete("volume");
          rootParsed.set("size", `${size}G`);
          ct.conf["rootfs"] = [volid, ...[...rootParsed].map(([k, v]) => `${k}=${v}`)].join(",");
        }
        t.log("Total bytes read: 134217728 (128MiB)");
        delete ct.conf["lock"];
        this.changed();
        emitContainer(core, "created", ct);
      } catch (e) {
        // A failed creation removes the config again.
        this.removeContainer(ct);
        throw e;
      }
      if (p["start"] === 1) {
        t.log(`starting CT ${vmid}`);
        this.startTask(ct, id.authid);
      }
    });
  }

  private removeContainer(ct: ContainerState): void {
    const data = this.core.store.data;
    if (data.containers[String(ct.vmid)] === ct) delete data.containers[String(ct.vmid)];
    if (ct.conf["lock"] === undefined) emitContainer(this.core, "destroyed", ct);
    for (const list of Object.values(data.volumes)) {
      for (let i = list.length - 1; i >= 0; i--)
        if (list[i]!.vmid === ct.vmid && list[i]!.content === "rootdir") list.splice(i, 1);
    }
    this.changed();
  }

  private getConfig(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.Audit");
    const current = c.input["current"] !== undefined && /^(1|true|yes|on)$/i.test(String(c.input["current"]));
    return { ...effectiveConfig(ct, current), digest: configDigest(ct) };
  }

  private pending(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.Audit");
    const keys = new Set([...Object.keys(ct.conf), ...Object.keys(ct.pending), ...ct.pendingDelete]);
    return [...keys]
      .filter((k) => k !== "lock")
      .sort()
      .map((key) => {
        const e: Record<string, unknown> = { key };
        if (ct.conf[key] !== undefined) e["value"] = ct.conf[key];
        if (ct.pending[key] !== undefined) e["pending"] = ct.pending[key];
        if (ct.pendingDelete.includes(key)) e["delete"] = 1;
        return e;
      });
  }

  private putConfig(c: RouteContext): unknown {
    const vmid = this.vmid(c);
    const node = c.params["node"]!;
    const p = routeInput(c, UPDATE_SCHEMA);
    const id = c.identity;
    checkSkiplock(id, p);
    if (Object.keys(p).every((k) => UPDATE_CONTROL_PARAMS.has(k))) throw fail("no options specified");
    const deletes = splitList(String(p["delete"] ?? ""));
    const reverts = splitList(String(p["revert"] ?? ""));
    const keys = Object.keys(p).filter(
      (k) => !UPDATE_CONTROL_PARAMS.has(k) && k !== "delete" && k !== "revert",
    );
    const ct = containerOn(this.core, node, vmid);
    if (p["skiplock"] !== 1) {
      const locked = lockError(ct);
      if (locked) throw locked;
    }
    if (p["digest"] !== undefined && p["digest"] !== configDigest(ct))
      throw fail("detected modified configuration - file changed by other user? Try again.");
    checkConfigPrivs(id, vmid, ct.pool, deletes);
    for (const k of deletes) {
      if (!optionExists(k)) throw paramError({ delete: `unknown option '${k}'` });
      if (keys.includes(k))
        throw paramError({ delete: `you can't use '-${k}' and -delete ${k}' at the same time` });
    }
    checkConfigPrivs(id, vmid, ct.pool, keys);
    checkRootOnly(id, p, false);

    const set: Record<string, ConfValue> = {};
    for (const k of keys) {
      const v = normaliseConfigValue(k, p[k]!);
      set[k] = /^net\d+$/.test(k) ? printNet(String(v), randomHwaddr) : v;
    }
    const running = ct.status === "running";
    const next = updatePctConfig(ct, { set, delete: deletes, revert: reverts }, running);
    ct.conf = next.conf;
    ct.pending = next.pending;
    ct.pendingDelete = next.pendingDelete;
    this.changed();
    return null;
  }

  private start(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.PowerMgmt");
    const locked = lockError(ct);
    if (locked) throw locked;
    if (ct.status === "running") throw fail(`CT ${ct.vmid} already running`);
    return this.startTask(ct, c.identity.authid);
  }

  startTask(ct: ContainerState, user: string): string {
    const core = this.core;
    return core.tasks.start(ct.node, "vzstart", String(ct.vmid), user, (t) =>
      this.exclusive(ct.vmid, async () => {
        await t.sleep(core.config.durations.start);
        if (findContainer(core, ct.vmid) !== ct)
          throw fail(`Configuration file 'nodes/${ct.node}/lxc/${ct.vmid}.conf' does not exist`);
        if (ct.status === "running") throw fail(`CT ${ct.vmid} already running`);
        const locked = lockError(ct);
        if (locked) throw locked;
        // Pending changes take effect at start.
        Object.assign(ct.conf, ct.pending);
        for (const k of ct.pendingDelete) delete ct.conf[k];
        ct.pending = {};
        ct.pendingDelete = [];
        await this.spawn(ct);
        // A process that dies at once makes the start fail, as lxc-start does when init exits.
        await core.runtime.settle(ct.vmid, core.config.startSettleMs);
        if (!core.runtime.isRunning(ct.vmid)) throw fail(`startup for container '${ct.vmid}' failed`);
      }),
    );
  }

  /** Starts the container's process and marks it running (also used to resume containers after a restart). */
  async spawn(ct: ContainerState): Promise<void> {
    const core = this.core;
    const entry = ct.image ? matchImage(core.config.catalog, ct.image) : undefined;
    const port = entry?.port ?? 636;
    const hostname = String(ct.conf["hostname"] ?? `CT${ct.vmid}`);
    const env: Record<string, string> = {};
    for (const [k, v] of parseEnv(ct.conf["env"])) env[k] = v;
    for (const k of entry?.inheritEnv ?? ["PATH", "HOME", "TMPDIR"]) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    // The container's own address: the only one it could bind to in its network namespace.
    env["BIND_IP"] = ct.address;
    env["PVE_SIM_ADDRESS"] = ct.address;
    env["PVE_SIM_PORT"] = String(port);
    env["PVE_SIM_VMID"] = String(ct.vmid);
    env["HOSTNAME"] = hostname;
    if (ct.conf["entrypoint"] !== undefined) env["PVE_SIM_ENTRYPOINT"] = String(ct.conf["entrypoint"]);
    const subst = (a: string) =>
      a
        .replaceAll("{address}", ct.address)
        .replaceAll("{port}", String(port))
        .replaceAll("{vmid}", String(ct.vmid))
        .replaceAll("{hostname}", hostname);
    ct.status = "running";
    ct.booted = false;
    ct.startedAt = Math.floor(Date.now() / 1000);
    try {
      await core.runtime.start(
        {
          vmid: ct.vmid,
          address: ct.address,
          port,
          command: (entry?.command ?? []).map(subst),
          builtin: entry?.builtin ?? false,
          env,
          cwd: entry?.cwd,
        },
        () => {
          // Whether asked for or not (a crash, a kill), a container whose process ended is stopped.
          ct.status = "stopped";
          ct.booted = false;
          ct.startedAt = undefined;
          this.changed();
          emitContainer(core, "stopped", ct);
        },
      );
    } catch (e) {
      ct.status = "stopped";
      ct.startedAt = undefined;
      this.changed();
      throw fail(`startup for container '${ct.vmid}' failed: ${(e as Error).message}`);
    }
    this.changed();
    emitContainer(core, "started", ct);
  }

  private stop(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.PowerMgmt");
    const p = routeInput(c, {
      properties: {
        skiplock: { type: "boolean", optional: true },
        "overrule-shutdown": { type: "boolean", optional: true },
      },
    });
    checkSkiplock(c.identity, p);
    if (ct.status !== "running") throw fail(`CT ${ct.vmid} not running`);
    const core = this.core;
    return core.tasks.start(ct.node, "vzstop", String(ct.vmid), c.identity.authid, async (t) => {
      // Before taking the config lock, which a hanging shutdown holds.
      if (p["overrule-shutdown"] === 1) {
        const overruled = this.shutdowns.abort(ct.vmid);
        if (overruled.length > 0) t.log(`overruled vzshutdown tasks: ${overruled.join(", ")}`);
      }
      await this.exclusive(ct.vmid, async () => {
        await t.sleep(core.config.durations.stop);
        if (ct.status !== "running") throw fail(`CT ${ct.vmid} not running`);
        await core.runtime.stop(ct.vmid, core.config.stopGraceMs);
      });
    });
  }

  private shutdown(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.PowerMgmt");
    const p = routeInput(c, {
      properties: {
        timeout: { type: "integer", minimum: 0, default: 60 },
        forceStop: { type: "boolean", default: 0 },
      },
    });
    if (ct.status !== "running") throw fail(`CT ${ct.vmid} not running`);
    const core = this.core;
    const timeout = Number(p["timeout"]);
    const vmid = ct.vmid;
    return core.tasks.start(ct.node, "vzshutdown", String(vmid), c.identity.authid, (t) => {
      const signal = this.shutdowns.add(vmid, t.upid);
      const work = this.exclusive(vmid, async () => {
        // An overruled task that was still waiting for the lock does nothing.
        if (signal.aborted) return;
        await untilAborted(signal, t.sleep(core.config.durations.shutdown));
        if (ct.status !== "running") throw fail(`CT ${vmid} not running`);
        // `timeout` is in real seconds (not scaled): it bounds how long the process may take to exit.
        if (await untilAborted(signal, core.runtime.shutdown(vmid, timeout * 1000))) return;
        if (p["forceStop"] === 1) {
          await core.runtime.stop(vmid, 0);
          return;
        }
        // inferred: lxc-stop --nokill gives up and the task fails with the command's error.
        throw fail(`command 'lxc-stop -n ${vmid} --nokill --timeout ${timeout}' failed: exit code 1`);
      });
      return untilAborted(signal, work).finally(() => this.shutdowns.remove(vmid, t.upid));
    });
  }

  private interfaces(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.Audit");
    if (ct.status !== "running") throw fail(`CT ${ct.vmid} not running`);
    const out: Record<string, string>[] = [
      { name: "lo", hwaddr: "00:00:00:00:00:00", inet: "127.0.0.1/8", inet6: "::1/128" },
    ];
    let first = true;
    for (const k of Object.keys(ct.conf)
      .filter((x) => /^net\d+$/.test(x))
      .sort()) {
      const net = parsePropertyString(String(ct.conf[k])) as Map<string, string>;
      const e: Record<string, string> = {
        name: net.get("name") ?? "eth0",
        hwaddr: (net.get("hwaddr") ?? "").toLowerCase(),
      };
      // The container's address is its loopback address whatever net0 says, so clients on this machine reach it.
      if (first) e["inet"] = `${ct.address}/8`;
      first = false;
      out.push(e);
    }
    return out;
  }

  private destroy(c: RouteContext): unknown {
    const ct = this.ct(c, "VM.Allocate");
    const p = routeInput(c, {
      properties: {
        force: { type: "boolean", default: 0 },
        purge: { type: "boolean", default: 0 },
        "destroy-unreferenced-disks": { type: "boolean", optional: true },
      },
    });
    if (ct.conf["protection"] === 1) throw fail(`can't remove CT ${ct.vmid} - protection mode enabled`);
    const locked = lockError(ct);
    if (locked) throw locked;
    const runningMsg = `unable to destroy CT ${ct.vmid} - container is running`;
    if (ct.status === "running" && p["force"] !== 1) throw fail(runningMsg);
    const core = this.core;
    return core.tasks.start(ct.node, "vzdestroy", String(ct.vmid), c.identity.authid, (t) =>
      this.exclusive(ct.vmid, async () => {
        await t.sleep(core.config.durations.destroy);
        if (findContainer(core, ct.vmid) !== ct)
          throw fail(`Configuration file 'nodes/${ct.node}/lxc/${ct.vmid}.conf' does not exist`);
        const l = lockError(ct);
        if (l) throw l;
        if (ct.status === "running") {
          if (p["force"] !== 1) throw fail(runningMsg);
          t.log(`stopping CT ${ct.vmid}`);
          await core.runtime.stop(ct.vmid, core.config.stopGraceMs);
        }
        t.log(`destroying CT ${ct.vmid}`);
        if (p["purge"] === 1) t.log(`purging CT ${ct.vmid} from related configurations..`);
        this.removeContainer(ct);
      }),
    );
  }
}
