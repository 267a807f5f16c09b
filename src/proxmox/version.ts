/**
 * Which Proxmox VE the operator can work with: OCI containers (image pull, `env`, `entrypoint`,
 * `host-managed`) arrived with 9.1, so anything older is refused with a clear reason.
 */
export const MINIMUM_VERSION = { major: 9, minor: 1 } as const;

export type VersionVerdict =
  { supported: true; major: number; minor: number } | { supported: false; reason: string };

/** Reads `9.1.1`, `9.1`, `10.0~2` (the `version` field of `GET /version`, else `release`). */
export function parseVersion(text: string): { major: number; minor: number } | undefined {
  const m = /^(\d+)\.(\d+)(?:[.~+-]|$)/.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

export function versionVerdict(v: { version?: string; release?: string }): VersionVerdict {
  const text = v.version || v.release || "";
  const parsed = parseVersion(text) ?? parseVersion(v.release ?? "");
  const need = `${MINIMUM_VERSION.major}.${MINIMUM_VERSION.minor}`;
  if (!parsed)
    return { supported: false, reason: `Proxmox VE reported no readable version (${JSON.stringify(text)})` };
  const { major, minor } = parsed;
  if (major > MINIMUM_VERSION.major || (major === MINIMUM_VERSION.major && minor >= MINIMUM_VERSION.minor))
    return { supported: true, major, minor };
  return {
    supported: false,
    reason: `Proxmox VE ${text} is older than ${need}: OCI containers (image pull, env, entrypoint) need ${need} or newer`,
  };
}
