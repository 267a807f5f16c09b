/**
 * The operator's Proxmox VE client: proxmox-api's typed proxy over the project's own engine (TLS per
 * endpoint, keep-alive, timeouts, cancellation, classified errors, retries of safe calls only), with one
 * typed operation per call the operator makes, including the PVE 9.1 ones proxmox-api's types lack.
 *
 * Long operations return their task id (UPID) at once; the caller records it and asks `taskStatus` later
 * rather than waiting inside a reconcile. A POST or DELETE whose outcome is unknown rejects with
 * `OutcomeUnknown` and is never repeated by the client.
 */
import { proxmoxApi, type Proxmox } from "proxmox-api";
import { RequestEngine, type CallOptions } from "./engine.js";
import { ProxmoxVersionError, proxmoxError, type ProxmoxError } from "./errors.js";
import type { Params } from "./form.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
import { TaskWaitTimeout, taskOutcome } from "./tasks.js";
import { Transport, type TransportOptions } from "./transport.js";
import type {
  ClusterResource,
  ConfigChange,
  ContainerConfig,
  ContainerCreate,
  ContainerOptions,
  ContainerStatus,
  LdapRealmCreate,
  LdapRealmOptions,
  NetworkInterface,
  NodeDns,
  PendingEntry,
  PveVersion,
  RealmConfig,
  RealmSummary,
  RealmSyncOptions,
  StorageVolume,
  TaskLogLine,
  TaskStatus,
} from "./types.js";
import { requireUpid } from "./upid.js";
import { versionVerdict } from "./version.js";

export type { CallOptions } from "./engine.js";

export interface ProxmoxClientOptions extends TransportOptions {
  /** Retries of GETs and configuration PUTs (defaults: DEFAULT_RETRY). */
  retry?: Partial<RetryPolicy>;
}

export interface ShutdownOptions {
  /** Seconds to wait for the container to exit (Proxmox's default: 60). */
  timeout?: number;
  /** Stop it hard once the timeout has passed, instead of failing the task. */
  forceStop?: boolean;
}

export interface StopOptions {
  /** Abort a running `vzshutdown` task of the container first: a hanging graceful stop becomes a hard one. */
  overruleShutdown?: boolean;
}

export interface DeleteOptions {
  /** Also remove it from backup, replication and HA jobs. */
  purge?: boolean;
  /** Stop it first if it runs. */
  force?: boolean;
  destroyUnreferencedDisks?: boolean;
}

export interface WaitOptions extends CallOptions {
  /** Between two status reads (default 500 ms). */
  pollMs?: number;
  /** Give up waiting after this long (default 10 min); the task itself goes on. */
  waitTimeoutMs?: number;
}

/** Paths of PVE 9.1 that proxmox-api 1.1.1 does not know. */
interface OciPullPath {
  "oci-registry-pull": { $post(p: { reference: string; filename?: string }): Promise<string> };
}

const TASK_LOG_PAGE = 1000;

/** A path segment, escaped; `:` and `@` stay readable (a UPID is made of them, and they are valid in a path). */
function seg(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ":").replace(/%40/g, "@");
}

/** `{set, delete, digest}` as the PUT's parameters; an empty delete list is left out. */
function changeParams<T extends object>(change: ConfigChange<T>): Params {
  const params: Record<string, Params[string]> = { ...(change.set as Params | undefined) };
  if (change.delete && change.delete.length > 0) params["delete"] = change.delete.join(",");
  if (change.digest !== undefined) params["digest"] = change.digest;
  return params;
}

export class ProxmoxClient {
  readonly endpoint: string;
  readonly tokenId: string;
  private readonly transport: Transport;
  private readonly engine: RequestEngine;

  constructor(o: ProxmoxClientOptions) {
    this.transport = new Transport(o);
    this.endpoint = this.transport.endpoint;
    this.tokenId = this.transport.tokenId;
    this.engine = new RequestEngine(this.transport, { ...DEFAULT_RETRY, ...o.retry });
  }

  /** Closes the kept connections. */
  close(): void {
    this.transport.close();
  }

  /** The typed proxy, its calls carrying these options. */
  api(opts: CallOptions = {}): Proxmox.Api {
    return proxmoxApi(this.engine.bind(opts));
  }

  // --- Cluster -------------------------------------------------------------------------------------

  version(opts?: CallOptions): Promise<PveVersion> {
    return this.api(opts).version.$get() as Promise<PveVersion>;
  }

  /** The version, or a ProxmoxVersionError when it is older than 9.1 (no OCI containers). */
  async checkVersion(opts?: CallOptions): Promise<PveVersion> {
    const v = await this.version(opts);
    const verdict = versionVerdict(v);
    if (verdict.supported) return v;
    throw new ProxmoxVersionError(
      {
        method: "GET",
        path: "/version",
        endpoint: this.endpoint,
        tokenId: this.tokenId,
        errorClass: "permanent",
        reason: "unsupported-version",
        message: `${this.endpoint}: ${verdict.reason}`,
      },
      v.version,
    );
  }

  /** The lowest free vmid. It reserves nothing: a create can still find it taken (`already exists`). */
  async nextId(opts?: CallOptions): Promise<number> {
    const raw: unknown = await this.api(opts).cluster.nextid.$get();
    const id = Number(raw);
    if (!Number.isInteger(id) || id < 100)
      throw this.malformed("GET", "/cluster/nextid", `nextid ${JSON.stringify(raw)}`);
    return id;
  }

  /** Every guest of the cluster in one call (`/cluster/resources?type=vm`): the cheap way to watch drift. */
  async clusterResources(opts?: CallOptions): Promise<ClusterResource[]> {
    const list = (await this.api(opts).cluster.resources.$get({
      type: "vm",
    })) as unknown as ClusterResource[];
    return list.map((r) => ({ ...r, vmid: Number(r.vmid) }));
  }

  // --- Storage and images --------------------------------------------------------------------------

  storageContent(
    node: string,
    storage: string,
    content?: string,
    opts?: CallOptions,
  ): Promise<StorageVolume[]> {
    const c = this.api(opts).nodes.$(seg(node)).storage.$(seg(storage)).content;
    const params = content === undefined ? undefined : { content };
    return c.$get(params as Parameters<typeof c.$get>[0]) as unknown as Promise<StorageVolume[]>;
  }

  /** Starts an OCI pull (`ociregistrypull` task). `reference` needs a tag; Proxmox refuses digests and overwrites. */
  pullOciImage(
    node: string,
    storage: string,
    image: { reference: string; filename?: string },
    opts?: CallOptions,
  ): Promise<string> {
    const s = this.api(opts).nodes.$(seg(node)).storage.$(seg(storage)) as unknown as OciPullPath;
    return s["oci-registry-pull"].$post(image);
  }

  // --- Containers ----------------------------------------------------------------------------------

  private ct(node: string, vmid: number, opts?: CallOptions) {
    return this.api(opts).nodes.$(seg(node)).lxc.$(vmid);
  }

  /** Starts a `vzcreate` task. The vmid is taken (config with `lock: create`) from the moment it answers. */
  createContainer(node: string, params: ContainerCreate, opts?: CallOptions): Promise<string> {
    const lxc = this.api(opts).nodes.$(seg(node)).lxc;
    return lxc.$post(params as unknown as Parameters<typeof lxc.$post>[0]);
  }

  /** The config (pending values applied, unless `current`) and its digest. */
  containerConfig(
    node: string,
    vmid: number,
    o: { current?: boolean } & CallOptions = {},
  ): Promise<ContainerConfig> {
    const params = o.current ? { current: true } : undefined;
    return this.ct(node, vmid, o).config.$get(params) as unknown as Promise<ContainerConfig>;
  }

  /** PUT config: `set` keys, `delete` keys, against `digest` when given. Synchronous; repeated when transient. */
  async updateContainerConfig(
    node: string,
    vmid: number,
    change: ConfigChange<ContainerOptions>,
    opts?: CallOptions,
  ): Promise<void> {
    const config = this.ct(node, vmid, opts).config;
    await config.$put(changeParams(change) as Parameters<typeof config.$put>[0]);
  }

  /** Each key's current value, the value waiting for the next start, or a pending delete. */
  containerPending(node: string, vmid: number, opts?: CallOptions): Promise<PendingEntry[]> {
    return this.ct(node, vmid, opts).pending.$get() as unknown as Promise<PendingEntry[]>;
  }

  containerStatus(node: string, vmid: number, opts?: CallOptions): Promise<ContainerStatus> {
    return this.ct(node, vmid, opts).status.current.$get() as Promise<ContainerStatus>;
  }

  /** Interfaces of a running container; `inet` is `10.0.0.5/24`. */
  containerInterfaces(node: string, vmid: number, opts?: CallOptions): Promise<NetworkInterface[]> {
    return this.ct(node, vmid, opts).interfaces.$get() as Promise<NetworkInterface[]>;
  }

  /** Starts a `vzstart` task; pending config changes apply at this start. */
  startContainer(node: string, vmid: number, opts?: CallOptions): Promise<string> {
    return this.ct(node, vmid, opts).status.start.$post();
  }

  /** Starts a `vzshutdown` task: a clean stop within `timeout` seconds, then a hard one with `forceStop`. */
  shutdownContainer(
    node: string,
    vmid: number,
    o: ShutdownOptions = {},
    opts?: CallOptions,
  ): Promise<string> {
    return this.ct(node, vmid, opts).status.shutdown.$post({
      ...(o.timeout !== undefined ? { timeout: o.timeout } : {}),
      ...(o.forceStop !== undefined ? { forceStop: o.forceStop } : {}),
    });
  }

  /** Starts a `vzstop` task (a hard stop). */
  stopContainer(node: string, vmid: number, o: StopOptions = {}, opts?: CallOptions): Promise<string> {
    const stop = this.ct(node, vmid, opts).status.stop;
    const params = o.overruleShutdown ? { "overrule-shutdown": true } : {};
    return stop.$post(params as Parameters<typeof stop.$post>[0]);
  }

  /** Starts a `vzdestroy` task. */
  deleteContainer(node: string, vmid: number, o: DeleteOptions = {}, opts?: CallOptions): Promise<string> {
    return this.ct(node, vmid, opts).$delete({
      ...(o.purge !== undefined ? { purge: o.purge } : {}),
      ...(o.force !== undefined ? { force: o.force } : {}),
      ...(o.destroyUnreferencedDisks !== undefined
        ? { "destroy-unreferenced-disks": o.destroyUnreferencedDisks }
        : {}),
    });
  }

  // --- Tasks ---------------------------------------------------------------------------------------

  /** Asked of the node named in the UPID, wherever the request that started it went. */
  async taskStatus(upid: string, opts?: CallOptions): Promise<TaskStatus> {
    const { node } = requireUpid(upid);
    return this.api(opts).nodes.$(seg(node)).tasks.$(seg(upid)).status.$get() as Promise<TaskStatus>;
  }

  /** Lines `start` (0-based) to `start + limit` of the task's log. */
  async taskLog(
    upid: string,
    o: { start?: number; limit?: number } & CallOptions = {},
  ): Promise<TaskLogLine[]> {
    const { node } = requireUpid(upid);
    return this.api(o)
      .nodes.$(seg(node))
      .tasks.$(seg(upid))
      .log.$get({ start: o.start ?? 0, limit: o.limit ?? TASK_LOG_PAGE }) as Promise<TaskLogLine[]>;
  }

  /** The whole log, read page by page (a short page is the last). */
  async taskLogAll(upid: string, opts?: CallOptions): Promise<TaskLogLine[]> {
    const all: TaskLogLine[] = [];
    for (;;) {
      const page = await this.taskLog(upid, { ...opts, start: all.length, limit: TASK_LOG_PAGE });
      all.push(...page);
      if (page.length < TASK_LOG_PAGE) return all;
    }
  }

  /**
   * Polls until the task has ended and returns its final status (check it with `taskOutcome`). For tests,
   * tools and short tasks; a reconcile records the UPID and asks `taskStatus` on its next pass instead.
   */
  async waitForTask(upid: string, o: WaitOptions = {}): Promise<TaskStatus> {
    const deadline = Date.now() + (o.waitTimeoutMs ?? 600_000);
    for (;;) {
      const status = await this.taskStatus(upid, o);
      if (taskOutcome(status).state !== "running") return status;
      if (Date.now() > deadline) throw new TaskWaitTimeout(upid, o.waitTimeoutMs ?? 600_000);
      await sleep(o.pollMs ?? 500, o.signal);
    }
  }

  // --- Realms --------------------------------------------------------------------------------------

  realms(opts?: CallOptions): Promise<RealmSummary[]> {
    return this.api(opts).access.domains.$get() as Promise<RealmSummary[]>;
  }

  /** The realm's stored options (never its bind password) and digest. */
  realm(name: string, opts?: CallOptions): Promise<RealmConfig> {
    return this.api(opts).access.domains.$(seg(name)).$get() as Promise<RealmConfig>;
  }

  async createRealm(params: LdapRealmCreate, opts?: CallOptions): Promise<void> {
    const domains = this.api(opts).access.domains;
    await domains.$post(params as unknown as Parameters<typeof domains.$post>[0]);
  }

  /** PUT only with something to change: Proxmox answers `no options specified` to an empty one. */
  async updateRealm(name: string, change: ConfigChange<LdapRealmOptions>, opts?: CallOptions): Promise<void> {
    const realm = this.api(opts).access.domains.$(seg(name));
    await realm.$put(changeParams(change) as Parameters<typeof realm.$put>[0]);
  }

  async deleteRealm(name: string, opts?: CallOptions): Promise<void> {
    await this.api(opts).access.domains.$(seg(name)).$delete();
  }

  /** Starts an `auth-realm-sync` task on the node that receives the request. */
  syncRealm(name: string, o: RealmSyncOptions = {}, opts?: CallOptions): Promise<string> {
    const sync = this.api(opts).access.domains.$(seg(name)).sync;
    return sync.$post(o as Parameters<typeof sync.$post>[0]);
  }

  // --- Node DNS ------------------------------------------------------------------------------------

  nodeDns(node: string, opts?: CallOptions): Promise<NodeDns> {
    return this.api(opts).nodes.$(seg(node)).dns.$get() as Promise<NodeDns>;
  }

  /** `search` is required; Proxmox renumbers the nameservers it is given (dns1, dns3 read back as dns1, dns2). */
  async updateNodeDns(node: string, dns: NodeDns & { search: string }, opts?: CallOptions): Promise<void> {
    const d = this.api(opts).nodes.$(seg(node)).dns;
    await d.$put(dns as Parameters<typeof d.$put>[0]);
  }

  private malformed(method: string, path: string, detail: string): ProxmoxError {
    return proxmoxError(
      { method, path, endpoint: this.endpoint, tokenId: this.tokenId },
      { type: "network", sent: true, malformed: true },
      { detail },
    );
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
