// Read-back comparisons, normalised as Proxmox normalises what it stores, so
// that a value the operator wrote and reads back in another spelling is not
// taken for drift (a steady state must never PUT; an empty realm PUT is even
// an error: 500 `no options specified`). Pure functions only.
//
// What Proxmox does to a value between a write and a read
// (shared/reference/proxmox-ve-api.md, "More facts read from the sources"):
// - booleans come back as 1/0, numbers may come back as strings;
// - realm property strings are re-printed with sorted keys;
// - realm and container options left at their default are not stored at all;
// - node DNS: nameservers renumbered and de-duplicated, one search domain kept;
// - container `nameserver` stored space-separated, tags re-sorted (tags.ts).
import { tagsEqual } from "./tags.js";
import type { NodeDns } from "./types.js";

export type { NodeDns };

/** A value as the operator writes it: form values are strings, 1/0 for booleans. */
export type ConfigInput = string | number | boolean | readonly string[];

/** Keys to PUT (form values) and keys to remove (`delete`); absent when nothing differs. */
export interface Update {
  set: Record<string, string>;
  delete: string[];
}

// ---- values -------------------------------------------------------------

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off)$/i;

/** `1`/`0` for anything Proxmox's parse_boolean accepts; other text unchanged. */
export function normalizeBoolean(value: unknown): string {
  const text = String(value).trim();
  if (TRUE.test(text)) return "1";
  if (FALSE.test(text)) return "0";
  return text;
}

/** Numbers compare by value: `512`, `"512"` and `"0512"` are one number. */
export function normalizeInteger(value: unknown): string {
  const text = String(value).trim();
  const n = Number(text);
  return text !== "" && Number.isFinite(n) ? String(n) : text;
}

/** The form value of a write: booleans as 1/0, lists joined with `separator`. */
export function formValue(value: ConfigInput, separator = ","): string {
  if (typeof value === "boolean") return value ? "1" : "0";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") return value;
  return value.join(separator);
}

// ---- property strings ---------------------------------------------------

/**
 * `k=v,k=v` as a map; an item without `=` is the default key (`""`), as in
 * `local-lvm:4,size=4G`. Keys are compared by name, so their order is moot.
 */
export function parsePropertyString(text: string | undefined): Map<string, string> {
  const map = new Map<string, string>();
  for (const raw of (text ?? "").split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) map.set("", item);
    else map.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  return map;
}

/** Property keys whose values are booleans (realm sync options, net, features). */
const PROPERTY_BOOLEANS = new Set([
  "enable-new",
  "full",
  "purge",
  "dry-run",
  "firewall",
  "link_down",
  "host-managed",
  "nesting",
  "keyctl",
  "fuse",
  "mknod",
  "force_rw_sys",
]);

function normalizePropertyValue(key: string, value: string): string {
  if (PROPERTY_BOOLEANS.has(key)) return normalizeBoolean(value);
  // `acl;entry;properties`: a set, whatever order it was written in.
  if (key === "remove-vanished") return value.split(";").filter(Boolean).sort().join(";");
  // Proxmox prints MAC addresses in upper case.
  if (key === "hwaddr") return value.toUpperCase();
  return value;
}

function normalizedProperties(text: string | undefined, ignore: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of parsePropertyString(text))
    if (!ignore.has(k)) out.set(k, normalizePropertyValue(k, v));
  return out;
}

const mapsEqual = (a: Map<string, string>, b: Map<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/**
 * Two property strings hold the same settings, whatever the key order. Keys
 * in `filledIn` are ones Proxmox adds on its own (a network's `hwaddr`,
 * `type`): they count only when the desired side names them.
 */
export function propertiesEqual(
  desired: string | undefined,
  actual: string | undefined,
  filledIn: readonly string[] = [],
): boolean {
  const want = normalizedProperties(desired, new Set());
  const ignore = new Set(filledIn.filter((k) => !want.has(k)));
  return mapsEqual(want, normalizedProperties(actual, ignore));
}

// ---- realm --------------------------------------------------------------

/** What the LdapPair says about the realm (spec.realm plus the pair's base DN and servers). */
export interface RealmSettingsInput {
  baseDn: string;
  /** server1 and server2: the pair's server names. */
  servers: readonly [string, string];
  default: boolean;
  verifyCertificate: boolean;
  emailAttribute: string;
  syncScope: "users" | "groups" | "both";
  /** Also import first and last names (lower case: the gateway drops mixed-case attribute names). */
  syncNames?: boolean;
  /** The marker naming the LdapPair that manages the realm. */
  comment?: string;
}

/**
 * The realm options the operator owns, as Proxmox names them. A key set to
 * undefined must be absent (at Proxmox's default): the runbook leaves the
 * port at its default and sets no TFA. Options not listed here (bind_dn,
 * filter, classes...) are left to the administrator.
 */
export const REALM_KEYS = [
  "base_dn",
  "user_attr",
  "server1",
  "server2",
  "mode",
  "port",
  "verify",
  "default",
  "tfa",
  "sync_attributes",
  "sync-defaults-options",
  "comment",
] as const;
export type RealmKey = (typeof REALM_KEYS)[number];
/** A key left out is not the operator's; a key set to undefined must be absent. */
export type RealmSettings = Partial<Record<RealmKey, ConfigInput | undefined>>;

/** The runbook's realm table ("The settings table in the seed maps to"), from the LdapPair's fields. */
export function runbookRealm(input: RealmSettingsInput): RealmSettings {
  const names = input.syncNames ? ",firstname=givenname,lastname=sn" : "";
  return {
    base_dn: input.baseDn,
    user_attr: "uid",
    server1: input.servers[0],
    server2: input.servers[1],
    mode: "ldaps",
    port: undefined,
    verify: input.verifyCertificate,
    default: input.default,
    tfa: undefined,
    sync_attributes: `email=${input.emailAttribute}${names}`,
    // A scope in the realm lets every sync call go without parameters.
    "sync-defaults-options": `scope=${input.syncScope}`,
    ...(input.comment !== undefined ? { comment: input.comment } : {}),
  };
}

type Config = Readonly<Record<string, unknown>>;

/** What Proxmox assumes for an option it does not store; the port follows the mode. */
function realmDefault(key: string, config: Config): string | undefined {
  if (key === "default" || key === "verify") return "0";
  if (key === "mode") return "ldap";
  if (key === "port") return String(config["mode"] ?? "ldap") === "ldaps" ? "636" : "389";
  return undefined;
}

function normalizeRealmValue(key: string, value: unknown): string {
  if (key === "default" || key === "verify") return normalizeBoolean(value);
  if (key === "port") return normalizeInteger(value);
  const text = Array.isArray(value) ? value.join(",") : String(value);
  if (key === "sync_attributes" || key === "sync-defaults-options" || key === "tfa")
    return [...normalizedProperties(text, new Set())]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
  return text.trim();
}

/** A realm option's effective value: as stored, or the default when not stored. */
function effectiveRealmValue(key: string, config: Config): string | undefined {
  const value = config[key];
  if (value === undefined || value === null || value === "") return realmDefault(key, config);
  return normalizeRealmValue(key, value);
}

/** Drops the owned keys that must be absent, for a create or a comparison. */
function present(desired: Partial<Record<string, ConfigInput | undefined>>): Record<string, ConfigInput> {
  const out: Record<string, ConfigInput> = {};
  for (const [k, v] of Object.entries(desired)) if (v !== undefined) out[k] = v;
  return out;
}

/**
 * The PUT that brings the read-back realm `actual` (GET /access/domains/{realm})
 * to `desired`, or undefined when they already agree after normalisation.
 */
export function realmUpdate(desired: RealmSettings, actual: Config): Update | undefined {
  const want = present(desired);
  const update: Update = { set: {}, delete: [] };
  for (const key of Object.keys(desired)) {
    const wanted = key in want ? normalizeRealmValue(key, want[key]) : realmDefault(key, want);
    if (wanted === effectiveRealmValue(key, actual)) continue;
    if (key in want) update.set[key] = formValue(want[key]!);
    else if (actual[key] !== undefined) update.delete.push(key);
  }
  return isEmpty(update) ? undefined : update;
}

/** The parameters of POST /access/domains for `desired`. */
export function realmCreateParams(name: string, desired: RealmSettings): Record<string, string> {
  const params: Record<string, string> = { realm: name, type: "ldap" };
  for (const [k, v] of Object.entries(present(desired))) params[k] = formValue(v);
  return params;
}

const isEmpty = (u: Update): boolean => Object.keys(u.set).length === 0 && u.delete.length === 0;

// ---- node DNS -----------------------------------------------------------

/** Node DNS as Proxmox keeps it: one search domain, up to three distinct nameservers in order. */
export interface NormalNodeDns {
  search: string;
  nameservers: string[];
}

const NAMESERVER_KEYS = ["dns1", "dns2", "dns3"] as const;

export function normalizeNodeDns(dns: NodeDns): NormalNodeDns {
  const search = (dns.search ?? "").trim().split(/\s+/)[0]!.toLowerCase();
  const given = NAMESERVER_KEYS.map((k) => dns[k]?.trim()).filter((ip): ip is string => !!ip);
  return { search, nameservers: [...new Set(given)].slice(0, 3) };
}

/**
 * What the operator wants on a node: the site's nameserver first and its
 * search domain; the node's other nameservers are kept behind it.
 */
export function desiredNodeDns(current: NodeDns, want: { nameserver: string; search: string }): NodeDns {
  const others = normalizeNodeDns(current).nameservers.filter((ip) => ip !== want.nameserver);
  return nodeDnsParams({ search: want.search, nameservers: [want.nameserver, ...others] });
}

function nodeDnsParams(dns: NormalNodeDns): NodeDns {
  const params: NodeDns = { search: dns.search };
  dns.nameservers.slice(0, 3).forEach((ip, i) => (params[NAMESERVER_KEYS[i]!] = ip));
  return params;
}

export function nodeDnsEqual(a: NodeDns, b: NodeDns): boolean {
  const [x, y] = [normalizeNodeDns(a), normalizeNodeDns(b)];
  return x.search === y.search && x.nameservers.join(" ") === y.nameservers.join(" ");
}

/**
 * The PUT /nodes/{node}/dns parameters that bring `current` to `desired`,
 * renumbered as Proxmox would (a PUT names every nameserver to keep), or
 * undefined when the node already resolves as desired.
 */
export function nodeDnsUpdate(desired: NodeDns, current: NodeDns): NodeDns | undefined {
  return nodeDnsEqual(desired, current) ? undefined : nodeDnsParams(normalizeNodeDns(desired));
}

// ---- container config ---------------------------------------------------

type Kind = "boolean" | "integer" | "list" | "env" | "tags" | "network" | "properties" | "text" | "string";

const CONFIG_KINDS: Record<string, Kind> = {
  onboot: "boolean",
  unprivileged: "boolean",
  protection: "boolean",
  template: "boolean",
  console: "boolean",
  cores: "integer",
  memory: "integer",
  swap: "integer",
  cpuunits: "integer",
  nameserver: "list",
  searchdomain: "list",
  env: "env",
  tags: "tags",
  features: "properties",
  description: "text",
};

/** Defaults from the reference: an absent key reads as these. */
const CONFIG_DEFAULTS: Record<string, string> = { onboot: "0", memory: "512", swap: "512", protection: "0" };

const kindOf = (key: string): Kind => CONFIG_KINDS[key] ?? (/^net\d+$/.test(key) ? "network" : "string");

/** `NAME=value` entries as a map (a later entry wins, as in the container's environment). */
export function parseEnv(env: string | readonly string[] | undefined): Map<string, string> {
  const entries = typeof env === "string" ? env.split("\0") : (env ?? []);
  const map = new Map<string, string>();
  for (const e of entries) {
    const eq = e.indexOf("=");
    if (eq > 0) map.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return map;
}

const listOf = (v: unknown): string[] =>
  (Array.isArray(v) ? v.map(String) : String(v ?? "").split(/[\s,;]+/)).filter((x) => x !== "");

const asText = (v: unknown, separator: string): string | undefined =>
  v === undefined || v === null ? undefined : Array.isArray(v) ? v.join(separator) : String(v);

/** Whether a config value read back equals the one the operator wants, as Proxmox would store it. */
export function configValueEqual(key: string, desired: unknown, actual: unknown): boolean {
  const fallback = CONFIG_DEFAULTS[key];
  const got = actual === undefined || actual === null || actual === "" ? fallback : actual;
  const want = desired === undefined ? fallback : desired;
  if (want === undefined || got === undefined) return want === got;
  switch (kindOf(key)) {
    case "boolean":
      return normalizeBoolean(want) === normalizeBoolean(got);
    case "integer":
      return normalizeInteger(want) === normalizeInteger(got);
    case "list":
      return listOf(want).join(" ") === listOf(got).join(" ");
    case "env":
      return mapsEqual(parseEnv(want as string | string[]), parseEnv(asText(got, "\0")));
    case "tags":
      return tagsEqual(asText(want, ";"), asText(got, ";"));
    case "network":
      return propertiesEqual(asText(want, ","), asText(got, ","), ["hwaddr", "type"]);
    case "properties":
      return propertiesEqual(asText(want, ","), asText(got, ","));
    case "text":
      // A trailing newline is how a comment line may come back (inferred).
      return String(want).trimEnd() === String(got).trimEnd();
    default:
      return asText(want, ",") === asText(got, ",");
  }
}

/** How a list is written for each kind: nameserver space-separated, env NUL-separated. */
const SEPARATORS: Partial<Record<Kind, string>> = { list: " ", env: "\0", tags: ";" };

/**
 * The PUT .../config that brings `actual` (GET .../config, which shows pending
 * values applied) to `desired`: only the keys named in `desired`; undefined
 * there means "remove". Undefined when nothing differs.
 */
export function configUpdate(
  desired: Record<string, ConfigInput | undefined>,
  actual: Config,
): Update | undefined {
  const update: Update = { set: {}, delete: [] };
  for (const [key, want] of Object.entries(desired)) {
    if (want === undefined) {
      if (actual[key] !== undefined && actual[key] !== null) update.delete.push(key);
    } else if (!configValueEqual(key, want, actual[key])) {
      update.set[key] = formValue(want, SEPARATORS[kindOf(key)] ?? ",");
    }
  }
  return isEmpty(update) ? undefined : update;
}
