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
