/** The services every API module works with, and the lookups they share. */
import type { EventEmitter } from "node:events";
import type { Auth } from "./auth.js";
import type { SimConfig, StorageDef } from "./config.js";
import { fail } from "./errors.js";
import type { Faults } from "./faults.js";
import type { RequestLog } from "./requestlog.js";
import type { Router } from "./router.js";
import type { AddressBlock, ContainerRuntime } from "./runtime.js";
import type { ContainerState, SimState, StateStore, VolumeState } from "./state.js";
import type { TaskManager } from "./tasks.js";

export interface SimCore {
  readonly config: SimConfig;
  readonly store: StateStore;
  readonly auth: Auth;
  readonly tasks: TaskManager;
  readonly faults: Faults;
  readonly runtime: ContainerRuntime;
  readonly addresses: AddressBlock;
  readonly requestLog: RequestLog;
  readonly router: Router;
  /** Emits `container` with a ContainerEvent whenever a container is created, started, stopped or destroyed. */
  readonly events: EventEmitter;
}

export interface ContainerEvent {
  kind: "created" | "started" | "booted" | "stopped" | "destroyed";
  vmid: number;
  node: string;
  hostname: string;
  address: string;
}

export function emitContainer(core: SimCore, kind: ContainerEvent["kind"], ct: ContainerState): void {
  const e: ContainerEvent = {
    kind,
    vmid: ct.vmid,
    node: ct.node,
    hostname: String(ct.conf["hostname"] ?? `CT${ct.vmid}`),
    address: ct.address,
  };
  core.events.emit("container", e);
}

export function state(core: SimCore): SimState {
  return core.store.data;
}

/** Unknown node names (inferred: pveproxy cannot resolve a node that is not in the cluster). */
export function requireNode(core: SimCore, node: string): void {
  if (!core.config.nodes.includes(node)) throw fail(`no such cluster node '${node}'`);
}

export function requireStorage(core: SimCore, node: string, id: string): StorageDef {
  const s = core.config.storages.find((x) => x.id === id);
  if (!s) throw fail(`storage '${id}' does not exist`);
  // inferred text: the storage is configured but restricted to other nodes.
  if (s.nodes && !s.nodes.includes(node)) throw fail(`storage '${id}' is not available on node '${node}'`);
  return s;
}

/** The volume list of a storage as seen from a node (shared storages are one list for all nodes). */
export function volumesOf(core: SimCore, storage: StorageDef, node: string): VolumeState[] {
  const key = storage.shared ? storage.id : `${node}/${storage.id}`;
  const all = core.store.data.volumes;
  let list = all[key];
  if (!list) {
    list = (storage.volumes ?? []).map((v) => ({
      volid: `${storage.id}:${v}`,
      content: (v.split("/")[0] ?? "vztmpl") as VolumeState["content"],
      format: /\.tar\.(zst|gz|xz)$/.exec(v)?.[0].slice(1) ?? "raw",
      size: 128 * 1024 * 1024,
      ctime: Math.floor(Date.now() / 1000),
    }));
    all[key] = list;
  }
  return list;
}

export function findVolume(core: SimCore, node: string, volid: string): VolumeState | undefined {
  const sid = volid.split(":")[0] ?? "";
  const storage = core.config.storages.find((s) => s.id === sid);
  if (!storage) return undefined;
  return volumesOf(core, storage, node).find((v) => v.volid === volid);
}

export function findContainer(core: SimCore, vmid: number): ContainerState | undefined {
  return core.store.data.containers[String(vmid)];
}

/** The container `vmid` on `node`, as pve-container loads its config file. */
export function containerOn(core: SimCore, node: string, vmid: number): ContainerState {
  const ct = findContainer(core, vmid);
  if (!ct || ct.node !== node)
    throw fail(`Configuration file 'nodes/${node}/lxc/${vmid}.conf' does not exist`);
  return ct;
}
