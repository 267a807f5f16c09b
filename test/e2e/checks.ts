// What the end-to-end tests read back from the world to judge the operator:
// the simulator's containers of a pair, a container's env decoded, the realm
// and what a sync recorded, an LDAPS search by address, the pair's events,
// and a watch over the simulator's state that records when servers were down.
import { execFile } from "node:child_process";
import { isOwnedBy } from "../../src/proxmox/tags.js";
import type { PveSimulator } from "../pve-sim/simulator.js";
import type { ContainerState } from "../pve-sim/state.js";
import type { World } from "./harness.js";
import { pveCall } from "./provision.js";

/** The containers carrying the pair's owner tag, as the simulator holds them. */
export function containersOf(sim: PveSimulator, uid: string): ContainerState[] {
  return Object.values(sim.state.containers).filter((ct) => isOwnedBy(String(ct.conf["tags"] ?? ""), uid));
}

/** Every container whose hostname is `name`, whoever owns it. */
export function containersNamed(sim: PveSimulator, name: string): ContainerState[] {
  return Object.values(sim.state.containers).filter((ct) => ct.conf["hostname"] === name);
}

/** A container's env as Proxmox stores it (NUL-separated NAME=value), decoded in order, duplicates kept. */
export function envEntries(ct: ContainerState): [string, string][] {
  const raw = String(ct.conf["env"] ?? "");
  if (raw === "") return [];
  return raw.split("\0").map((entry): [string, string] => {
    const at = entry.indexOf("=");
    return [entry.slice(0, at), entry.slice(at + 1)];
  });
}

/** The uids an anonymous LDAPS search of posixAccounts returns, sorted (ldapsearch, certificate unchecked). */
export function ldapsearchUids(address: string, baseDn: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile(
      "ldapsearch",
      ["-x", "-LLL", "-H", `ldaps://${address}:636`, "-b", baseDn, "(objectClass=posixAccount)", "uid"],
      { env: { ...process.env, LDAPTLS_REQCERT: "never" }, timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`ldapsearch against ${address}: ${stderr || err.message}`));
        resolve([...stdout.matchAll(/^uid: (.*)$/gm)].map((m) => m[1]!).sort());
      },
    );
  });
}

export type RealmConfig = Record<string, unknown>;

/** GET /access/domains/{realm} without its digest, or undefined when there is no such realm. */
export async function realmConfig(sim: PveSimulator, realm: string): Promise<RealmConfig | undefined> {
  try {
    const { digest: _digest, ...config } = (await pveCall(
      sim,
      "GET",
      `/access/domains/${realm}`,
    )) as RealmConfig;
    return config;
  } catch (err) {
    if (/does not exist/.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** The groups a sync of `realm` recorded (`<cn>-<realm>`), each with its members' uids, sorted. */
export async function syncedGroups(sim: PveSimulator, realm: string): Promise<Record<string, string[]>> {
  const groups = (await pveCall(sim, "GET", "/access/groups")) as { groupid: string; users?: string }[];
  const suffix = `-${realm}`;
  return Object.fromEntries(
    groups
      .filter((g) => g.groupid.endsWith(suffix))
      .map((g) => [
        g.groupid.slice(0, -suffix.length),
        (g.users ?? "")
          .split(",")
          .filter(Boolean)
          .map((u) => u.replace(`@${realm}`, ""))
          .sort(),
      ]),
  );
}

/** The users a sync of `realm` recorded, by uid, sorted. */
export async function syncedUsers(sim: PveSimulator, realm: string): Promise<string[]> {
  const users = (await pveCall(sim, "GET", "/access/users")) as { userid: string }[];
  return users
    .filter((u) => u.userid.endsWith(`@${realm}`))
    .map((u) => u.userid.slice(0, -`@${realm}`.length))
    .sort();
}

export interface PairEvent {
  type: string;
  reason: string;
  message: string;
  count: number;
}

/** The events about an LdapPair, oldest first (events.k8s.io's `note` is core/v1's `message`). */
export async function eventsOf(world: World, name: string): Promise<PairEvent[]> {
  const list = JSON.parse(
    await world.kubectl(
      "get",
      "events",
      `--field-selector=involvedObject.name=${name},involvedObject.kind=LdapPair`,
      "--sort-by=.metadata.creationTimestamp",
      "-o",
      "json",
    ),
  ) as {
    items: {
      type?: string;
      reason?: string;
      message?: string;
      count?: number;
      series?: { count?: number };
    }[];
  };
  return list.items.map((e) => ({
    type: e.type ?? "",
    reason: e.reason ?? "",
    message: e.message ?? "",
    count: e.series?.count ?? e.count ?? 1,
  }));
}

/** Polls `check` until it returns a value other than undefined; rejects with `what` and the last error. */
/** The header of `kubectl get ldappairs`: the CRD's printer columns without priority. */
export const DEFAULT_COLUMNS = ["NAME", "PHASE", "IMAGE", "READY", "REALM", "SERVER", "STEP", "AGE"];

export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `${what}: not within ${timeoutMs} ms${last ? ` (last: ${(last as Error).message})` : ""}`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** An interval in which a server did not serve (ms since the epoch; `to` undefined while it lasts). */
export interface Outage {
  server: string;
  from: number;
  to: number | undefined;
}

/**
 * Watches the simulator's state every few milliseconds and records, per hostname, when no container of
 * that name was running and serving (booted): what a client sees as the server being down.
 */
export class OutageWatch {
  readonly outages: Outage[] = [];
  private readonly timer: NodeJS.Timeout;
  private readonly open = new Map<string, Outage>();

  constructor(
    private readonly sim: PveSimulator,
    private readonly servers: readonly string[],
    everyMs = 10,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    const now = Date.now();
    for (const server of this.servers) {
      const up = containersNamed(this.sim, server).some((ct) => ct.status === "running" && ct.booted);
      const outage = this.open.get(server);
      if (!up && !outage) {
        const started = { server, from: now, to: undefined };
        this.open.set(server, started);
        this.outages.push(started);
      } else if (up && outage) {
        outage.to = now;
        this.open.delete(server);
      }
    }
  }

  /** The instants at which every server was down at once, as intervals. */
  allDown(): { from: number; to: number }[] {
    const [a, b] = this.servers;
    const overlaps: { from: number; to: number }[] = [];
    const end = (o: Outage) => o.to ?? Date.now();
    for (const x of this.outages.filter((o) => o.server === a))
      for (const y of this.outages.filter((o) => o.server === b)) {
        const from = Math.max(x.from, y.from);
        const to = Math.min(end(x), end(y));
        if (from < to) overlaps.push({ from, to });
      }
    return overlaps;
  }

  stop(): Outage[] {
    clearInterval(this.timer);
    this.sample();
    return this.outages;
  }
}
