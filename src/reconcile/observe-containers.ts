// The pair's containers, found in the inventory by the owner tag (the
// LdapPair's uid) and the server tag, never by hostname; containers of
// anyone else that carry a server's hostname are reported as foreign. Each of
// ours is then read: its current config (tags read there are fresher than the
// inventory's), the keys waiting for the next start, eth0's address and, when
// it runs, the health probe.
import type { LdapPairSpec } from "../api/ldappair.js";
import { BUILD_TAG_PREFIX } from "../gateway/config-hash.js";
import { LDAPS_PORT, probeServer } from "../health/ldaps-probe.js";
import type { ProbeExpectation, ProbeTimeouts } from "../health/probe-plan.js";
import type { ProxmoxClient } from "../proxmox/client.js";
import { isOwnedBy, parseTags, splitTags } from "../proxmox/tags.js";
import type { ClusterResource, ContainerConfig, PendingEntry } from "../proxmox/types.js";
import type { ForeignContainer, ObservedContainer, ObservedServer, Problem } from "./model.js";
import { isNotThere, proxmoxProblem } from "./problems.js";

export interface ServerReadOptions {
  uid: string;
  /** Absent when the preflight found no user to look for: then no probe can pass, and none runs. */
  expectation: ProbeExpectation | undefined;
  probeTimeouts?: Partial<ProbeTimeouts>;
  probePort?: number;
  signal?: AbortSignal;
  /** Where a read that fails without hiding the container goes. */
  problems?: Problem[];
}

/** Whether the tags make the container this pair's `server`. */
export function isOurServer(tags: string | undefined, uid: string, server: string): boolean {
  const parsed = parseTags(tags);
  return isOwnedBy(parsed, uid) && parsed.servers.length === 1 && parsed.servers[0] === server.toLowerCase();
}

/** The hashes the operator's tags record, each only when recorded exactly once. */
export function taggedHashes(tags: string | undefined): { configHash?: string; buildHash?: string } {
  const { configHashes } = parseTags(tags);
  const builds = [...new Set(splitTags(tags).map((t) => t.toLowerCase()))]
    .filter((t) => t.startsWith(BUILD_TAG_PREFIX) && t.length > BUILD_TAG_PREFIX.length)
    .map((t) => t.slice(BUILD_TAG_PREFIX.length));
  return {
    ...(configHashes.length === 1 ? { configHash: configHashes[0]! } : {}),
    ...(builds.length === 1 ? { buildHash: builds[0]! } : {}),
  };
}

/** Which inventory entries belong to each server, and which foreign ones carry its hostname. */
export function sortInventory(
  containers: ReadonlyMap<number, ClusterResource>,
  servers: readonly string[],
  uid: string,
): { name: string; ours: ClusterResource[]; foreign: ForeignContainer[] }[] {
  const all = [...containers.values()].sort((a, b) => a.vmid - b.vmid);
  return servers.map((name) => ({
    name,
    ours: all.filter((r) => r.type === "lxc" && isOurServer(r.tags, uid, name)),
    foreign: all
      .filter((r) => r.name === name && !isOwnedBy(r.tags, uid))
      .map((r) => ({ vmid: r.vmid, node: r.node, hostname: name })),
  }));
}

export async function observeServers(
  client: ProxmoxClient,
  containers: ReadonlyMap<number, ClusterResource>,
  spec: Pick<LdapPairSpec, "servers">,
  o: ServerReadOptions,
): Promise<ObservedServer[]> {
  const sorted = sortInventory(
    containers,
    spec.servers.map((s) => s.name),
    o.uid,
  );
  return Promise.all(
    sorted.map(async ({ name, ours, foreign }, i) => {
      const read = await Promise.all(ours.map((entry) => readContainer(client, entry, name, o)));
      const mine = read.filter((c): c is ObservedContainer => c !== undefined);
      const address = spec.servers[i]?.network?.ipv4?.split("/")[0];
      // Only before a create: once the server exists, its address is its own.
      const taken =
        address && mine.length === 0 ? await addressHolder(client, containers, address, o) : undefined;
      return { name, containers: mine, foreign, ...(taken ? { addressTaken: taken } : {}) };
    }),
  );
}

/**
 * Another container whose eth0 is configured with `address`: creating ours
 * with it would put two hosts on one address. Reads the configs of the
 * containers that are not ours, so it runs only when a server is to be made.
 */
async function addressHolder(
  client: ProxmoxClient,
  containers: ReadonlyMap<number, ClusterResource>,
  address: string,
  o: ServerReadOptions,
): Promise<{ address: string; vmid: number; node: string } | undefined> {
  const others = [...containers.values()].filter((r) => r.type === "lxc" && !isOwnedBy(r.tags, o.uid));
  for (const r of others.sort((a, b) => a.vmid - b.vmid)) {
    const config = await client.containerConfig(r.node, r.vmid, { signal: o.signal }).catch(() => undefined);
    if (config && configuredAddress(config) === address) return { address, vmid: r.vmid, node: r.node };
  }
  return undefined;
}

/** The static address in net0 (`ip=10.0.0.5/24`), without its prefix length. */
export function configuredAddress(config: Pick<ContainerConfig, string>): string | undefined {
  const net0 = config["net0"];
  if (typeof net0 !== "string") return undefined;
  const ip = /(?:^|,)ip=([^,/]+)/.exec(net0)?.[1];
  return ip && ip !== "dhcp" && ip !== "manual" ? ip : undefined;
}

/** One of our containers; undefined when it vanished, or its fresh tags say it is no longer ours. */
async function readContainer(
  client: ProxmoxClient,
  entry: ClusterResource,
  server: string,
  o: ServerReadOptions,
): Promise<ObservedContainer | undefined> {
  const { vmid, node } = entry;
  const opts = { signal: o.signal };
  let config: ContainerConfig | undefined;
  try {
    config = await client.containerConfig(node, vmid, { current: true, ...opts });
  } catch (err) {
    if (isNotThere(err)) return undefined;
    o.problems?.push(proxmoxProblem(err, `reading the config of ${server} (CT ${vmid} on ${node})`));
  }
  if (config && !isOurServer(config.tags, o.uid, server)) return undefined;
  const tags = config?.tags ?? entry.tags;
  const lock = config ? config.lock : entry.lock;
  const observed: ObservedContainer = {
    vmid,
    node,
    status: entry.status,
    ...(lock ? { lock } : {}),
    ...taggedHashes(tags),
    ...(config ? { config } : {}),
  };
  if (entry.status !== "running") return observed;
  if (entry.uptime !== undefined) observed.uptimeSeconds = Number(entry.uptime);
  const [pending, address] = await Promise.all([
    client.containerPending(node, vmid, opts).then(pendingValues, () => undefined),
    client.containerInterfaces(node, vmid, opts).then(eth0Address, () => undefined),
  ]);
  if (pending) observed.pending = pending;
  if (!address) return observed;
  observed.address = address;
  if (o.expectation)
    observed.probe = await probeServer({ host: address, port: o.probePort ?? LDAPS_PORT }, o.expectation, {
      ...(o.probeTimeouts ? { timeouts: o.probeTimeouts } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    });
  return observed;
}

/** The values waiting for the next start, by key; null for a pending delete. */
export function pendingValues(entries: readonly PendingEntry[]): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  for (const e of entries) {
    if (e.delete) out[e.key] = null;
    else if (e.pending !== undefined) out[e.key] = e.pending;
  }
  return out;
}

/** eth0's IPv4 address without its prefix length (`10.0.0.5/24` -> `10.0.0.5`). */
export function eth0Address(interfaces: readonly { name: string; inet?: string }[]): string | undefined {
  const inet = interfaces.find((i) => i.name === "eth0")?.inet;
  return inet ? inet.split("/")[0] : undefined;
}
