/** Storages: listing, content, volume deletion, and OCI image pulls (PVE 9.1, `oci-registry-pull`). */
import { checkAnyPriv, checkPriv, checkVmPriv, hasPriv, type Identity } from "./auth.js";
import { matchImage, type StorageDef } from "./config.js";
import { findContainer, requireStorage, volumesOf, type SimCore } from "./core.js";
import { fail, paramError } from "./errors.js";
import { routeInput, type RouteContext } from "./router.js";
import type { TaskContext } from "./tasks.js";

/**
 * `[host[:port]/]path:tag`: the tag is mandatory and digests (`@sha256:...`) are refused. The 400 text is
 * PVE::JSONSchema's for a pattern mismatch (inferred: the reference does not quote the real text).
 */
export const OCI_REFERENCE_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** The file a pull writes: the part after the last `/`, characters outside [A-Za-z0-9_.-] mapped to `_`, plus `.tar`. */
export function ociFilename(reference: string, filename?: string): string {
  const base = filename ?? reference;
  const last = base.slice(base.lastIndexOf("/") + 1);
  return `${last.replace(/[^A-Za-z0-9_.-]/g, "_")}.tar`;
}

function storagePath(s: StorageDef): string {
  return s.id === "local" ? "/var/lib/vz" : `/mnt/pve/${s.id}`;
}

/** PVE::Storage::Plugin's parse_volume_id: `STORAGE:VOLNAME`. */
const VOLUME_ID_RE = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$/i;

/**
 * Content.pm's real_volume_id: `volume` is a full volid or a name relative to the storage of the path.
 * The 400 texts are the ones it dies with (inferred: without the trailing newline PVE may keep).
 */
export function realVolumeId(storeid: string, volume: string): string {
  if (!volume.includes(":")) return `${storeid}:${volume}`;
  const sid = VOLUME_ID_RE.exec(volume)?.[1];
  if (sid === undefined) throw paramError({ volume: `unable to parse volume ID '${volume}'` });
  if (sid !== storeid) throw paramError({ volume: `storage ID mismatch (${sid} != ${storeid})` });
  return volume;
}

export interface ParsedVolume {
  /** images, vztmpl, iso, backup, snippets. */
  vtype: string;
  /** The guest a disk or a backup belongs to. */
  owner?: number;
  /** The file of a volume on a file-based storage; block storages have none. */
  path?: string;
}

/** Plugin.pm's parse_volname for directory storages, the kinds the simulator holds (no linked clones, no import). */
const FILE_VOLNAMES: { re: RegExp; vtype: string; subdir: string }[] = [
  { re: /^(\d+)\/([^/\s]+)$/, vtype: "images", subdir: "images" },
  { re: /^iso\/([^/]+\.(?:iso|img))$/i, vtype: "iso", subdir: "template/iso" },
  { re: /^vztmpl\/([^/]+\.tar(?:\.(?:gz|xz|zst|bz2))?)$/i, vtype: "vztmpl", subdir: "template/cache" },
  {
    re: /^backup\/([^/]+\.(?:tgz|(?:tar|vma)(?:\.(?:gz|lzo|zst|bz2))?))$/,
    vtype: "backup",
    subdir: "dump",
  },
  { re: /^snippets\/([^/]+)$/, vtype: "snippets", subdir: "snippets" },
];

function parseFileVolname(s: StorageDef, volname: string): ParsedVolume {
  for (const { re, vtype, subdir } of FILE_VOLNAMES) {
    const m = re.exec(volname);
    if (!m) continue;
    if (vtype === "images") {
      // parse_name_dir: a disk file is named after its guest and ends in its format.
      if (!/^(vm|base|subvol)-\d+-[^/\s]+\.(raw|qcow2|vmdk|subvol)$/.test(m[2]!))
        throw fail(`unable to parse volume filename '${m[2]}'`);
      return { vtype, owner: Number(m[1]), path: `${storagePath(s)}/images/${m[1]}/${m[2]}` };
    }
    const backupOwner =
      vtype === "backup" ? /^vzdump-(?:openvz|lxc|qemu)-(\d+)-/.exec(m[1]!)?.[1] : undefined;
    return {
      vtype,
      ...(backupOwner !== undefined ? { owner: Number(backupOwner) } : {}),
      path: `${storagePath(s)}/${subdir}/${m[1]}`,
    };
  }
  throw fail(`unable to parse directory volume name '${volname}'`);
}

/**
 * A volume name as the storage's plugin parses it, or the 500 it dies with. LVMPlugin's text was read;
 * LvmThinPlugin's and ZFSPoolPlugin's patterns and texts are inferred to follow it.
 */
export function parseVolname(s: StorageDef, volname: string): ParsedVolume {
  if (s.type === "dir" || s.type === "nfs") return parseFileVolname(s, volname);
  const re =
    s.type === "zfspool"
      ? /^(?:(?:base|basevol)-\d+-\S+\/)?(?:base|basevol|vm|subvol)-(\d+)-\S+$/
      : /^(?:vm|base)-(\d+)-\S+$/;
  const owner = re.exec(volname)?.[1];
  if (owner === undefined)
    throw fail(`unable to parse ${s.type === "zfspool" ? "zfs" : "lvm"} volume name '${volname}'`);
  return { vtype: "images", owner: Number(owner) };
}

/** Datastore.Allocate, whatever the content; a guest's backup also goes with AllocateSpace and VM.Backup. */
function checkDeletePriv(core: SimCore, id: Identity, sid: string, vol: ParsedVolume): void {
  if (vol.vtype === "backup" && vol.owner !== undefined) {
    checkPriv(id, `/storage/${sid}`, ["Datastore.AllocateSpace"]);
    checkVmPriv(id, vol.owner, findContainer(core, vol.owner)?.pool, ["VM.Backup"]);
  } else checkPriv(id, `/storage/${sid}`, ["Datastore.Allocate"]);
}

/**
 * The imgdel worker: vdisk_free, then `Removed volume`. A file already gone is only a warning (the task
 * ends `WARNINGS: 1`); nothing checks whether a guest was made from a template, as containers keep no
 * reference to theirs (inferred from pve-container's config keys). A removal takes the `destroy` duration.
 */
async function freeVolume(
  core: SimCore,
  t: TaskContext,
  node: string,
  storage: StorageDef,
  volid: string,
  vol: ParsedVolume,
): Promise<void> {
  await t.sleep(core.config.durations.destroy);
  // activate_storage: a storage restricted to other nodes fails here, in the task.
  requireStorage(core, node, storage.id);
  const list = volumesOf(core, storage, node);
  const i = list.findIndex((v) => v.volid === volid);
  if (i >= 0) {
    list.splice(i, 1);
    core.store.changed();
  } else if (vol.path !== undefined) t.warn(`disk image '${vol.path}' does not exist`);
  // inferred: a block storage's remove command fails on a volume it does not have (text not read).
  else throw fail(`volume '${volid}' does not exist`);
  t.log(`Removed volume '${volid}'`);
}

/** `delay`: waits up to that many real seconds; a task ended by then answers null, or fails with its status. */
async function afterDelay(core: SimCore, upid: string, seconds: number): Promise<string | null> {
  const task = await core.tasks.waitFor(upid, seconds * 1000).catch(() => undefined);
  if (!task) return upid;
  const status = task.exitstatus ?? "unexpected status";
  if (status === "OK" || /^WARNINGS: \d+$/.test(status)) return null;
  throw fail(status);
}

/**
 * Clients send the volume as one path segment (`local:vztmpl%2Fx.tar`: proxmox-api's `$()` escapes `/`);
 * the simulator decodes the whole path before routing, so a volume name with one `/` arrives as two.
 */
function withVolume(c: RouteContext): RouteContext {
  const { volume, volname, ...rest } = c.params;
  return { ...c, params: { ...rest, volume: volname === undefined ? volume! : `${volume}/${volname}` } };
}

/** DELETE .../content/{volume} (Content.pm `delete`): checks at once, removes in an `imgdel` task. */
async function deleteVolume(core: SimCore, route: RouteContext): Promise<string | null> {
  const c = withVolume(route);
  const node = c.params["node"]!;
  const sid = c.params["storage"]!;
  const p = routeInput(c, {
    properties: { delay: { type: "integer", optional: true, minimum: 1, maximum: 30 } },
  });
  const volid = realVolumeId(sid, String(p["volume"]));
  const storage = core.config.storages.find((s) => s.id === sid);
  if (!storage) throw fail(`storage '${sid}' does not exist`);
  const vol = parseVolname(storage, volid.slice(sid.length + 1));
  checkDeletePriv(core, c.identity, sid, vol);
  const id = vol.owner !== undefined ? `${vol.owner}@${sid}` : sid;
  const upid = core.tasks.start(node, "imgdel", id, c.identity.authid, (t) =>
    freeVolume(core, t, node, storage, volid, vol),
  );
  return p["delay"] === undefined ? upid : afterDelay(core, upid, Number(p["delay"]));
}

export function registerStorage(core: SimCore): void {
  const r = core.router;

  for (const volume of ["{volume}", "{volume}/{volname}"])
    r.delete(`/nodes/{node}/storage/{storage}/content/${volume}`, (c) => deleteVolume(core, c));

  r.get("/nodes/{node}/storage", (c: RouteContext) => {
    const node = c.params["node"]!;
    const p = routeInput(c, {
      properties: {
        content: { type: "string", optional: true },
        storage: { type: "string", optional: true },
        enabled: { type: "boolean", optional: true },
      },
    });
    return core.config.storages
      .filter((s) => !s.nodes || s.nodes.includes(node))
      .filter((s) => p["content"] === undefined || s.content.includes(String(p["content"])))
      .filter((s) => p["storage"] === undefined || s.id === p["storage"])
      .filter(
        (s) =>
          hasPriv(c.identity, `/storage/${s.id}`, "Datastore.Audit") ||
          hasPriv(c.identity, `/storage/${s.id}`, "Datastore.AllocateSpace"),
      )
      .map((s) => {
        const used = volumesOf(core, s, node).reduce((a, v) => a + v.size, 0);
        const total = 100 * 1024 ** 3;
        return {
          storage: s.id,
          type: s.type,
          content: s.content.join(","),
          active: 1,
          enabled: 1,
          shared: s.shared ? 1 : 0,
          total,
          used,
          avail: total - used,
          used_fraction: used / total,
        };
      });
  });

  r.get("/nodes/{node}/storage/{storage}/content", (c: RouteContext) => {
    const node = c.params["node"]!;
    const p = routeInput(c, {
      properties: {
        content: {
          type: "string",
          optional: true,
          enum: ["vztmpl", "rootdir", "iso", "images", "backup", "snippets", "import"],
        },
        vmid: { type: "integer", optional: true },
      },
    });
    checkAnyPriv(c.identity, `/storage/${c.params["storage"]}`, [
      "Datastore.Audit",
      "Datastore.AllocateSpace",
    ]);
    const storage = requireStorage(core, node, c.params["storage"]!);
    return volumesOf(core, storage, node)
      .filter((v) => p["content"] === undefined || v.content === p["content"])
      .filter((v) => p["vmid"] === undefined || v.vmid === p["vmid"])
      .map((v) => ({
        volid: v.volid,
        content: v.content,
        format: v.format,
        size: v.size,
        ctime: v.ctime,
        ...(v.vmid !== undefined ? { vmid: v.vmid } : {}),
      }));
  });

  r.post("/nodes/{node}/storage/{storage}/oci-registry-pull", (c: RouteContext) => {
    const node = c.params["node"]!;
    const sid = c.params["storage"]!;
    const p = routeInput(c, {
      properties: {
        reference: { type: "string", pattern: OCI_REFERENCE_RE },
        filename: { type: "string", optional: true, maxLength: 255 },
      },
    });
    checkPriv(c.identity, `/storage/${sid}`, ["Datastore.AllocateTemplate"]);
    checkPriv(c.identity, `/nodes/${node}`, ["Sys.AccessNetwork"]);
    const storage = requireStorage(core, node, sid);
    // inferred text: a pull needs a file-based storage that holds container templates.
    if (!storage.content.includes("vztmpl") || !["dir", "nfs"].includes(storage.type))
      throw fail(`storage '${sid}' does not support content type 'vztmpl'`);
    const reference = String(p["reference"]);
    const file = ociFilename(reference, p["filename"] as string | undefined);
    const volid = `${sid}:vztmpl/${file}`;
    const path = `${storagePath(storage)}/template/cache/${file}`;
    const exists = () => volumesOf(core, storage, node).some((v) => v.volid === volid);
    if (exists()) throw fail(`refusing to override existing file '${path}'`);

    return core.tasks.start(node, "ociregistrypull", sid, c.identity.authid, async (t) => {
      t.log(`Pulling ${reference} to ${path}`);
      await t.sleep(core.config.durations.pull);
      // Two pulls racing for one file: the one that finishes second finds it there.
      if (exists()) throw fail(`refusing to override existing file '${path}'`);
      const entry = matchImage(core.config.catalog, reference);
      // inferred text: skopeo's error for an image the registry does not have.
      if (!entry)
        throw fail(
          `skopeo copy failed: reading manifest ${reference.slice(reference.lastIndexOf(":") + 1)} in ${reference.slice(0, reference.lastIndexOf(":"))}: manifest unknown`,
        );
      t.log("Copying blob sha256:" + "0".repeat(64));
      t.log("Writing manifest to image destination");
      volumesOf(core, storage, node).push({
        volid,
        content: "vztmpl",
        format: "tar",
        size: 60 * 1024 * 1024,
        ctime: Math.floor(Date.now() / 1000),
        reference,
      });
      core.store.changed();
    });
  });
}
