/** Formats and schema of LXC config keys, as pve-container declares them (texts marked inferred where not read). */
import {
  CONTROL_RE,
  DNS_NAME_RE,
  isIPv4,
  isIPv4Cidr,
  isIPv6,
  parsePropertyString,
  type ParamSpec,
  type Schema,
} from "./schema.js";

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const TAG_RE = /^[a-z0-9_][a-z0-9_\-+.]*$/;

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

/** `tags`: separated by `;` (also `,` and spaces, as PVE splits them), each `[a-z0-9_][a-z0-9_\-\+\.]*`. */
export function splitTags(v: string): string[] {
  return v.split(/[;, ]+/).filter((t) => t !== "");
}

export function tagsFormat(v: string): string | undefined {
  const bad = splitTags(v).find((t) => !TAG_RE.test(t));
  return bad === undefined ? undefined : `invalid tag '${bad}'`;
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
    digest: str({ maxLength: 64 }),
    revert: str(),
  },
  patternProperties: CONFIG_PATTERNS,
};

/** The privilege a config key needs (pve-container's check_ct_modify_config_perm). */
export function privilegeForKey(key: string): string {
  if (key === "memory" || key === "swap") return "VM.Config.Memory";
  if (key === "cores" || key === "cpulimit" || key === "cpuunits") return "VM.Config.CPU";
  if (/^net\d+$/.test(key) || key === "nameserver" || key === "searchdomain") return "VM.Config.Network";
  if (key === "rootfs" || /^mp\d+$/.test(key) || /^unused\d+$/.test(key)) return "VM.Config.Disk";
  return "VM.Config.Options";
}

/** Keys whose changes on a running container wait for the next start (inferred from the hotplug code). */
export const PENDING_KEYS = new Set([
  "env",
  "entrypoint",
  "features",
  "unprivileged",
  "arch",
  "ostype",
  "cmode",
  "console",
  "tty",
]);
