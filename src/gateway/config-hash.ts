// The configuration a server is built from, and its hash. The hash goes into a
// Proxmox tag on the container, so after a crash the operator can tell from
// Proxmox alone whether a container is current. It covers exactly what forces
// a rebuild: image, environment, resources, placement and network. startOnBoot
// is left out because Proxmox changes it in place.
//
// The environment includes SQL_URI, so the hash depends on the database
// password: whoever can read the tag can read the container's env anyway
// (both need VM.Audit), so the hash reveals nothing new.
import { createHash } from "node:crypto";
import type { LdapPairSpec } from "../api/ldappair.js";
import { renderGatewayEnv, type GatewayEnv, type GatewaySecrets } from "./env.js";

export interface ServerBuild {
  image: string;
  node: string;
  env: GatewayEnv;
  cores: number;
  memoryMiB: number;
  swapMiB: number;
  diskGiB: number;
  rootStorage: string;
  bridge: string;
  ipv4?: string;
  gateway?: string;
}

export function serverBuild(spec: LdapPairSpec, serverName: string, secrets: GatewaySecrets): ServerBuild {
  const server = spec.servers.find((s) => s.name === serverName);
  if (!server) throw new Error(`server ${serverName} is not part of this pair`);
  const { cores, memoryMiB, swapMiB, diskGiB } = spec.resources;
  return {
    image: spec.image,
    node: server.node ?? spec.proxmox.node,
    env: renderGatewayEnv(spec, serverName, secrets),
    cores,
    memoryMiB,
    swapMiB,
    diskGiB,
    rootStorage: spec.proxmox.rootStorage,
    bridge: spec.proxmox.bridge,
    ...(server.network?.ipv4 ? { ipv4: server.network.ipv4 } : {}),
    ...(server.network?.gateway ? { gateway: server.network.gateway } : {}),
  };
}

/** 16 hex digits: enough to tell configurations apart, short enough for a tag. */
export function configHash(build: ServerBuild): string {
  const canonical = canonicalJson({ ...build, env: Object.fromEntries(build.env) });
  return createHash("sha256").update(canonical).digest("hex").slice(0, 16);
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
