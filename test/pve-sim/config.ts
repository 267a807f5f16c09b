/** The simulator's configuration: cluster layout, task durations, image catalog, tokens. All optional. */
import { readFileSync } from "node:fs";
import { globToRegExp } from "./glob.js";

export interface StorageDef {
  id: string;
  /** dir (file based: can hold vztmpl), lvmthin, zfspool. */
  type: "dir" | "lvmthin" | "zfspool" | "nfs";
  content: string[];
  shared?: boolean;
  /** Nodes that have this storage (default: all). */
  nodes?: string[];
  /** Volumes present from the start, e.g. ["vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"]. */
  volumes?: string[];
}

export interface CatalogEntry {
  /** Image reference glob: `*` matches any run of characters, e.g. `ghcr.io/mieweb/ldap-gateway:*`. */
  pattern: string;
  /** The image's Env (`NAME=value` each), copied into `env` when a container is created from the image. */
  env?: string[];
  /** The image's Entrypoint and Cmd: together they become the container's `entrypoint`. */
  entrypoint?: string[];
  cmd?: string[];
  /**
   * How the simulator runs a container of this image: an argv. `{address}`, `{port}`, `{vmid}` and
   * `{hostname}` in it are replaced. Without a command (and without `builtin`) the container runs no process.
   */
  command?: string[];
  /** Run an in-process TCP listener on the container's address instead of a process (cheap, for scale). */
  builtin?: boolean;
  /**
   * Working directory of the process, made when missing; `{vmid}` in it is replaced, which gives each
   * container its own (default: the simulator's own working directory).
   */
  cwd?: string;
  /** Port that shows the container booted once something listens on it (default 636). */
  port?: number;
  /** Host variables passed through to the process (default PATH, HOME, TMPDIR). */
  inheritEnv?: string[];
}

export interface AclEntry {
  path: string;
  privs: string[];
  /** Whether the entry applies to paths below `path` (default true). */
  propagate?: boolean;
}

export interface TokenDef {
  /** `user@realm!name` */
  id: string;
  secret: string;
  acl: AclEntry[];
}

export interface UserDef {
  /** `user@realm` */
  userid: string;
  password: string;
  /** root@pam has every privilege regardless. */
  acl?: AclEntry[];
}

export interface Durations {
  pull: number;
  create: number;
  start: number;
  stop: number;
  shutdown: number;
  destroy: number;
  realmSync: number;
}

export interface DnsConfig {
  search: string;
  dns1?: string;
  dns2?: string;
  dns3?: string;
}

export interface SimConfig {
  nodes: string[];
  /** Multiplies every task duration; 0 makes tasks finish on the next turn of the event loop. */
  speed: number;
  /** Task durations in milliseconds before `speed` is applied. */
  durations: Durations;
  storages: StorageDef[];
  catalog: CatalogEntry[];
  tokens: TokenDef[];
  users: UserDef[];
  pools: string[];
  dns: DnsConfig;
  /** Listen address and port of the API (port 0: a free one). */
  host: string;
  port: number;
  /** Second octet of the 127.X.0.0/16 block for container addresses; default: a free one, leased under the temp dir. */
  addressBlock?: number;
  /** Milliseconds a stopped process gets between SIGTERM and SIGKILL (real time, not scaled). */
  stopGraceMs: number;
  /**
   * A start task ends when the process listens, or has survived this long (real time), or fails when it
   * exited before (default 500).
   */
  startSettleMs: number;
  /** Give up watching a started process for its listener after this long (real time). */
  bootTimeoutMs: number;
  /** Delay before a 401 answer, in ms before `speed` is applied (default 3000, as pveproxy). */
  authFailureDelayMs: number;
  /** Helper processes that start container processes in parallel (default 3). */
  spawners: number;
  /** Start again on load the containers that the state file says are running (default true). */
  resumeRunning: boolean;
  /** Id of the full-privilege token the simulator creates (its secret is kept in the state file). */
  adminTokenId: string;
  /** Password of root@pam for ticket login (default: random, kept in the state file). */
  rootPassword?: string;
}

export const DEFAULT_DURATIONS: Durations = {
  pull: 5000,
  create: 3000,
  start: 1500,
  stop: 1000,
  shutdown: 1000,
  destroy: 1000,
  realmSync: 1000,
};

/** Storages as a default Proxmox VE install on ext4 has them: templates on `local`, disks on `local-lvm`. */
export const DEFAULT_STORAGES: StorageDef[] = [
  { id: "local", type: "dir", content: ["iso", "vztmpl", "backup"] },
  { id: "local-lvm", type: "lvmthin", content: ["rootdir", "images"] },
];

export type SimConfigInput = Partial<Omit<SimConfig, "durations">> & { durations?: Partial<Durations> };

export function resolveConfig(input: SimConfigInput = {}): SimConfig {
  return {
    nodes: input.nodes ?? ["pve1"],
    speed: input.speed ?? 1,
    durations: { ...DEFAULT_DURATIONS, ...input.durations },
    storages: input.storages ?? DEFAULT_STORAGES,
    catalog: input.catalog ?? [],
    tokens: input.tokens ?? [],
    users: input.users ?? [],
    pools: input.pools ?? [],
    dns: input.dns ?? { search: "localdomain", dns1: "127.0.0.53" },
    host: input.host ?? "127.0.0.1",
    port: input.port ?? 0,
    addressBlock: input.addressBlock,
    stopGraceMs: input.stopGraceMs ?? 3000,
    bootTimeoutMs: input.bootTimeoutMs ?? 60_000,
    startSettleMs: input.startSettleMs ?? 500,
    resumeRunning: input.resumeRunning ?? true,
    spawners: input.spawners ?? 3,
    authFailureDelayMs: input.authFailureDelayMs ?? 3000,
    adminTokenId: input.adminTokenId ?? "root@pam!pve-sim",
    rootPassword: input.rootPassword,
  };
}

export function loadConfigFile(file: string): SimConfigInput {
  return JSON.parse(readFileSync(file, "utf8")) as SimConfigInput;
}

/** Glob match of an image reference against a catalog pattern (`*` = any run of characters). */
export function matchImage(catalog: readonly CatalogEntry[], reference: string): CatalogEntry | undefined {
  return catalog.find((e) => globToRegExp(e.pattern).test(reference));
}
