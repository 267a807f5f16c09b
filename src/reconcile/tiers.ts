// Which kind of change a container needs to match its desired server: one
// pure function, tested as a table.
//
//   rebuild  - a build input differs (image, node, disk, storage, bridge,
//              network): only a new container has them. Read from the build
//              tag and the node the container is on.
//   restart  - the env differs: Proxmox keeps an env change pending until the
//              next start. Read from the env itself, not the tag, so a hand
//              edit is seen too.
//   inPlace  - cores, memory, swap, onboot, description or our tags differ:
//              Proxmox applies them to a running container at once.
//   inSync   - nothing to do.
//
// The first that applies wins: a rebuild brings the env and everything else
// with it, and a restart is followed by the in-place update that records the
// new config hash in the tags.
import { OPERATOR_OWNED_ENV } from "../gateway/variables.js";
import { encodeProxmoxEnv } from "../gateway/env.js";
import { configUpdate, parseEnv, type Update } from "../proxmox/normalize.js";
import { mergeTags } from "../proxmox/tags.js";
import type { ContainerConfig } from "../proxmox/types.js";
import type { DesiredServer, ObservedContainer } from "./model.js";

export type Tier = "inSync" | "inPlace" | "restart" | "rebuild";

export type TierVerdict =
  | { tier: "rebuild"; reason: string }
  | {
      tier: "restart";
      reason: string;
      /** The desired env is already written and waits for the next start. */
      envPending: boolean;
    }
  | { tier: "inPlace"; reason: string; update: Update }
  | { tier: "inSync" };

/**
 * `recordedEnvKeys`: the variables the operator last wrote (status), so that a
 * variable removed from spec.extraEnv is removed from the container too.
 */
export function classify(
  container: ObservedContainer & { config: ContainerConfig },
  desired: DesiredServer,
  recordedEnvKeys: readonly string[] = [],
): TierVerdict {
  const rebuild = rebuildReason(container, desired);
  if (rebuild) return { tier: "rebuild", reason: rebuild };
  const stale = staleEnvKeys(desired, recordedEnvKeys);
  if (!envApplied(container.config.env, desired, stale)) {
    const pending = container.pending?.["env"];
    const envPending = typeof pending === "string" && envApplied(pending, desired, stale);
    return { tier: "restart", reason: "the env differs", envPending };
  }
  const update = configUpdate(inPlaceKeys(container.config, desired), container.config);
  if (update)
    return {
      tier: "inPlace",
      reason: `${[...Object.keys(update.set), ...update.delete].join(", ")} differ`,
      update,
    };
  return { tier: "inSync" };
}

function rebuildReason(container: ObservedContainer, desired: DesiredServer): string | undefined {
  if (container.node !== desired.node)
    return `it is on node ${container.node}, the spec wants ${desired.node}`;
  if (container.buildHash === undefined) {
    // The config hash covers the build inputs: if it matches, so do they.
    if (container.configHash === desired.configHash) return undefined;
    return "it has no build tag and its config hash differs";
  }
  if (container.buildHash !== desired.buildHash)
    return `its build hash ${container.buildHash} differs from ${desired.buildHash} (image, disk, storage or network changed)`;
  return undefined;
}

/** The in-place keys to compare, our tags among them (foreign tags kept). */
function inPlaceKeys(config: ContainerConfig, desired: DesiredServer) {
  return { ...desired.inPlace, tags: mergeTags(config.tags, desired.tags) };
}

/** Variables the operator owns or once wrote that the desired env no longer has. */
export function staleEnvKeys(desired: DesiredServer, recordedEnvKeys: readonly string[]): string[] {
  const wanted = new Set(desired.env.map(([name]) => name));
  return [...new Set([...OPERATOR_OWNED_ENV, ...recordedEnvKeys])].filter((k) => !wanted.has(k));
}

/** Every desired variable has its value, and no stale one is left. */
export function envApplied(
  env: string | undefined,
  desired: DesiredServer,
  stale: readonly string[],
): boolean {
  const current = parseEnv(env);
  return desired.env.every(([k, v]) => current.get(k) === v) && stale.every((k) => !current.has(k));
}

/**
 * The env to write: the container's own variables (the image's, from its
 * creation) without stale ones, then the operator's, which win. Holds SQL_URI.
 */
export function mergedEnv(env: string | undefined, desired: DesiredServer, stale: readonly string[]): string {
  const drop = new Set([...stale, ...desired.env.map(([name]) => name)]);
  const kept = [...parseEnv(env)].filter(([k]) => !drop.has(k));
  return encodeProxmoxEnv([...kept, ...desired.env]);
}
