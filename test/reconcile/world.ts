// The in-process world of the reconciler's shell tests: the suite's real API
// server (with the LdapPair CRD and a namespace of the file's own), the
// suite's real PostgreSQL, the Proxmox simulator with two nodes running the
// gateway stand-in and the site DNS, and the Secrets an LdapPair refers to.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { GROUP, KIND, PLURAL, VERSION, type LdapPair } from "../../src/api/ldappair.js";
import { ldapPairResource } from "../../src/main.js";
import { ProxmoxClient } from "../../src/proxmox/client.js";
import type { ContainerCreate } from "../../src/proxmox/types.js";
import { desiredPair } from "../../src/reconcile/desired.js";
import type { DesiredPair } from "../../src/reconcile/model.js";
import { pairMeta } from "../../src/reconcile/meta.js";
import { mergedEnv, staleEnvKeys } from "../../src/reconcile/tiers.js";
import { secretsWithUri } from "../support/secrets.js";
import { ResourceClient } from "../../src/runtime/resource.js";
import { attachLdapSite, ldapGatewayImage, type LdapSite } from "../pve-sim/ldap-site.js";
import { PveSimulator } from "../pve-sim/simulator.js";

const run = promisify(execFile);

export const SECRETS = {
  token: { name: "pve-token", tokenIdKey: "tokenId", tokenSecretKey: "tokenSecret" },
  database: { name: "manager-db", key: "uri" },
  ca: { name: "pve-ca", key: "ca.crt" },
} as const;

export const IMAGE = "ghcr.io/mieweb/ldap-gateway:1.4.0";

export interface World {
  kc: KubeConfig;
  namespace: string;
  sim: PveSimulator;
  site: LdapSite;
  databaseUrl: string;
  core: CoreV1Api;
  objects: CustomObjectsApi;
  resource: ResourceClient;
  /** Creates (or replaces) an LdapPair and returns it as the API server stored it, defaults applied. */
  createPair(name: string, spec?: Record<string, unknown>): Promise<LdapPair>;
  getPair(name: string): Promise<LdapPair>;
  deletePair(name: string): Promise<void>;
  /** Merge-patches the status subresource, as a reconcile before this one would have. */
  patchStatus(name: string, status: Record<string, unknown>): Promise<LdapPair>;
  putSecret(name: string, data: Record<string, string>): Promise<void>;
  deleteSecret(name: string): Promise<void>;
  stop(): Promise<void>;
}

export interface WorldOptions {
  kubeconfig: string;
  databaseUrl: string;
  namespace: string;
  /** Simulator speed: multiplies task durations (default 0.01). */
  speed?: number;
}

const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

export async function startWorld(o: WorldOptions): Promise<World> {
  const kc = new KubeConfig();
  kc.loadFromFile(o.kubeconfig);
  await run("kubectl", ["--kubeconfig", o.kubeconfig, "apply", "-f", "crds"]);
  await run("kubectl", [
    "--kubeconfig",
    o.kubeconfig,
    "wait",
    "--for=condition=Established",
    `crd/${PLURAL}.${GROUP}`,
    "--timeout=60s",
  ]);
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: o.namespace } } }).catch((err: unknown) => {
    if ((err as { code?: number }).code !== 409) throw err;
  });
  const sim = await PveSimulator.start({
    nodes: ["pve1", "pve2"],
    speed: o.speed ?? 0.01,
    stopGraceMs: 200,
    catalog: [await ldapGatewayImage({ startupScale: 0 })],
  });
  const site = await attachLdapSite(sim, { searchDomain: "example.com", configureNodes: false });
  const objects = kc.makeApiClient(CustomObjectsApi);
  const target = { group: GROUP, version: VERSION, plural: PLURAL, namespace: o.namespace };
  const putSecret = async (name: string, stringData: Record<string, string>) => {
    const body = { metadata: { name, namespace: o.namespace }, type: "Opaque", stringData };
    try {
      await core.createNamespacedSecret({ namespace: o.namespace, body });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      await core.replaceNamespacedSecret({ name, namespace: o.namespace, body });
    }
  };
  await putSecret(SECRETS.token.name, { tokenId: sim.tokenId, tokenSecret: sim.tokenSecret });
  await putSecret(SECRETS.database.name, { uri: o.databaseUrl });
  await putSecret(SECRETS.ca.name, { "ca.crt": sim.certPem });

  const getPair = async (name: string) =>
    (await objects.getNamespacedCustomObject({ ...target, name })) as LdapPair;
  const deletePair = async (name: string) => {
    await objects
      .patchNamespacedCustomObject({ ...target, name, body: { metadata: { finalizers: null } } }, mergePatch)
      .catch(() => undefined);
    await objects.deleteNamespacedCustomObject({ ...target, name }).catch(() => undefined);
  };
  return {
    kc,
    namespace: o.namespace,
    sim,
    site,
    databaseUrl: o.databaseUrl,
    core,
    objects,
    resource: new ResourceClient(kc, ldapPairResource),
    createPair: async (name, spec = {}) => {
      await deletePair(name);
      const body = {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: KIND,
        metadata: { name, namespace: o.namespace },
        spec: examplePairSpec(sim, site, spec),
      };
      return (await objects.createNamespacedCustomObject({ ...target, body })) as LdapPair;
    },
    getPair,
    deletePair,
    patchStatus: async (name, status) =>
      (await objects.patchNamespacedCustomObjectStatus(
        { ...target, name, body: { status } },
        mergePatch,
      )) as LdapPair,
    putSecret,
    deleteSecret: async (name) => {
      await core.deleteNamespacedSecret({ name, namespace: o.namespace }).catch(() => undefined);
    },
    stop: async () => {
      await site.stop();
      await sim.stop();
      await core.deleteNamespace({ name: o.namespace }).catch(() => undefined);
    },
  };
}

/** The example LdapPair pointed at the simulated site: servers on pve1 and pve2, node DNS on both. */
export function examplePairSpec(
  sim: PveSimulator,
  site: LdapSite,
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    domain: "example.com",
    image: IMAGE,
    servers: [
      { name: "ldap1", node: "pve1" },
      { name: "ldap2", node: "pve2" },
    ],
    proxmox: {
      url: sim.url,
      node: "pve1",
      credentialsSecretRef: { ...SECRETS.token },
      tls: { caSecretRef: { ...SECRETS.ca } },
    },
    database: { uriSecretRef: { ...SECRETS.database } },
    nodeDns: { nameserver: site.dnsAddress, searchDomain: "example.com", nodes: ["pve1", "pve2"] },
    rollout: { settleTime: "1s" },
    ...overrides,
  };
}

/** Polls `probe` until it returns something other than undefined. */
export async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The desired pair as the reconciler computes it, for a pair stored in the API server. */
export function desiredOf(world: World, pair: LdapPair): DesiredPair {
  const result = desiredPair(pair.spec, pairMeta(pair), secretsWithUri(world.databaseUrl));
  if (!result.ok) throw new Error(result.problem.message);
  return result.pair;
}

export function simClient(sim: PveSimulator): ProxmoxClient {
  return new ProxmoxClient({
    endpoint: sim.apiUrl,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { ca: sim.certPem },
    retry: { retries: 2, minTimeoutMs: 5, maxTimeoutMs: 20 },
  });
}

async function finished(client: ProxmoxClient, upid: string): Promise<void> {
  const status = await client.waitForTask(upid, { pollMs: 20, waitTimeoutMs: 60_000 });
  if (status.exitstatus !== "OK") throw new Error(`task ${upid} ended ${status.exitstatus}`);
}

/**
 * One server made the way the runbook (and the operator) makes it, without
 * the reconciler: pull the image if missing, create it stopped with the
 * desired parameters and tags, write the merged env, start it and wait for
 * it to listen. Returns its vmid.
 */
export async function provisionByHand(world: World, pair: LdapPair, server: string): Promise<number> {
  const desired = desiredOf(world, pair).servers.find((s) => s.name === server)!;
  const client = simClient(world.sim);
  try {
    const volumes = await client.storageContent(desired.node, desired.pull.storage, "vztmpl");
    if (!volumes.some((v) => v.volid === desired.imageVolume))
      await finished(
        client,
        await client.pullOciImage(desired.node, desired.pull.storage, { reference: desired.pull.reference }),
      );
    const vmid = await client.nextId();
    await finished(
      client,
      await client.createContainer(desired.node, { ...desired.create, vmid } as ContainerCreate),
    );
    const config = await client.containerConfig(desired.node, vmid);
    const env = mergedEnv(config.env, desired, staleEnvKeys(desired, []));
    await client.updateContainerConfig(desired.node, vmid, { set: { env }, digest: config.digest });
    await finished(client, await client.startContainer(desired.node, vmid));
    await world.sim.waitBooted(vmid, 30_000);
    return vmid;
  } finally {
    client.close();
  }
}
