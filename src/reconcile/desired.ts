// What a pair should look like, rendered from its spec and the value of its
// database Secret: each server's create call, env, hashes, tags and in-place
// keys; the realm's settings; the nodes' DNS. Pure. A spec or Secret value
// that cannot work (a malformed SQL URI, an env value Proxmox would refuse)
// comes back as a Problem instead, so nothing is created from it.
import type { LdapPairSpec } from "../api/ldappair.js";
import { DomainError, resolveBaseDn } from "../gateway/base-dn.js";
import { buildHash, configHash, serverBuild, type ServerBuild } from "../gateway/config-hash.js";
import { encodeProxmoxEnv, EnvValueError, type GatewaySecrets } from "../gateway/env.js";
import { isPostgresUri } from "../health/preflight.js";
import { runbookRealm } from "../proxmox/normalize.js";
import { isPinnedTag, isPullableReference, ociVolid, restartFilename } from "../proxmox/oci.js";
import { mergeTags, type OperatorTags } from "../proxmox/tags.js";
import type { ContainerOptions } from "../proxmox/types.js";
import type { DesiredNodeDns, DesiredPair, DesiredRealm, DesiredServer, PairMeta, Problem } from "./model.js";

export type DesiredResult = { ok: true; pair: DesiredPair } | { ok: false; problem: Problem };

type Identity = Pick<PairMeta, "namespace" | "name" | "uid">;

const bad = (reason: string, message: string): DesiredResult => ({
  ok: false,
  problem: { reason, message, transient: false },
});

export function desiredPair(spec: LdapPairSpec, meta: Identity, secrets: GatewaySecrets): DesiredResult {
  const ref = spec.database.uriSecretRef;
  if (!isPostgresUri(secrets.sqlUri))
    return bad(
      "SqlUriMalformed",
      // The example leaves the password out: written as user:password@ the redactor would blank it.
      `key ${JSON.stringify(ref.key)} of Secret ${meta.namespace}/${ref.name} is not a postgres:// or postgresql:// URI with a host, such as postgres://user@db.example.com:5432/database (the password after the user and a colon)`,
    );
  if (!isPullableReference(spec.image))
    return bad(
      "ImageReferenceInvalid",
      `spec.image ${spec.image} is not [registry/]path:tag, which Proxmox pulls`,
    );
  let baseDn: string;
  try {
    baseDn = resolveBaseDn(spec);
  } catch (e) {
    if (e instanceof DomainError) return bad("DomainInvalid", e.message);
    throw e;
  }
  const servers: DesiredServer[] = [];
  for (const server of spec.servers) {
    try {
      servers.push(desiredServer(spec, server.name, meta, secrets));
    } catch (e) {
      if (e instanceof EnvValueError) return bad("EnvValueInvalid", e.message);
      throw e;
    }
  }
  const pair: DesiredPair = {
    servers,
    imageStorage: spec.proxmox.imageStorage,
    rootStorage: spec.proxmox.rootStorage,
    baseDn,
    ...(spec.realm.manage ? { realm: desiredRealm(spec, baseDn) } : {}),
    ...(spec.nodeDns ? { nodeDns: desiredNodeDns(spec) } : {}),
  };
  return { ok: true, pair };
}

function desiredServer(
  spec: LdapPairSpec,
  name: string,
  meta: Identity,
  secrets: GatewaySecrets,
): DesiredServer {
  const build = serverBuild(spec, name, secrets);
  encodeProxmoxEnv(build.env); // throws EnvValueError naming the variable, never the value
  const { cores, memoryMiB, swapMiB, startOnBoot } = spec.resources;
  const inPlace: ContainerOptions = {
    cores,
    memory: memoryMiB,
    swap: swapMiB,
    onboot: startOnBoot,
    description: containerDescription(name, meta),
  };
  return renderServer(build, { name, owner: meta.uid, inPlace, imageStorage: spec.proxmox.imageStorage });
}

interface ServerFrame {
  name: string;
  owner: string;
  inPlace: ContainerOptions;
  imageStorage: string;
}

function renderServer(build: ServerBuild, frame: ServerFrame): DesiredServer {
  const { name, inPlace, imageStorage } = frame;
  const tags: OperatorTags = {
    owner: frame.owner,
    server: name,
    configHash: configHash(build),
    buildHash: buildHash(build),
  };
  const imageVolume = ociVolid(imageStorage, build.image, pullFilename(build));
  return {
    name,
    node: build.node,
    image: build.image,
    configHash: tags.configHash,
    buildHash: tags.buildHash!,
    tags,
    imageVolume,
    pull: { storage: imageStorage, reference: build.image },
    create: {
      ostemplate: imageVolume,
      hostname: name,
      ...inPlace,
      net0: net0(build.bridge, build.ipv4, build.gateway),
      rootfs: `${build.rootStorage}:${build.diskGiB}`,
      unprivileged: true,
      tags: mergeTags(undefined, tags),
    },
    env: build.env,
    inPlace,
    build,
    ...(build.ipv4 ? { address: build.ipv4.split("/")[0]! } : {}),
  };
}

/**
 * A restart on request of a mutable tag pulls it again, under a name of its
 * own (Proxmox refuses to overwrite a pulled file); a pinned tag names the
 * same image whenever it is pulled, so its one volume serves every restart.
 */
function pullFilename(build: ServerBuild): string | undefined {
  if (!build.restartedAt || isPinnedTag(build.image)) return undefined;
  return restartFilename(build.image, build.restartedAt);
}

/**
 * The same server on another image, everything else as desired: what a
 * RemoveThenCreate rollback rebuilds a server that failed its health gate from.
 * Pure: the env (and its SQL URI) comes from the desired server as rendered.
 */
export function rebasedServer(server: DesiredServer, image: string): DesiredServer {
  return renderServer(
    { ...server.build, image },
    {
      name: server.name,
      owner: server.tags.owner,
      inPlace: server.inPlace,
      imageStorage: server.pull.storage,
    },
  );
}

/** eth0 on the bridge, DHCP or static; Proxmox adds host-managed=1 itself for an OCI container. */
export function net0(bridge: string, ipv4?: string, gateway?: string): string {
  const ip = ipv4 ? `ip=${ipv4}${gateway ? `,gw=${gateway}` : ""}` : "ip=dhcp";
  return `name=eth0,bridge=${bridge},${ip}`;
}

/** Names the LdapPair, so an admin looking at the container in Proxmox knows who keeps it so. */
export function containerDescription(server: string, meta: Identity): string {
  return `${server} of LdapPair ${meta.namespace}/${meta.name} (uid ${meta.uid}), managed by ldappair-operator`;
}

function desiredRealm(spec: LdapPairSpec, baseDn: string): DesiredRealm {
  const names = spec.servers.map((s) => s.name);
  return {
    name: spec.realm.name,
    settings: runbookRealm({
      baseDn,
      servers: [names[0]!, names[1]!],
      default: spec.realm.default,
      verifyCertificate: spec.realm.verifyCertificate,
      emailAttribute: spec.realm.emailAttribute,
      syncScope: spec.realm.syncScope,
      syncNames: spec.realm.syncNames,
    }),
    syncNode: spec.proxmox.node,
  };
}

function desiredNodeDns(spec: LdapPairSpec): DesiredNodeDns {
  const dns = spec.nodeDns!;
  const serverNodes = spec.servers.map((s) => s.node ?? spec.proxmox.node);
  const nodes = dns.nodes ?? [...new Set([...serverNodes, spec.proxmox.node])];
  const search = (dns.searchDomain ?? spec.domain ?? "").toLowerCase().replace(/\.$/, "");
  return { nameserver: dns.nameserver, search, nodes };
}

// ---- the realm's marker ----------------------------------------------------
// The realm's comment says which LdapPair manages it: a realm whose marker
// names another pair is never taken over, and one without a marker only with
// realm.adopt. The uid makes the claim exact; the name is for people. An
// adopted realm says so, because deletion removes only a realm it created.

/** Who made a realm the operator manages. */
export type RealmOrigin = "created" | "adopted";

const ADOPTED = "Adopted: ";
const MARKER = /\bmanaged by LdapPair \S+ \(uid ([0-9a-z-]+)\)/i;

/** The comment the operator writes on a realm it manages. */
export function realmMarker(meta: Identity, origin: RealmOrigin = "created"): string {
  const marker = `Managed by LdapPair ${meta.namespace}/${meta.name} (uid ${meta.uid.toLowerCase()})`;
  return origin === "adopted" ? `${ADOPTED}${marker}` : marker;
}

/** The uid a realm's comment names as its manager, if it carries the marker. */
export function realmManagerOf(comment: unknown): string | undefined {
  if (typeof comment !== "string") return undefined;
  return MARKER.exec(comment)?.[1]?.toLowerCase();
}

/** Whether the operator created a realm it manages or adopted it, from the comment it wrote. */
export function realmOrigin(comment: unknown): RealmOrigin {
  return typeof comment === "string" && comment.startsWith(ADOPTED) ? "adopted" : "created";
}
