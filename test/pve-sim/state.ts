/** The simulated cluster's state and its persistence as one JSON file (written debounced, atomically). */
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { writeFile, rename } from "node:fs/promises";
import type { Upid } from "./upid.js";

export type ConfValue = string | number;

export interface ContainerState {
  vmid: number;
  node: string;
  /** The config as `GET .../config?current=1` shows it (without digest). */
  conf: Record<string, ConfValue>;
  /** Changes waiting for the next start (set while running). */
  pending: Record<string, ConfValue>;
  pendingDelete: string[];
  status: "running" | "stopped";
  /** The container's own loopback address (127.X.Y.Z), fixed at creation. */
  address: string;
  /** Pool the container was created in (its ACLs apply to the container). */
  pool?: string;
  /** Image reference when created from a pulled OCI volume. */
  image?: string;
  /** Unix seconds of the last start. */
  startedAt?: number;
  /** Whether the process listens on its port (sim only). */
  booted?: boolean;
}

export interface VolumeState {
  /** e.g. `local:vztmpl/ldap-gateway_1.2.3.tar` */
  volid: string;
  content: "vztmpl" | "rootdir" | "iso" | "images" | "backup";
  format: string;
  size: number;
  ctime: number;
  vmid?: number;
  /** Image reference the volume was pulled from (OCI). */
  reference?: string;
}

export interface TaskState extends Upid {
  upid: string;
  status: "running" | "stopped";
  exitstatus?: string;
  endtime?: number;
  log: string[];
}

export interface DnsState {
  search: string;
  dns1?: string;
  dns2?: string;
  dns3?: string;
}

export interface SimState {
  version: 1;
  containers: Record<string, ContainerState>;
  /** Volumes per storage location: `STORAGE` for shared storages, `NODE/STORAGE` otherwise. */
  volumes: Record<string, VolumeState[]>;
  tasks: TaskState[];
  dns: Record<string, DnsState>;
  /** Second octet of the 127.X.0.0/16 block the container addresses were taken from. */
  addressBlock?: number;
  /** Next container address index in the address block. */
  nextAddress: number;
  /** Next task pid. */
  nextPid: number;
  /** Secrets the simulator made up (admin token, root password), kept so a restart keeps them. */
  secrets: Record<string, string>;
  /** Room for modules registered from outside (e.g. realms), persisted with the rest. */
  ext: Record<string, unknown>;
}

export function emptyState(): SimState {
  return {
    version: 1,
    containers: {},
    volumes: {},
    tasks: [],
    dns: {},
    nextAddress: 1,
    nextPid: 1000 + Math.floor(Math.random() * 100_000),
    secrets: {},
    ext: {},
  };
}

export class StateStore {
  readonly data: SimState;
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(private readonly file: string | undefined) {
    this.data =
      file && existsSync(file)
        ? { ...emptyState(), ...(JSON.parse(readFileSync(file, "utf8")) as SimState) }
        : emptyState();
  }

  /** Schedules a write (coalesced: at most one every 100 ms). */
  changed(): void {
    if (!this.file || this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const file = this.file!;
      const text = JSON.stringify(this.data);
      this.writing = this.writing.then(async () => {
        await writeFile(file + ".tmp", text);
        await rename(file + ".tmp", file);
      });
    }, 100);
  }

  /** Writes now and stops writing (on stop). */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  /** Writes now. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.writing.catch(() => undefined);
    if (!this.file || this.closed) return;
    writeFileSync(this.file + ".tmp", JSON.stringify(this.data));
    renameSync(this.file + ".tmp", this.file);
  }
}
