/** Shapes of what Proxmox VE returns, as the operator reads them (shared/reference/proxmox-ve-api.md). */

/** One entry of `GET /cluster/resources?type=vm` for a container (an LXC guest). */
export interface ClusterResource {
  /** `lxc/101` */
  id: string;
  type: "lxc" | "qemu";
  vmid: number;
  name?: string;
  node: string;
  status: string;
  /** Stored form: lower-cased, de-duplicated, sorted, `;`-joined (may be absent). */
  tags?: string;
  template?: 0 | 1;
  lock?: string;
  maxcpu?: number;
  maxmem?: number;
  mem?: number;
  maxdisk?: number;
  disk?: number;
  uptime?: number;
}

/** `GET /version` */
export interface PveVersion {
  /** pve-manager's version, e.g. `9.1.1`. */
  version: string;
  /** Point release, e.g. `9.1`. */
  release: string;
  repoid?: string;
}

/** One entry of `GET /nodes/{node}/storage/{storage}/content`. */
export interface StorageVolume {
  /** `local:vztmpl/ldap-gateway_1.2.3.tar` */
  volid: string;
  content: string;
  format: string;
  size: number;
  ctime?: number;
  vmid?: number;
}

/** A config value as Proxmox stores it; booleans are sent as 1/0. */
export type ConfigValue = string | number | boolean;

/**
 * Container options (`POST /nodes/{node}/lxc` and `PUT .../config`), including the PVE 9.1 keys that
 * proxmox-api's types lack. `env` is the NUL-separated `NAME=value` list (see src/gateway/env.ts), `net0`
 * a property string such as `name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1`.
 */
export interface ContainerOptions {
  hostname?: string;
  memory?: number;
  swap?: number;
  cores?: number;
  net0?: string;
  rootfs?: string;
  features?: string;
  onboot?: boolean;
  /** Sent as given; Proxmox stores them lower-cased, de-duplicated, sorted and `;`-joined. */
  tags?: string;
  description?: string;
  searchdomain?: string;
  /** Space-separated. */
  nameserver?: string;
  env?: string;
  entrypoint?: string;
  [key: string]: ConfigValue | undefined;
}

/** `POST /nodes/{node}/lxc`: the container is created stopped unless `start`. */
export interface ContainerCreate extends ContainerOptions {
  vmid: number;
  /** A template volume, e.g. a pulled OCI image `local:vztmpl/ldap-gateway_1.2.3.tar`. */
  ostemplate: string;
  /** Storage of the root disk when `rootfs` does not name one. */
  storage?: string;
  unprivileged?: boolean;
  start?: boolean;
  pool?: string;
}

/** `GET /nodes/{node}/lxc/{vmid}/config`: every key, plus the digest for an optimistic PUT. */
export interface ContainerConfig {
  digest: string;
  hostname?: string;
  lock?: string;
  tags?: string;
  env?: string;
  entrypoint?: string;
  [key: string]: string | number | undefined;
}

/** A PUT of container config: keys to set, keys to remove, and the digest it was planned against. */
export interface ConfigChange<T = ContainerOptions> {
  set?: T;
  delete?: readonly string[];
  digest?: string;
}

/** One entry of `GET .../pending`: the current value, the one waiting for the next start, or a delete. */
export interface PendingEntry {
  key: string;
  value?: string | number;
  pending?: string | number;
  /** Non-zero: the key is removed at the next start. */
  delete?: number;
}

/** `GET .../status/current` */
export interface ContainerStatus {
  vmid: number;
  status: "running" | "stopped" | string;
  name?: string;
  lock?: string;
  tags?: string;
  uptime?: number;
  cpus?: number;
  maxmem?: number;
  mem?: number;
  maxdisk?: number;
}

/** One entry of `GET .../interfaces` (running containers only); `inet` is `10.0.0.5/24`. */
export interface NetworkInterface {
  name: string;
  hwaddr?: string;
  inet?: string;
  inet6?: string;
}

/** `GET /nodes/{node}/tasks/{upid}/status` */
export interface TaskStatus {
  upid: string;
  node: string;
  type: string;
  id: string;
  user: string;
  tokenid?: string;
  pid?: number;
  pstart?: number;
  starttime?: number;
  status: "running" | "stopped";
  /** `OK`, `WARNINGS: N`, an error text, or `unexpected status`; present once stopped. */
  exitstatus?: string;
}

/** One line of `GET /nodes/{node}/tasks/{upid}/log`. */
export interface TaskLogLine {
  n: number;
  t: string;
}

/** One entry of `GET /access/domains`. */
export interface RealmSummary {
  realm: string;
  type: string;
  comment?: string;
  default?: number;
  tfa?: string;
}

/** Options of an LDAP realm (`/access/domains`), as the runbook and the operator use them. */
export interface LdapRealmOptions {
  server1?: string;
  server2?: string;
  base_dn?: string;
  user_attr?: string;
  port?: number;
  mode?: "ldap" | "ldaps" | "ldap+starttls";
  verify?: boolean;
  default?: boolean;
  comment?: string;
  bind_dn?: string;
  password?: string;
  sync_attributes?: string;
  "sync-defaults-options"?: string;
  user_classes?: string;
  group_classes?: string;
  filter?: string;
  group_dn?: string;
  group_filter?: string;
  "case-sensitive"?: boolean;
  "check-connection"?: boolean;
  [key: string]: ConfigValue | undefined;
}

/** `POST /access/domains` for an LDAP realm. */
export interface LdapRealmCreate extends LdapRealmOptions {
  realm: string;
  type: "ldap";
  server1: string;
  user_attr: string;
}

/** `GET /access/domains/{realm}`: the stored options (never the password) and the digest. */
export interface RealmConfig {
  type: string;
  digest: string;
  [key: string]: string | number | undefined;
}

/** `POST /access/domains/{realm}/sync`; without `scope` the realm's `sync-defaults-options` must name one. */
export interface RealmSyncOptions {
  scope?: "users" | "groups" | "both";
  "dry-run"?: boolean;
  "enable-new"?: boolean;
  /** e.g. `acl;entry;properties`, or `none` */
  "remove-vanished"?: string;
}

/** `GET|PUT /nodes/{node}/dns` */
export interface NodeDns {
  search?: string;
  dns1?: string;
  dns2?: string;
  dns3?: string;
}
