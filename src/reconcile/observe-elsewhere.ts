// Which image volumes other LdapPairs still need, so that deleting one pair
// never removes an image another pair pulled or runs. Read only for a pair
// being deleted with policy Delete; unknown (undefined) when the LdapPairs of
// the whole cluster cannot be listed, and then no image is removed. Only pairs
// on the same Proxmox cluster count: a pair elsewhere with the same image
// needs its own copy there, not this one. The cluster is told by its API's
// origin, so a cluster reached under two names counts as two; the worst that
// does is a pull again the next time the other pair builds from that image.
import { ociVolid } from "../proxmox/oci.js";
import type { LdapPair } from "../api/ldappair.js";
import type { ResourceClient } from "../runtime/resource.js";

export async function imagesInUseElsewhere(
  resource: Pick<ResourceClient, "list">,
  self: { uid?: string },
  proxmoxUrl: string,
): Promise<string[] | undefined> {
  let items;
  try {
    items = (await resource.list(undefined, undefined)).items as unknown as LdapPair[];
  } catch {
    return undefined;
  }
  const here = clusterOf(proxmoxUrl);
  return imagesOf(
    items.filter((p) => p.metadata.uid !== self.uid && clusterOf(p.spec?.proxmox?.url) === here),
  );
}

/** The API's origin (scheme, host in lower case, port); the text itself if it is no URL. */
export function clusterOf(url: string | undefined): string {
  if (!url) return "";
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Every volume the pairs record as pulled, and the one each pair's spec builds from. */
export function imagesOf(pairs: readonly LdapPair[]): string[] {
  const volids = new Set<string>();
  for (const pair of pairs) {
    for (const image of pair.status?.images ?? []) volids.add(image.volid);
    const { imageStorage } = pair.spec?.proxmox ?? {};
    if (imageStorage && pair.spec.image) volids.add(ociVolid(imageStorage, pair.spec.image));
  }
  return [...volids].sort();
}
