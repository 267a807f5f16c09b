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
