// A steady stream of user lookups through a FailoverClient, like the
// containers of a site calling `getent passwd` while the LDAP pair is being
// updated. The report lists every failed lookup with its time and, per
// server, the windows during which the client held it unavailable.
import type { FailoverClient, LookupOutcome } from "./client.js";

export interface FailedLookup {
  at: number;
  uid: string;
  reason: "not-found" | "offline" | "error";
  error?: string;
  server?: string;
  ms: number;
}

export interface Window {
  from: number;
  /** Undefined while still open at report time. */
  to?: number;
}

export interface StreamReport {
  startedAt: number;
  endedAt: number;
  total: number;
  succeeded: number;
  failed: FailedLookup[];
  /** Successful lookups per server. */
  servedBy: Record<string, number>;
  /** From the client marking a server failed to its next successful use. */
  unavailable: Record<string, Window[]>;
  /** Periods in which the client was offline (no server at all). */
  offline: Window[];
  maxLatencyMs: number;
  /** Server switches, in order: [time, server]. */
  switches: [number, string][];
}

export interface LookupStreamOptions {
  client: FailoverClient;
  /** Users that exist; looked up round-robin. */
  uids: string[];
  /** Time between lookup starts (SSSD measurement: 200 ms, 5 per second). */
  intervalMs?: number;
}

export class LookupStream {
  private readonly results: { at: number; uid: string; r: LookupOutcome }[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  private startedAt = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: LookupStreamOptions) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = Date.now();
    const interval = this.opts.intervalMs ?? 200;
    this.loop = (async () => {
      let i = 0;
      let next = Date.now();
      while (this.running) {
        const uid = this.opts.uids[i++ % this.opts.uids.length]!;
        const at = Date.now();
        const r = await this.opts.client.lookupUser(uid);
        this.results.push({ at, uid, r });
        next = Math.max(next + interval, Date.now());
        const wait = next - Date.now();
        if (wait > 0 && this.running) {
          await new Promise<void>((resolve) => {
            const t = setTimeout(resolve, wait);
            this.wake = () => {
              clearTimeout(t);
              resolve();
            };
          });
        }
      }
    })();
  }

  /** Stops after the lookup in flight and returns the report. */
  async stop(): Promise<StreamReport> {
    this.running = false;
    this.wake?.();
    await this.loop;
    return this.report();
  }

  report(): StreamReport {
    const failed: FailedLookup[] = [];
    const servedBy: Record<string, number> = {};
    const switches: [number, string][] = [];
    let maxLatencyMs = 0;
    let last: string | undefined;
    for (const { at, uid, r } of this.results) {
      maxLatencyMs = Math.max(maxLatencyMs, r.ms);
      if (r.ok) {
        servedBy[r.server] = (servedBy[r.server] ?? 0) + 1;
        if (r.server !== last) switches.push([at, r.server]);
        last = r.server;
      } else {
        failed.push({
          at,
          uid,
          reason: r.reason,
          ms: r.ms,
          ...(r.error ? { error: r.error } : {}),
          ...(r.server ? { server: r.server } : {}),
        });
      }
    }
    const unavailable: Record<string, Window[]> = {};
    const offline: Window[] = [];
    for (const e of this.opts.client.events) {
      if (e.event === "failed") {
        const list = (unavailable[e.server] ??= []);
        if (!list.length || list[list.length - 1]!.to !== undefined) list.push({ from: e.at });
      } else if (e.event === "connected") {
        const open = unavailable[e.server]?.at(-1);
        if (open && open.to === undefined) open.to = e.at;
      } else if (e.event === "offline") {
        if (!offline.length || offline[offline.length - 1]!.to !== undefined) offline.push({ from: e.at });
      } else if (e.event === "online") {
        const open = offline.at(-1);
        if (open && open.to === undefined) open.to = e.at;
      }
    }
    return {
      startedAt: this.startedAt,
      endedAt: Date.now(),
      total: this.results.length,
      succeeded: this.results.length - failed.length,
      failed,
      servedBy,
      unavailable,
      offline,
      maxLatencyMs,
      switches,
    };
  }
}
