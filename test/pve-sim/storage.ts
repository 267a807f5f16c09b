/** Storages: listing, content, and OCI image pulls (PVE 9.1, `oci-registry-pull`). */
import { checkAnyPriv, checkPriv, hasPriv } from "./auth.js";
import { matchImage, type StorageDef } from "./config.js";
import { requireStorage, volumesOf, type SimCore } from "./core.js";
import { fail } from "./errors.js";
import { routeInput, type RouteContext } from "./router.js";

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

export function registerStorage(core: SimCore): void {
  const r = core.router;

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
