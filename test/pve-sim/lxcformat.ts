/** Formats and schema of LXC config keys, as pve-container declares them (texts marked inferred where not read). */
import {
  CONTROL_RE,
  DNS_NAME_RE,
  isIPv4,
  isIPv4Cidr,
  isIPv6,
  parsePropertyString,
  specFor,
  type ParamSpec,
  type ParamValue,
  type Schema,
} from "./schema.js";
import { fail } from "./errors.js";
import type { ConfValue } from "./state.js";

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** `pve-tag`: `^(?i)[a-z0-9_][a-z0-9_\-\+\.]*$`. */
export const TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

/** `env`: NUL-separated `NAME=value`; control characters other than tab refused (texts inferred). */
export function envFormat(v: string): string | undefined {
  for (const entry of v.split("\0")) {
    if (entry === "") continue;
    const eq = entry.indexOf("=");
    if (eq <= 0 || !ENV_NAME_RE.test(entry.slice(0, eq)))
      return `invalid environment variable '${entry.slice(0, 40)}'`;
    if (CONTROL_RE.test(entry)) return "value contains control characters";
  }
  return undefined;
}

export function entrypointFormat(v: string): string | undefined {
  return CONTROL_RE.test(v) ? "value contains control characters" : undefined;
}

export function hostnameFormat(v: string): string | undefined {
  return DNS_NAME_RE.test(v) ? undefined : "value does not look like a valid DNS name";
}

/**
 * PVE::Tools::split_list: NUL-separated if there is a NUL, else separated by `,`, `;` and white space.
 * How PVE reads `delete`, `revert`, `tags`, `nameserver` and `searchdomain`.
 */
export function splitList(v: string): string[] {
  if (v.includes("\0")) return v.split("\0").filter((t) => t !== "");
  return v
    .replace(/[,;]/g, " ")
    .trim()
    .split(/\s+/)
    .filter((t) => t !== "");
}

/** `tags`: each `pve-tag` (case-insensitive, no length limit). */
export function tagsFormat(v: string): string | undefined {
  const bad = splitList(v).find((t) => !TAG_RE.test(t));
  return bad === undefined ? undefined : `invalid tag '${bad}'`;
}

/**
 * Tags as PVE stores them (PVE::GuestHelpers::get_unique_tags with the default tag style): lower-cased,
 * de-duplicated, sorted, `;`-joined, so `web;beta,alpha alpha` is stored as `alpha;beta;web`.
 */
export function uniqueTags(v: string): string {
  return [...new Set(splitList(v).map((t) => t.toLowerCase()))].sort().join(";");
}

/** A config value as update_pct_config stores it: tags made unique, DNS lists space-separated. */
export function normaliseConfigValue(key: string, value: ParamValue): ParamValue {
  if (key === "tags") return uniqueTags(String(value));
  if (key === "nameserver" || key === "searchdomain") return splitList(String(value)).join(" ");
  return value;
}

/** Key order of a printed net property string (name first, as the config files show it). */
export const NET_KEYS = [
  "name",
  "bridge",
  "firewall",
  "gw",
  "gw6",
  "host-managed",
  "hwaddr",
  "ip",
  "ip6",
  "link_down",
  "mtu",
  "rate",
  "tag",
  "trunks",
  "type",
];

export function netFormat(v: string): string | undefined {
  const p = parsePropertyString(v);
  if (typeof p === "string") return `format error\n${p}`;
  for (const k of p.keys())
    if (!NET_KEYS.includes(k)) return `format error\n${k}: property is not defined in schema`;
  const name = p.get("name");
  if (name === undefined) return "format error\nname: property is missing and it is not optional";
  if (!/^[-_.\w\d]+$/.test(name)) return "format error\nname: value does not match the regex pattern";
  const ip = p.get("ip");
  if (ip !== undefined && ip !== "dhcp" && ip !== "manual" && !isIPv4Cidr(ip))
    return "format error\nip: invalid format - value does not look like a valid IPv4 network configuration";
  const gw = p.get("gw");
  if (gw !== undefined && !isIPv4(gw))
    return "format error\ngw: invalid format - value does not look like a valid IPv4 address";
  const ip6 = p.get("ip6");
  if (ip6 !== undefined && !["auto", "dhcp", "manual"].includes(ip6) && !isIPv6(ip6.split("/")[0] ?? ""))
    return "format error\nip6: invalid format - value does not look like a valid IPv6 network configuration";
  const hw = p.get("hwaddr");
  if (hw !== undefined && !MAC_RE.test(hw))
    return "format error\nhwaddr: value does not match the regex pattern";
  for (const b of ["firewall", "host-managed", "link_down"]) {
    const x = p.get(b);
    if (x !== undefined && !/^(0|1|true|false|yes|no|on|off)$/i.test(x))
      return `format error\n${b}: type check ('boolean') failed - got '${x}'`;
  }
  const type = p.get("type");
  if (type !== undefined && type !== "veth")
    return `format error\ntype: value '${type}' does not have a value in the enumeration 'veth'`;
  return undefined;
}

/** Prints a net property string in the config's key order, adding the defaults pve-container adds. */
export function printNet(v: string, hwaddr: () => string): string {
  const p = parsePropertyString(v) as Map<string, string>;
  if (!p.has("hwaddr")) p.set("hwaddr", hwaddr());
  if (!p.has("type")) p.set("type", "veth");
  return NET_KEYS.filter((k) => p.has(k))
    .map((k) => `${k}=${p.get(k)}`)
    .join(",");
}

/** rootfs / mpN: `VOLUME[,key=value...]` where VOLUME is `STORAGE:SIZE_GB` (a new volume), `STORAGE:NAME` or a host path. */
export function mountFormat(v: string, needMp: boolean): string | undefined {
  const p = parsePropertyString(v, "volume");
  if (typeof p === "string") return `format error\n${p}`;
  const vol = p.get("volume");
  if (!vol) return "format error\nvolume: property is missing and it is not optional";
  if (!vol.startsWith("/") && !/^[a-z][a-z0-9\-_.]*[a-z0-9]:.+$/i.test(vol))
    return `format error\nvolume: invalid format - unable to parse volume ID '${vol}'`;
  if (needMp && !p.has("mp")) return "format error\nmp: property is missing and it is not optional";
  const size = p.get("size");
  if (size !== undefined && !/^\d+(\.\d+)?[KMGT]?$/.test(size))
    return "format error\nsize: invalid format - unable to parse size";
  return undefined;
}

export const FEATURE_KEYS = ["nesting", "keyctl", "fuse", "mount", "mknod", "force_rw_sys"];

export function featuresFormat(v: string): string | undefined {
  const p = parsePropertyString(v);
  if (typeof p === "string") return `format error\n${p}`;
  for (const [k, x] of p) {
    if (!FEATURE_KEYS.includes(k)) return `format error\n${k}: property is not defined in schema`;
    if (k !== "mount" && !/^(0|1|true|false|yes|no|on|off)$/i.test(x))
      return `format error\n${k}: type check ('boolean') failed - got '${x}'`;
  }
  return undefined;
}

/** Feature flags enabled in a `features` value. */
export function enabledFeatures(v: string): string[] {
  const p = parsePropertyString(v);
  if (typeof p === "string") return [];
  return [...p].filter(([k, x]) => k === "mount" || /^(1|true|yes|on)$/i.test(x)).map(([k]) => k);
}

const str = (extra: Partial<ParamSpec> = {}): ParamSpec => ({ type: "string", optional: true, ...extra });
const bool: ParamSpec = { type: "boolean", optional: true };
const int = (minimum?: number, maximum?: number): ParamSpec => ({
  type: "integer",
  optional: true,
  minimum,
  maximum,
});

export const CONFIG_PROPERTIES: Record<string, ParamSpec> = {
  arch: str({ enum: ["amd64", "i386", "arm64", "armhf", "riscv32", "riscv64"] }),
  cmode: str({ enum: ["shell", "console", "tty"] }),
  console: bool,
  cores: int(1, 8192),
  cpulimit: { type: "number", optional: true, minimum: 0, maximum: 8192 },
  cpuunits: int(0, 500000),
  debug: bool,
  description: str({ maxLength: 8192 }),
  entrypoint: str({ format: entrypointFormat }),
  env: str({ format: envFormat }),
  features: str({ format: featuresFormat }),
  hookscript: str(),
  hostname: str({ maxLength: 255, format: hostnameFormat }),
  memory: int(16),
  nameserver: str(),
  onboot: bool,
  ostype: str({
    enum: [
      "debian",
      "devuan",
      "ubuntu",
      "centos",
      "fedora",
      "opensuse",
      "archlinux",
      "alpine",
      "gentoo",
      "nixos",
      "unmanaged",
    ],
  }),
  protection: bool,
  rootfs: str({ format: (v) => mountFormat(v, false) }),
  searchdomain: str(),
  startup: str(),
  swap: int(0),
  tags: str({ format: tagsFormat }),
  template: bool,
  timezone: str(),
  tty: int(0, 6),
  unprivileged: bool,
};

export const CONFIG_PATTERNS: Schema["patternProperties"] = [
  { re: /^net\d+$/, spec: str({ format: netFormat }) },
  { re: /^mp\d+$/, spec: str({ format: (v) => mountFormat(v, true) }) },
  { re: /^dev\d+$/, spec: str() },
  { re: /^unused\d+$/, spec: str() },
];

export const CREATE_SCHEMA: Schema = {
  properties: {
    ...CONFIG_PROPERTIES,
    vmid: { type: "integer", minimum: 100, maximum: 999999999 },
    node: { type: "string", optional: true },
    ostemplate: { type: "string", maxLength: 255 },
    storage: { type: "string", default: "local" },
    start: { type: "boolean", default: 0 },
    unprivileged: { type: "boolean", default: 1 },
    memory: { type: "integer", minimum: 16, default: 512 },
    swap: { type: "integer", minimum: 0, default: 512 },
    pool: str(),
    password: str(),
    "ssh-public-keys": str(),
    force: bool,
    unique: bool,
    restore: bool,
    "ignore-unpack-errors": bool,
    // PVE 9: add the new guest to HA (accepted; the simulator has no HA stack).
    "ha-managed": bool,
  },
  patternProperties: CONFIG_PATTERNS,
};

/** Create parameters that are not config keys. */
export const CREATE_ONLY_PARAMS = new Set([
  "vmid",
  "node",
  "ostemplate",
  "storage",
  "start",
  "pool",
  "password",
  "ssh-public-keys",
  "force",
  "unique",
  "restore",
  "ignore-unpack-errors",
  "ha-managed",
]);

export const UPDATE_SCHEMA: Schema = {
  properties: {
    ...CONFIG_PROPERTIES,
    node: { type: "string", optional: true },
    vmid: { type: "integer", optional: true },
    delete: str(),
    digest: str({ maxLength: 40 }),
    revert: str(),
    skiplock: bool,
  },
  patternProperties: CONFIG_PATTERNS,
};

/** Whether `key` names a container option (PVE::LXC::Config->option_exists), as `delete` demands. */
export function optionExists(key: string): boolean {
  return (
    key === "lock" ||
    specFor({ properties: CONFIG_PROPERTIES, patternProperties: CONFIG_PATTERNS }, key) !== undefined
  );
}

/** The privilege a config key needs (pve-container's check_ct_modify_config_perm). */
export function privilegeForKey(key: string): string {
  if (key === "memory" || key === "swap") return "VM.Config.Memory";
  if (key === "cores" || key === "cpulimit" || key === "cpuunits") return "VM.Config.CPU";
  if (/^net\d+$/.test(key) || key === "nameserver" || key === "searchdomain") return "VM.Config.Network";
  if (key === "rootfs" || /^mp\d+$/.test(key) || /^unused\d+$/.test(key)) return "VM.Config.Disk";
  return "VM.Config.Options";
}

/** Options a running container takes as they are (pve-container's LXC_FASTPLUG_OPTIONS). */
const FASTPLUG_KEYS = new Set([
  "description",
  "onboot",
  "startup",
  "protection",
  "hostname",
  "hookscript",
  "cores",
  "tags",
  "lock",
]);

/** Options vmconfig_hotplug_pending changes through the container's cgroup (all but memory can be reset). */
const CGROUP_KEYS = new Set(["cpulimit", "cpuunits", "memory", "swap"]);
const CGROUP_RESET_KEYS = new Set(["cpulimit", "cpuunits", "swap"]);

/**
 * Keys of a net property string that update_net changes on the live interface (a new name or hwaddr
 * replaces the veth; bridge, tag, firewall, link_down and rate re-plug it; the addresses are changed inside
 * the container). Inferred: the simulator treats a change of any other key (mtu, trunks, host-managed) as
 * one that cannot be hot-plugged, since update_net has no live path for it.
 */
const NET_HOTPLUG_KEYS = new Set([
  "name",
  "hwaddr",
  "bridge",
  "tag",
  "firewall",
  "link_down",
  "rate",
  "ip",
  "gw",
  "ip6",
  "gw6",
  "type",
]);

/** Options update_pct_config refuses to delete. */
const REQUIRED_KEYS = new Set(["memory", "rootfs", "ostype"]);

function netChangeIsHotpluggable(old: string, next: string): boolean {
  const a = parsePropertyString(old);
  const b = parsePropertyString(next);
  if (typeof a === "string" || typeof b === "string") return false;
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].every((k) => a.get(k) === b.get(k) || NET_HOTPLUG_KEYS.has(k));
}

/** Whether a running container takes a new value of `key` at once (else it waits for the next start). */
export function setIsHotpluggable(key: string, old: ConfValue | undefined, next: ConfValue): boolean {
  if (FASTPLUG_KEYS.has(key) || CGROUP_KEYS.has(key)) return true;
  if (/^net\d+$/.test(key)) return old === undefined || netChangeIsHotpluggable(String(old), String(next));
  // A new mount point or device is hot-plugged; changing an existing one waits.
  if (/^(mp|dev)\d+$/.test(key)) return old === undefined;
  return false;
}

/** Whether a running container drops `key` at once (else the delete waits for the next start). */
export function deleteIsHotpluggable(key: string): boolean {
  if (FASTPLUG_KEYS.has(key) || CGROUP_RESET_KEYS.has(key)) return true;
  // pve-container matches `net(\d)`: one digit, so deleting net10 and above waits.
  return /^unused\d+$/.test(key) || /^net\d$/.test(key);
}

/** A container's config with its pending section. */
export interface PendingConfig {
  conf: Record<string, ConfValue>;
  pending: Record<string, ConfValue>;
  pendingDelete: string[];
}

export interface ConfigChange {
  /** New values, already normalised (normaliseConfigValue, printNet). */
  set: Record<string, ConfValue>;
  delete: string[];
  revert: string[];
}

/**
 * PVE::LXC::Config->update_pct_config followed by vmconfig_hotplug_pending (running) or
 * vmconfig_apply_pending (stopped): reverts, then deletes, then new values. A stopped container takes
 * everything at once; a running one only what can be hot-plugged, the rest waits in the pending section.
 * Throws (HTTP 500) on a required or read-only option, before anything changed.
 */
export function updatePctConfig(cfg: PendingConfig, change: ConfigChange, running: boolean): PendingConfig {
  const conf = { ...cfg.conf };
  const pending = { ...cfg.pending };
  const pendingDelete = new Set(cfg.pendingDelete);
  for (const k of change.revert) {
    delete pending[k];
    pendingDelete.delete(k);
  }
  for (const k of change.delete) {
    // A key that is not set is skipped (PVE warns "cannot delete 'k' - not set in current configuration!").
    if (conf[k] === undefined && pending[k] === undefined) continue;
    if (REQUIRED_KEYS.has(k)) throw fail(`unable to delete required option '${k}'`);
    if (k === "unprivileged") throw fail(`unable to delete read-only option: '${k}'`);
    delete pending[k];
    if (!running || conf[k] === undefined || deleteIsHotpluggable(k)) {
      delete conf[k];
      pendingDelete.delete(k);
    } else pendingDelete.add(k);
  }
  for (const [k, v] of Object.entries(change.set)) {
    if (k === "unprivileged") throw fail(`unable to modify read-only option: '${k}'`);
    pendingDelete.delete(k);
    if (!running || setIsHotpluggable(k, conf[k], v)) {
      conf[k] = v;
      delete pending[k];
    } else if (conf[k] === v) {
      // cleanup_pending: a pending value equal to the current one is no change.
      delete pending[k];
    } else pending[k] = v;
  }
  return { conf, pending, pendingDelete: [...pendingDelete] };
}
