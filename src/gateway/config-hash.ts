// The configuration a server is built from, and its two hashes. Both go into
// Proxmox tags on the container, so after a crash the operator can tell from
// Proxmox alone what a container needs:
// - the build hash covers what only a new container can change: image, node,
//   disk size, root storage, bridge and network, and rollout.restartedAt (a
//   restart on request is a new container, so a mutable tag is pulled again);
// - the config hash covers those and the environment, which a restart applies
//   (Proxmox keeps an env change pending until the next start).
// Neither covers cores, memory, swap or startOnBoot: Proxmox changes those on
// a running container, so a memory bump never takes a directory server down.
//
// The environment includes SQL_URI, so the config hash depends on the
// database password: whoever can read the tag can read the container's env
// anyway (both need VM.Audit), so the hash reveals nothing new.
import { createHash } from "node:crypto";
import type { LdapPairSpec } from "../api/ldappair.js";
import { renderGatewayEnv, type GatewayEnv, type GatewaySecrets } from "./env.js";

/** What only a new container can change. */
export interface BuildInputs {
  image: string;
  node: string;
  diskGiB: number;
  rootStorage: string;
  bridge: string;
  ipv4?: string;
  gateway?: string;
  /** spec.rollout.restartedAt: absent leaves the hashes as they were before the field existed. */
  restartedAt?: string;
}

/** What a restart or a rebuild applies: the build inputs and the environment. */
export interface ServerBuild extends BuildInputs {
  env: GatewayEnv;
}

export function serverBuild(spec: LdapPairSpec, serverName: string, secrets: GatewaySecrets): ServerBuild {
  const server = spec.servers.find((s) => s.name === serverName);
  if (!server) throw new Error(`server ${serverName} is not part of this pair`);
  return {
    image: spec.image,
    node: server.node ?? spec.proxmox.node,
    env: renderGatewayEnv(spec, serverName, secrets),
    diskGiB: spec.resources.diskGiB,
    rootStorage: spec.proxmox.rootStorage,
    bridge: spec.proxmox.bridge,
    ...(server.network?.ipv4 ? { ipv4: server.network.ipv4 } : {}),
    ...(server.network?.gateway ? { gateway: server.network.gateway } : {}),
    ...(spec.rollout?.restartedAt ? { restartedAt: spec.rollout.restartedAt } : {}),
  };
}

const digest16 = (value: unknown) =>
  createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);

/** 16 hex digits: enough to tell configurations apart, short enough for a tag. */
export function configHash(build: ServerBuild): string {
  return digest16({ ...buildInputs(build), env: Object.fromEntries(build.env) });
}

/** The hash of the build inputs alone: when it differs, the container is replaced, else restarted. */
export function buildHash(build: BuildInputs): string {
  return digest16({ build: buildInputs(build) });
}

/** Only the named inputs, so a caller's extra fields never change a hash. */
function buildInputs(b: BuildInputs): BuildInputs {
  const { image, node, diskGiB, rootStorage, bridge, ipv4, gateway, restartedAt } = b;
  return { image, node, diskGiB, rootStorage, bridge, ipv4, gateway, restartedAt };
}

/** JSON with object keys sorted at every depth, so key order never changes the hash. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Proxmox tags: `[a-z0-9_][a-z0-9_\-+.]*`. */
export const PROXMOX_TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/;
export const CONFIG_TAG_PREFIX = "ldappair-config-";
export const configTag = (hash: string) => `${CONFIG_TAG_PREFIX}${hash}`;
export const BUILD_TAG_PREFIX = "ldappair-build-";
export const buildTag = (hash: string) => `${BUILD_TAG_PREFIX}${hash}`;
