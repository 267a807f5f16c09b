// A directory client that fails over the way SSSD does with
// `ldap_uri = ldaps://ldap1:636, ldaps://ldap2:636` (see
// shared/reference/sssd-client.md):
// - names are resolved through the site's DNS server at connect time;
// - one long-lived connection, kept until it fails or expires;
// - on a connection error or timeout the server is marked failed and the
//   lookup in flight moves to the next server;
// - a failed server is skipped for `failedServerMemoryMs` (SSSD: 30 s);
// - no fail-back: the client stays where it is while that server works;
// - with no server left it goes offline: lookups fail at once until
//   `offlineTimeoutMs` plus a random delay has passed, the delay doubling
//   after each failed retry up to `offlineTimeoutMaxMs`.
// Every timing is configurable so tests can run in seconds.
import { Resolver } from "node:dns/promises";
import { Client, type Entry } from "ldapts";

export interface FailoverClientOptions {
  /** In order of preference, e.g. ["ldaps://ldap1:636", "ldaps://ldap2:636"]. */
  uris: string[];
  /** host:port of the DNS server that knows ldap1/ldap2. */
  dnsServer: string;
  baseDn: string;
  /** ldap_search_timeout (SSSD default 6 s). */
  searchTimeoutMs?: number;
  /** ldap_network_timeout (SSSD default 6 s). */
  connectTimeoutMs?: number;
  /** How long a failed server is skipped (SSSD: 30 s). */
  failedServerMemoryMs?: number;
  /** offline_timeout (60 s) and its random addition (0-30 s). */
  offlineTimeoutMs?: number;
  offlineRandomMs?: number;
  offlineTimeoutMaxMs?: number;
  /** ldap_connection_expire_timeout (900 s). */
  connectionLifetimeMs?: number;
  /** Optional simple bind; anonymous otherwise (REQUIRE_AUTH_FOR_SEARCH=false). */
  bindDn?: string;
  bindPassword?: string;
  /** Clock, for tests. */
  now?: () => number;
  random?: () => number;
}

export type LookupOutcome =
  | { ok: true; entry: Entry; server: string; ms: number }
  | { ok: false; reason: "not-found" | "offline" | "error"; error?: string; server?: string; ms: number };

export interface ServerEvent {
  at: number;
  server: string;
  event: "connected" | "failed" | "offline" | "online";
  detail?: string;
}

interface ServerState {
  uri: URL;
  name: string;
  failedAt: number | undefined;
}

export class FailoverClient {
  private readonly o: Required<Omit<FailoverClientOptions, "bindDn" | "bindPassword">> &
    Pick<FailoverClientOptions, "bindDn" | "bindPassword">;
  private readonly servers: ServerState[];
  private current: { server: ServerState; client: Client; since: number; confirmed: boolean } | undefined;
  private offlineUntil: number | undefined;
  private offlineDelay: number;
  private closed = false;
  /** Connection, failure and offline transitions, in order. */
  readonly events: ServerEvent[] = [];

  constructor(opts: FailoverClientOptions) {
    this.o = {
      searchTimeoutMs: 6000,
      connectTimeoutMs: 6000,
      failedServerMemoryMs: 30_000,
      offlineTimeoutMs: 60_000,
      offlineRandomMs: 30_000,
      offlineTimeoutMaxMs: 3_600_000,
      connectionLifetimeMs: 900_000,
      now: Date.now,
      random: Math.random,
      ...opts,
    };
    this.offlineDelay = this.o.offlineTimeoutMs;
    this.servers = opts.uris.map((u) => {
      const uri = new URL(u);
      return { uri, name: uri.hostname, failedAt: undefined };
    });
  }

  get currentServer(): string | undefined {
    return this.current?.server.name;
  }

  get isOffline(): boolean {
    return this.offlineUntil !== undefined;
  }

  private event(server: string, event: ServerEvent["event"], detail?: string): void {
    this.events.push({ at: this.o.now(), server, event, ...(detail ? { detail } : {}) });
  }

  private async resolve(name: string): Promise<string> {
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return name;
    const r = new Resolver({ timeout: Math.min(this.o.connectTimeoutMs, 2000), tries: 2 });
    r.setServers([this.o.dnsServer]);
    const [ip] = await r.resolve4(name);
    if (!ip) throw new Error(`${name}: no address`);
    return ip;
  }

  private async connect(s: ServerState): Promise<Client> {
    const ip = await this.resolve(s.name);
    const port = s.uri.port || (s.uri.protocol === "ldaps:" ? "636" : "389");
    const client = new Client({
      url: `${s.uri.protocol}//${ip}:${port}`,
      timeout: this.o.searchTimeoutMs,
      connectTimeout: this.o.connectTimeoutMs,
      // ldap_tls_reqcert = never: the gateway's certificate is self-signed.
      tlsOptions: { rejectUnauthorized: false, servername: s.name },
    });
    if (this.o.bindDn) await client.bind(this.o.bindDn, this.o.bindPassword ?? "");
    return client;
  }

  private markFailed(s: ServerState, why: string): void {
    if (s.failedAt === undefined) this.event(s.name, "failed", why);
    s.failedAt = this.o.now();
    if (this.current?.server === s) {
      const c = this.current.client;
      this.current = undefined;
      void c.unbind().catch(() => undefined);
    }
  }

  /** Servers worth trying now: the current one first, then the list order, skipping remembered failures. */
  private candidates(): ServerState[] {
    const now = this.o.now();
    for (const s of this.servers) {
      if (s.failedAt !== undefined && now - s.failedAt >= this.o.failedServerMemoryMs) s.failedAt = undefined;
    }
    const usable = this.servers.filter((s) => s.failedAt === undefined);
    if (this.current && usable.includes(this.current.server)) {
      return [this.current.server, ...usable.filter((s) => s !== this.current?.server)];
    }
    return usable;
  }

  private goOffline(): void {
    const now = this.o.now();
    this.offlineUntil = now + this.offlineDelay + Math.floor(this.o.random() * this.o.offlineRandomMs);
    this.event("*", "offline", `no available servers, retry in ${this.offlineUntil - now} ms`);
    this.offlineDelay = Math.min(this.offlineDelay * 2, this.o.offlineTimeoutMaxMs);
  }

  /** Looks up one user as `getent passwd uid` would. */
  async lookupUser(uid: string): Promise<LookupOutcome> {
    const started = this.o.now();
    const ms = (): number => this.o.now() - started;
    if (this.closed) return { ok: false, reason: "error", error: "client closed", ms: 0 };
    if (this.offlineUntil !== undefined) {
      // Offline: answered at once, and indistinguishable from "no such user".
      if (started < this.offlineUntil) return { ok: false, reason: "offline", ms: ms() };
      // Time to retry: forget the failures and try every server again.
      for (const s of this.servers) s.failedAt = undefined;
    }
    const filter = `(&(uid=${uid.replace(/[\\*()\0]/g, (c) => `\\${c.charCodeAt(0).toString(16).padStart(2, "0")}`)})(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))`;
    let lastError: string | undefined;
    for (const s of this.candidates()) {
      try {
        if (
          this.current &&
          (this.current.server !== s || this.o.now() - this.current.since >= this.o.connectionLifetimeMs)
        ) {
          void this.current.client.unbind().catch(() => undefined);
          this.current = undefined;
        }
        if (!this.current) {
          this.current = { server: s, client: await this.connect(s), since: this.o.now(), confirmed: false };
        }
        const { searchEntries } = await this.current.client.search(this.o.baseDn, {
          scope: "sub",
          filter,
          attributes: ["uid", "uidNumber", "gidNumber", "cn", "homeDirectory", "loginShell", "gecos"],
        });
        if (this.offlineUntil !== undefined) {
          this.offlineUntil = undefined;
          this.offlineDelay = this.o.offlineTimeoutMs;
          this.event(s.name, "online");
        }
        if (!this.current.confirmed) {
          // ldapts connects lazily: the first answer proves the connection.
          this.current.confirmed = true;
          this.event(s.name, "connected");
        }
        const entry = searchEntries.find((e) => e.uid === uid);
        if (!entry) return { ok: false, reason: "not-found", server: s.name, ms: ms() };
        return { ok: true, entry, server: s.name, ms: ms() };
      } catch (err) {
        lastError = `${s.name}: ${(err as Error).message}`;
        this.markFailed(s, (err as Error).message);
      }
    }
    if (this.offlineUntil === undefined || this.o.now() >= this.offlineUntil) this.goOffline();
    return { ok: false, reason: "offline", ...(lastError ? { error: lastError } : {}), ms: ms() };
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current?.client;
    this.current = undefined;
    await c?.unbind().catch(() => undefined);
  }
}
