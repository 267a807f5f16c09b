// observe(): everything the planner needs, read through the adapters, as one
// Observation. Nothing here decides; a failed read leaves its part absent or
// becomes a typed Problem in its place, so one unreachable node or missing
// privilege never hides the rest of what was seen. Only the two reads every
// decision rests on (the version and the inventory) make Proxmox "not ok".
//
// Order: the Secrets (without them Proxmox cannot be asked), the Proxmox
// client and its version, then in parallel the inventory (the shared
// snapshot), the nodes and their storages, the image volumes, the realm, the
// node DNS, the database preflight and the task recorded in status; then the
// config, pending values and address of each of our containers, and the probe
// of each running one (its expectation comes from the preflight).
import type { LdapPair, LdapPairSpec } from "../api/ldappair.js";
import { resolveBaseDn } from "../gateway/base-dn.js";
import { pairQueries } from "../gateway/env.js";
import { preflight, type PreflightOptions, type PreflightResult } from "../health/preflight.js";
import type { ProbeExpectation, ProbeTimeouts } from "../health/probe-plan.js";
import { readPairSecrets, type PairSecrets, type SecretReader } from "../kube/secrets.js";
import type { NodeDns } from "../proxmox/types.js";
import type { ClientPool, NodeStorage, PooledClient } from "./clients.js";
import { realmManagerOf } from "./desired.js";
import type { Observation, ObservedRealm, PairMeta, Problem } from "./model.js";
import { observeServers } from "./observe-containers.js";
import { observeTask } from "./observe-task.js";
import { isNotThere, proxmoxProblem } from "./problems.js";
import { imagesInUseElsewhere } from "./observe-elsewhere.js";
import type { InventoryWatches, PairWatch } from "./watch.js";
import type { ResourceClient } from "../runtime/resource.js";

export interface ObserveDeps {
  clients: ClientPool;
  watches: InventoryWatches;
  readSecret: SecretReader;
  probeTimeouts?: Partial<ProbeTimeouts>;
  /** LDAPS port of the gateways (636). */
  probePort?: number;
  preflight?: PreflightOptions;
}

export interface ObserveRequest {
  key: string;
  pair: LdapPair;
  meta: PairMeta;
  /**
   * The inventory must have been listed after this clock time (the pair's
   * last change: a call whose answer was lost, a task seen to end). Observe
   * moves it on when it sees the recorded task ended; the caller keeps it.
   */
  freshness: { notBefore: number };
  /** For the images other LdapPairs need (deletion with policy Delete). */
  pairs?: Pick<ResourceClient, "list">;
  registerSecret(value: string): void;
  signal?: AbortSignal;
}

/** The observation, and what act() needs of the shell: the values and the client it was made with. */
export interface Observed {
  observation: Observation;
  secrets?: PairSecrets;
  client?: PooledClient;
  watch?: PairWatch;
}

export async function observe(deps: ObserveDeps, req: ObserveRequest): Promise<Observed> {
  const { pair } = req;
  const spec = pair.spec;
  const read = await readPairSecrets(deps.readSecret, pair.metadata.namespace, spec, req.registerSecret);
  if (!read.ok) {
    // Without the token the pair cannot be watched; without the URI nothing can be checked.
    deps.watches.unwatch(req.key);
    deps.clients.release(req.key);
    return { observation: notContacted({ ok: false, problem: read.problem }, read.problem) };
  }
  const secrets = read.values;
  let client: PooledClient;
  try {
    client = deps.clients.acquire(req.key, {
      endpoint: spec.proxmox.url,
      tokenId: secrets.tokenId,
      tokenSecret: secrets.tokenSecret,
      ...(secrets.ca !== undefined ? { ca: secrets.ca } : {}),
      insecure: spec.proxmox.tls.insecureSkipVerify,
    });
  } catch (err) {
    return { observation: notContacted({ ok: true }, proxmoxProblem(err)), secrets };
  }
  const database = preflight(secrets.sqlUri, pairQueries(spec), deps.preflight);
  let release: string;
  try {
    release = (await client.checkedVersion(req.signal)).release;
  } catch (err) {
    client.forgetFacts();
    const observation = notContacted({ ok: true }, proxmoxProblem(err));
    return { observation: { ...observation, database: await database }, secrets, client };
  }
  const watch = deps.watches.watch(req.key, client.client, {
    uid: pair.metadata.uid ?? "",
    servers: spec.servers.map((s) => s.name),
    // Read beside the shared poll, so a hand-made change is corrected within an interval.
    ...(spec.realm.manage ? { realm: spec.realm.name } : {}),
    dnsNodes: dnsNodes(spec),
  });
  const observation = await observeCluster(deps, req, { client, watch, database, release });
  return { observation, secrets, client, watch };
}

interface Session {
  client: PooledClient;
  watch: PairWatch;
  database: Promise<PreflightResult>;
  release: string;
}

async function observeCluster(deps: ObserveDeps, req: ObserveRequest, s: Session): Promise<Observation> {
  const { spec } = req.pair;
  const { signal } = req;
  const recorded = req.pair.status?.task;
  /** Reads that failed without stopping the rest. */
  const problems: Problem[] = [];
  // The task first: once it has ended, only a listing begun after that shows what it did.
  const taskRead = recorded
    ? observeTask(s.client.client, recorded, signal).then((t) => {
        if (t.state === "ok" || t.state === "failed")
          req.freshness.notBefore = Math.max(req.freshness.notBefore, Date.now());
        return t;
      })
    : Promise.resolve(undefined);
  const [inventory, placement, images, realm, nodeDns, task, elsewhere] = await Promise.all([
    taskRead
      .then(() => s.watch.containers(req.freshness.notBefore, signal))
      .then(
        (value) => ({ ok: true as const, value }),
        (err: unknown) => ({ ok: false as const, problem: proxmoxProblem(err) }),
      ),
    // A pair being deleted needs no storage: a misnamed one must not keep it from going.
    req.meta.deleting ? Promise.resolve(undefined) : checkPlacement(s.client, spec, signal),
    observeImages(s.client, spec, problems, signal),
    spec.realm.manage
      ? observeRealm(s.client, spec.realm.name, problems, signal)
      : Promise.resolve(undefined),
    observeNodeDns(s.client, spec, problems, signal),
    taskRead,
    req.meta.deleting && spec.deletionPolicy === "Delete" && req.pairs
      ? imagesInUseElsewhere(req.pairs, req.pair.metadata, spec.proxmox.url)
      : Promise.resolve(undefined),
  ]);
  const database = await s.database;
  const common = {
    secrets: { ok: true as const },
    database,
    images,
    nodeDns,
    ...(realm ? { realm } : {}),
    ...(task ? { task } : {}),
    ...(elsewhere ? { imagesInUseElsewhere: elsewhere } : {}),
    readProblems: problems,
  };
  if (!inventory.ok || placement) {
    s.client.forgetFacts();
    const problem = inventory.ok ? placement! : inventory.problem;
    return { ...common, servers: [], proxmox: { ok: false, problem } };
  }
  const servers = await observeServers(s.client.client, inventory.value, spec, {
    uid: req.pair.metadata.uid ?? "",
    expectation: probeExpectation(spec, database),
    ...(deps.probeTimeouts ? { probeTimeouts: deps.probeTimeouts } : {}),
    ...(deps.probePort !== undefined ? { probePort: deps.probePort } : {}),
    ...(signal ? { signal } : {}),
    problems,
  });
  return { ...common, proxmox: { ok: true, release: s.release }, servers };
}

/** What a healthy server must answer, from what the database holds; none without a user to look for. */
function probeExpectation(spec: LdapPairSpec, db: PreflightResult): ProbeExpectation | undefined {
  if (!db.knownUser) return undefined;
  return {
    baseDn: resolveBaseDn(spec),
    knownUser: db.knownUser,
    ...(db.userCount !== undefined ? { userCount: db.userCount } : {}),
  };
}

function notContacted(secrets: Observation["secrets"], problem: Problem): Observation {
  return { secrets, proxmox: { ok: false, problem }, servers: [], images: {}, nodeDns: {} };
}

/** The nodes the servers run on, in spec order, each once. */
export function serverNodes(spec: LdapPairSpec): string[] {
  return [...new Set(spec.servers.map((s) => s.node ?? spec.proxmox.node))];
}

/**
 * Checks that each server node exists and offers both storages the spec
 * names with the content they must hold (a pull needs `vztmpl`, a root disk
 * `rootdir`): a misnamed node or storage is a clear Problem up front, not a
 * failed create later. Node storages are remembered for a while (clients.ts).
 */
async function checkPlacement(
  client: PooledClient,
  spec: LdapPairSpec,
  signal?: AbortSignal,
): Promise<Problem | undefined> {
  for (const node of serverNodes(spec)) {
    let storages;
    try {
      storages = await client.nodeStorages(node, signal);
    } catch (err) {
      return proxmoxProblem(err, `listing the storages of node ${node}`);
    }
    const wrong = storageProblem(node, storages, spec.proxmox);
    if (wrong) return wrong;
  }
  return undefined;
}

const contentTypes = (content: string): string[] =>
  content
    .split(",")
    .map((c) => c.trim())
    .filter(Boolean);

/** A storage the spec names that the node lacks or that cannot hold what it must. */
export function storageProblem(
  node: string,
  storages: readonly NodeStorage[],
  want: { imageStorage: string; rootStorage: string },
): Problem | undefined {
  const uses = [
    [want.imageStorage, "vztmpl", "spec.proxmox.imageStorage (OCI images)"],
    [want.rootStorage, "rootdir", "spec.proxmox.rootStorage (container root disks)"],
  ] as const;
  for (const [id, content, use] of uses) {
    const storage = storages.find((s) => s.storage === id);
    if (!storage)
      return {
        reason: "StorageNotFound",
        message: `node ${node} has no storage ${id} for ${use} (or the token lacks Datastore.Audit on /storage/${id})`,
        transient: false,
      };
    if (!contentTypes(storage.content).includes(content))
      return {
        reason: "StorageContentMissing",
        message: `storage ${id} on node ${node} does not allow content ${content}, needed for ${use}; it allows ${storage.content || "nothing"}`,
        transient: false,
      };
  }
  return undefined;
}

/** The image volumes on each server node's image storage; a node that cannot be listed is left out. */
async function observeImages(
  client: PooledClient,
  spec: LdapPairSpec,
  problems: Problem[],
  signal?: AbortSignal,
): Promise<Record<string, string[]>> {
  const nodes = serverNodes(spec);
  const { imageStorage } = spec.proxmox;
  const listed = await Promise.all(
    nodes.map((node) =>
      client.client.storageContent(node, imageStorage, "vztmpl", { signal }).then(
        (volumes) => volumes.map((v) => v.volid),
        (err: unknown) =>
          void problems.push(proxmoxProblem(err, `listing the images on ${imageStorage} of node ${node}`)),
      ),
    ),
  );
  return Object.fromEntries(nodes.flatMap((node, i) => (listed[i] ? [[node, listed[i]]] : [])));
}

/** The realm as stored, `{}` when there is none, undefined when it cannot be read (nothing is decided on it). */
async function observeRealm(
  client: PooledClient,
  name: string,
  problems: Problem[],
  signal?: AbortSignal,
): Promise<ObservedRealm | undefined> {
  try {
    const { digest, ...stored } = await client.client.realm(name, { signal });
    const config = Object.fromEntries(
      Object.entries(stored).filter((e): e is [string, string | number] => e[1] !== undefined),
    );
    const managedBy = realmManagerOf(config["comment"]);
    return { config, ...(digest ? { digest } : {}), ...(managedBy ? { managedBy } : {}) };
  } catch (err) {
    if (isNotThere(err)) return {};
    problems.push(proxmoxProblem(err, `reading the realm ${name}`));
    return undefined;
  }
}

/** The nodes whose DNS the pair manages. */
export function dnsNodes(spec: LdapPairSpec): string[] {
  if (!spec.nodeDns) return [];
  return spec.nodeDns.nodes ?? [...new Set([...serverNodes(spec), spec.proxmox.node])];
}

/** Each managed node's DNS; a node that cannot be read is left out. */
async function observeNodeDns(
  client: PooledClient,
  spec: LdapPairSpec,
  problems: Problem[],
  signal?: AbortSignal,
): Promise<Record<string, NodeDns>> {
  const nodes = dnsNodes(spec);
  const read = await Promise.all(
    nodes.map((node) =>
      client.client
        .nodeDns(node, { signal })
        .then(
          pickDns,
          (err: unknown) => void problems.push(proxmoxProblem(err, `reading the DNS of node ${node}`)),
        ),
    ),
  );
  return Object.fromEntries(nodes.flatMap((node, i) => (read[i] ? [[node, read[i]]] : [])));
}

function pickDns(dns: NodeDns): NodeDns {
  const out: NodeDns = {};
  for (const k of ["search", "dns1", "dns2", "dns3"] as const) if (dns[k] !== undefined) out[k] = dns[k];
  return out;
}
