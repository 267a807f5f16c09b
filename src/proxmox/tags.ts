// The operator's tags on a container: who owns it, which server of the pair
// it is and which configuration it was built from. After a crash these tags,
// read back from Proxmox, are the operator's only memory of its containers.
//
// Proxmox's `pve-tag` format allows no `=` or `:`, so each tag is a fixed
// prefix followed by its value:
//   ldappair-owner-<LdapPair uid>   (a Kubernetes uid: lower-case hex and dashes)
//   ldappair-server-<server name>   (a DNS label)
//   ldappair-config-<config hash>   (16 hex digits, src/gateway/config-hash.ts)
//   ldappair-build-<build hash>     (16 hex digits: the rebuild inputs alone)
//
// Proxmox stores tags lower-cased, de-duplicated, sorted and `;`-joined,
// unless the cluster's `tag-style` keeps case or order; so the operator
// renders its own tags in lower case and compares tag lists as sets.
import {
  BUILD_TAG_PREFIX,
  CONFIG_TAG_PREFIX,
  PROXMOX_TAG,
  buildTag,
  configTag,
} from "../gateway/config-hash.js";

export const OWNER_TAG_PREFIX = "ldappair-owner-";
export const SERVER_TAG_PREFIX = "ldappair-server-";
export { BUILD_TAG_PREFIX, CONFIG_TAG_PREFIX };

/** What the operator records on a container. */
export interface OperatorTags {
  /** metadata.uid of the owning LdapPair. */
  owner: string;
  /** The server's name in the pair (ldap1, ldap2, or the spec's names). */
  server: string;
  configHash: string;
  /** Absent on a container tagged before build hashes existed. */
  buildHash?: string;
}

/**
 * A container's tags, sorted by meaning. Each list holds the values of that
 * prefix (lower case, unique, sorted); more than one owner or server means
 * the tags were edited by hand and the container is nobody's for sure.
 */
export interface ParsedTags {
  owners: string[];
  servers: string[];
  configHashes: string[];
  /** Present only when the container carries a build tag. */
  buildHashes?: string[];
  /** Every other tag, exactly as stored (unique, sorted). */
  foreign: string[];
}

const OURS = [
  [OWNER_TAG_PREFIX, "owners"],
  [SERVER_TAG_PREFIX, "servers"],
  [CONFIG_TAG_PREFIX, "configHashes"],
  [BUILD_TAG_PREFIX, "buildHashes"],
] as const;

/** The tags of a stored or given list: Proxmox splits on `;`, `,` and white space. */
export function splitTags(tags: string | undefined): string[] {
  return (tags ?? "").split(/[;,\s]+/).filter((t) => t !== "");
}

const unique = (values: Iterable<string>): string[] => [...new Set(values)].sort();

/** The operator's three tags, lower case; throws when a value cannot be a Proxmox tag. */
export function renderTags(tags: OperatorTags): string[] {
  const rendered = [
    `${OWNER_TAG_PREFIX}${tags.owner}`,
    `${SERVER_TAG_PREFIX}${tags.server}`,
    configTag(tags.configHash),
    ...(tags.buildHash !== undefined ? [buildTag(tags.buildHash)] : []),
  ].map((t) => t.toLowerCase());
  const bad = rendered.find((t) => !PROXMOX_TAG.test(t));
  if (bad !== undefined) throw new Error(`'${bad}' is not a valid Proxmox tag`);
  return rendered;
}

/** Sorts a tag list into the operator's values and foreign tags (kept as stored). */
export function parseTags(tags: string | undefined): ParsedTags {
  const found = {
    owners: [] as string[],
    servers: [] as string[],
    configHashes: [] as string[],
    buildHashes: [] as string[],
  };
  const foreign: string[] = [];
  for (const tag of splitTags(tags)) {
    const lower = tag.toLowerCase();
    const ours = OURS.find(([prefix]) => lower.startsWith(prefix) && lower.length > prefix.length);
    if (ours) found[ours[1]].push(lower.slice(ours[0].length));
    else foreign.push(tag);
  }
  return {
    owners: unique(found.owners),
    servers: unique(found.servers),
    configHashes: unique(found.configHashes),
    ...(found.buildHashes.length > 0 ? { buildHashes: unique(found.buildHashes) } : {}),
    foreign: unique(foreign),
  };
}

const parsed = (tags: string | ParsedTags | undefined): ParsedTags =>
  typeof tags === "object" ? tags : parseTags(tags);

/**
 * True only when the owner tag names this LdapPair and no other: a hostname
 * proves nothing, and a container claimed twice is left alone.
 */
export function isOwnedBy(tags: string | ParsedTags | undefined, uid: string): boolean {
  const { owners } = parsed(tags);
  return owners.length === 1 && owners[0] === uid.toLowerCase();
}

/**
 * Owner, server and hash when each is recorded exactly once (and the build
 * hash, when there is exactly one); otherwise undefined.
 */
export function operatorTags(tags: string | ParsedTags | undefined): OperatorTags | undefined {
  const { owners, servers, configHashes, buildHashes = [] } = parsed(tags);
  if (owners.length !== 1 || servers.length !== 1 || configHashes.length !== 1) return undefined;
  if (buildHashes.length > 1) return undefined;
  const build = buildHashes.length === 1 ? { buildHash: buildHashes[0]! } : {};
  return { owner: owners[0]!, server: servers[0]!, configHash: configHashes[0]!, ...build };
}

/**
 * The tag list to write: the container's foreign tags untouched, every old
 * operator tag replaced by `ours`. Sorted and `;`-joined, as Proxmox stores it.
 */
export function mergeTags(stored: string | undefined, ours: OperatorTags): string {
  return unique([...parseTags(stored).foreign, ...renderTags(ours)]).join(";");
}

/** Whether two tag lists hold the same tags, whatever their order, separators, case or repeats. */
export function tagsEqual(a: string | undefined, b: string | undefined): boolean {
  const left = new Set(splitTags(a).map((t) => t.toLowerCase()));
  const right = new Set(splitTags(b).map((t) => t.toLowerCase()));
  return left.size === right.size && [...left].every((t) => right.has(t));
}
