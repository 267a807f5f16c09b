// The settings a pair manages that the inventory listing does not show: its
// realm (`GET /access/domains/{realm}`) and its nodes' DNS (`GET
// /nodes/{node}/dns`). They are read beside each inventory poll, once per
// distinct realm and node of the endpoint however many pairs use them, so a
// hand-made change there is seen within one interval, as a container's is.
//
// The functional core is the reading's fingerprint and `changedSettings`;
// `readSettings` is the shell that asks Proxmox.
import type { ProxmoxClient } from "./client.js";
import { isProxmoxError } from "./errors.js";
import { normalizeNodeDns } from "./normalize.js";
import type { NodeDns, RealmConfig } from "./types.js";

/** What a pair manages outside its containers. */
export interface SettingsInterest {
  /** The realm it manages, if any. */
  realm?: string;
  /** The nodes whose DNS it manages. */
  dnsNodes?: readonly string[];
}

/** One watched read: `realm:<name>` or `dns:<node>`. */
export type SettingKey = string;

export function settingKeys(interest: SettingsInterest): SettingKey[] {
  return [
    ...(interest.realm !== undefined ? [`realm:${interest.realm}`] : []),
    ...(interest.dnsNodes ?? []).map((node) => `dns:${node}`),
  ];
}

/** Every key a set of pairs watches, each once. */
export function distinctKeys(interests: Iterable<SettingsInterest>): SettingKey[] {
  return [...new Set([...interests].flatMap(settingKeys))].sort();
}

/** A realm's reading: its digest and its options, key order aside; `absent` when there is none. */
export function realmFingerprint(config: RealmConfig | undefined): string {
  if (!config) return "absent";
  const options = Object.entries(config)
    .filter(([k, v]) => k !== "digest" && v !== undefined && v !== "")
    .map(([k, v]) => [k, String(v).trim()])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  return JSON.stringify({ digest: config.digest ?? "", options });
}

/** A node's DNS as Proxmox keeps it: renumbered nameservers and a second search domain are no change. */
export function dnsFingerprint(dns: NodeDns): string {
  const { search, nameservers } = normalizeNodeDns(dns);
  return `${search} ${nameservers.join(" ")}`;
}

/**
 * The keys whose reading differs between two polls. A key without a reading
 * on either side (first seen, or its read failed) is no change: nothing is
 * known to have moved, and the pair reads it itself when it reconciles.
 */
export function changedSettings(
  before: ReadonlyMap<SettingKey, string>,
  after: ReadonlyMap<SettingKey, string>,
): Set<SettingKey> {
  const changed = new Set<SettingKey>();
  for (const [key, now] of after) {
    const was = before.get(key);
    if (was !== undefined && was !== now) changed.add(key);
  }
  return changed;
}

/** Whether a pair cares about one of the changed keys. */
export function concernsSettings(changed: ReadonlySet<SettingKey>, interest: SettingsInterest): boolean {
  return settingKeys(interest).some((k) => changed.has(k));
}

/** Reads each key once; a key whose read fails is left out (its last reading stands). */
export async function readSettings(
  client: ProxmoxClient,
  keys: readonly SettingKey[],
  signal?: AbortSignal,
): Promise<Map<SettingKey, string>> {
  const read = await Promise.all(
    keys.map((key) =>
      readOne(client, key, signal).then(
        (value) => [key, value] as const,
        () => undefined,
      ),
    ),
  );
  return new Map(read.filter((r) => r !== undefined));
}

async function readOne(client: ProxmoxClient, key: SettingKey, signal?: AbortSignal): Promise<string> {
  const [kind, name] = [key.slice(0, key.indexOf(":")), key.slice(key.indexOf(":") + 1)];
  if (kind === "dns") return dnsFingerprint(await client.nodeDns(name, { signal }));
  try {
    return realmFingerprint(await client.realm(name, { signal }));
  } catch (err) {
    if (isProxmoxError(err) && err.reason === "does-not-exist") return realmFingerprint(undefined);
    throw err;
  }
}
