// Proxmox clients shared between LdapPairs: one per endpoint, token and TLS
// trust, so pairs on one cluster with one token share its kept connections.
// A client is closed as soon as no pair uses it (the pair was deleted, or it
// moved to another endpoint or token), and a rotated token secret or CA gets
// a new client rather than a stale one.
//
// Beside each client, the facts about its endpoint that change rarely and cost
// a call to learn (the version, each node's storages) are kept for a while,
// so a steady reconcile does not ask for them every time.
import { createHash } from "node:crypto";
import { ProxmoxClient, type ProxmoxClientOptions } from "../proxmox/client.js";
import type { RetryPolicy } from "../proxmox/retry.js";
import type { PveVersion } from "../proxmox/types.js";

export interface ClientSettings {
  endpoint: string;
  tokenId: string;
  tokenSecret: string;
  ca?: string;
  insecure: boolean;
}

export interface ClientPoolOptions {
  /** Per request (default 20 s). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** How long the version and the storages of an endpoint are trusted (default 5 min). */
  factsTtlMs?: number;
  now?: () => number;
}

/** A node's storage, as `GET /nodes/{node}/storage` lists it. */
export interface NodeStorage {
  storage: string;
  /** Comma-separated content types: `vztmpl,rootdir,...` */
  content: string;
  type?: string;
}

interface Cached<T> {
  at: number;
  value: T;
}

/** The client and what is known about its endpoint. */
export class PooledClient {
  private version: Cached<PveVersion> | undefined;
  private readonly storages = new Map<string, Cached<NodeStorage[]>>();

  constructor(
    readonly client: ProxmoxClient,
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** checkVersion, remembered for a while; a failure is never remembered. */
  async checkedVersion(signal?: AbortSignal): Promise<PveVersion> {
    if (this.version && this.now() - this.version.at < this.ttlMs) return this.version.value;
    const value = await this.client.checkVersion({ signal });
    this.version = { at: this.now(), value };
    return value;
  }

  /** The storages a node offers, remembered for a while. */
  async nodeStorages(node: string, signal?: AbortSignal): Promise<NodeStorage[]> {
    const cached = this.storages.get(node);
    if (cached && this.now() - cached.at < this.ttlMs) return cached.value;
    const storage = this.client.api({ signal }).nodes.$(node).storage;
    const value = ((await storage.$get()) as unknown as NodeStorage[]).map((s) => ({
      storage: s.storage,
      content: s.content,
      type: s.type,
    }));
    this.storages.set(node, { at: this.now(), value });
    return value;
  }

  /** Forget what was learnt (after a failure that may mean the endpoint changed). */
  forgetFacts(): void {
    this.version = undefined;
    this.storages.clear();
  }
}

interface Entry {
  pooled: PooledClient;
  users: Set<string>;
}

const digest = (text: string) => createHash("sha256").update(text).digest("hex");

export class ClientPool {
  private readonly entries = new Map<string, Entry>();
  /** pair key -> the client key it uses now. */
  private readonly uses = new Map<string, string>();
  private readonly now: () => number;

  constructor(private readonly options: ClientPoolOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  /**
   * The client for `settings`, used by the pair `user` from now on; the
   * pair's previous client is released. Throws ProxmoxConfigError for an
   * endpoint or token id the client refuses.
   */
  acquire(user: string, settings: ClientSettings): PooledClient {
    const key = clientKey(settings);
    let entry = this.entries.get(key);
    if (!entry) {
      const client = new ProxmoxClient(clientOptions(settings, this.options));
      const pooled = new PooledClient(client, this.options.factsTtlMs ?? 300_000, this.now);
      entry = { pooled, users: new Set() };
      this.entries.set(key, entry);
    }
    const previous = this.uses.get(user);
    if (previous !== key) {
      if (previous !== undefined) this.drop(user, previous);
      entry.users.add(user);
      this.uses.set(user, key);
    }
    return entry.pooled;
  }

  /** The pair no longer uses a client (deleted, or its Secrets cannot be read). */
  release(user: string): void {
    const key = this.uses.get(user);
    if (key !== undefined) this.drop(user, key);
  }

  /** Clients open now. */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    for (const entry of this.entries.values()) entry.pooled.client.close();
    this.entries.clear();
    this.uses.clear();
  }

  private drop(user: string, key: string): void {
    this.uses.delete(user);
    const entry = this.entries.get(key);
    if (!entry) return;
    entry.users.delete(user);
    if (entry.users.size > 0) return;
    entry.pooled.client.close();
    this.entries.delete(key);
  }
}

/** The secret and the CA enter the key only as a digest: the key may end up in a log line. */
function clientKey(s: ClientSettings): string {
  const trust = s.insecure ? "insecure" : s.ca ? `ca:${digest(s.ca)}` : "system";
  return `${s.endpoint} ${s.tokenId} ${digest(s.tokenSecret)} ${trust}`;
}

function clientOptions(s: ClientSettings, o: ClientPoolOptions): ProxmoxClientOptions {
  return {
    endpoint: s.endpoint,
    tokenId: s.tokenId,
    tokenSecret: s.tokenSecret,
    tls: s.insecure ? { insecure: true } : s.ca ? { ca: s.ca } : {},
    ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.retry ? { retry: o.retry } : {}),
  };
}
