/**
 * OCI image pulls (PVE 9.1 `oci-registry-pull`): which references Proxmox accepts and which volume a pull
 * writes, so a caller can tell from the storage listing whether an image is already there.
 */

/** `[host[:port]/]path:tag`: the tag is mandatory, digests (`@sha256:`) are refused by Proxmox. */
const REFERENCE_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?(?::\d+)?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export function isPullableReference(reference: string): boolean {
  return REFERENCE_RE.test(reference);
}

/** The file name Proxmox gives a pull: the part after the last `/`, other characters than [A-Za-z0-9_.-] as `_`, plus `.tar`. */
export function ociFilename(reference: string, filename?: string): string {
  const base = filename ?? reference;
  return `${base.slice(base.lastIndexOf("/") + 1).replace(/[^A-Za-z0-9_.-]/g, "_")}.tar`;
}

/** `local:vztmpl/ldap-gateway_1.4.0.tar` for `ghcr.io/mieweb/ldap-gateway:1.4.0` pulled into `local`. */
export function ociVolid(storage: string, reference: string, filename?: string): string {
  return `${storage}:vztmpl/${ociFilename(reference, filename)}`;
}

/** The tag of a pullable reference (after the last `:` that follows the last `/`). */
export function imageTag(reference: string): string {
  const name = reference.slice(reference.lastIndexOf("/") + 1);
  return name.slice(name.lastIndexOf(":") + 1);
}

/**
 * A tag that always names the same image: a version (`1.4.0`, `v2`, `1.4.0-rc1`) or
 * a commit (7 to 64 hex digits). Anything else (`latest`, a branch) can be pushed
 * again, and only a new pull shows what it names now.
 */
export function isPinnedTag(reference: string): boolean {
  const tag = imageTag(reference);
  return /^v?[0-9]+(\.[0-9]+)*([-+][A-Za-z0-9_.-]*)?$/.test(tag) || /^(sha-)?[0-9a-f]{7,64}$/.test(tag);
}

/**
 * The file a restart pulls a mutable tag to. Proxmox refuses to overwrite a
 * pulled file, so a new pull of `:latest` needs a new name: the restart's
 * stamp, digits only (`ldap-gateway_latest-r20261201T120000Z`).
 */
export function restartFilename(reference: string, restartedAt: string): string {
  const base = ociFilename(reference).replace(/\.tar$/, "");
  return `${base}-r${restartedAt.replace(/[^0-9TZ]/g, "")}`;
}

/** A volume restartFilename named: a pull of a mutable tag for one restart, superseded by the next. */
export function isRestartVolume(volid: string): boolean {
  return /-r[0-9]{8}T[0-9TZ]+\.tar$/.test(volid);
}
