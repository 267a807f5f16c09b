// act(): performs exactly one Action through the adapters and says what
// happened. It never waits for a task: a task action returns its UPID, which
// the reconciler records in status for the next reconcile to read.
//
// Two guards stand before Proxmox calls that cannot be repeated safely:
// - the LdapPair is read again from the API server (not the cache): when
//   the task in its status is not the one the plan saw, another worker or an
//   earlier life of this one already acted on a newer view, and acting again
//   would create or start twice (the cache lags behind status writes);
// - before a start, stop or delete, the container at that vmid is read
//   again: vmids are reused after a delete, so it must still carry our tags.
import type { LdapPair } from "../api/ldappair.js";
import type { ProxmoxClient } from "../proxmox/client.js";
import { isProxmoxError, OutcomeUnknown } from "../proxmox/errors.js";
import { ociFilename } from "../proxmox/oci.js";
import type { ContainerCreate, LdapRealmCreate } from "../proxmox/types.js";
import { addFinalizer, removeFinalizer } from "../runtime/finalizers.js";
import { errorMessage } from "../runtime/errors.js";
import type { KubeObject, ResourceClient } from "../runtime/resource.js";
import type { PooledClient } from "./clients.js";
import { describeAction, FINALIZER, NON_IDEMPOTENT_ACTIONS, type Action, type Problem } from "./model.js";
import { isOurServer } from "./observe-containers.js";
import { isNotThere, proxmoxProblem } from "./problems.js";

export interface ActContext {
  /** The object the plan was made from. */
  pair: LdapPair;
  /** Absent when Proxmox was not contacted. */
  client?: PooledClient;
  resource: ResourceClient;
  signal?: AbortSignal;
  /** Attempts at a free vmid when another creator takes the one nextid gave (default 4). */
  createAttempts?: number;
}

export type ActOutcome =
  /** Finished within the call; `pair` is the object as the API server returned it (finalizer changes). */
  | { result: "done"; pair?: KubeObject }
  /** A Proxmox task runs; the reconciler records it. `vmid` is the one a create took. */
  | { result: "started"; upid: string; vmid?: number }
  /** A guard refused: nothing was sent. */
  | { result: "skipped"; reason: string }
  /** Sent, no answer: it may or may not have happened; the next observe sees which. */
  | { result: "unknown"; message: string }
  | { result: "failed"; problem: Problem };

type ProxmoxAction = Exclude<Action, { kind: "AddFinalizer" | "RemoveFinalizer" }>;
type Step =
  | { result: "done" }
  | { result: "started"; upid: string; vmid?: number }
  | { result: "skipped"; reason: string };

export async function act(action: Action, ctx: ActContext): Promise<ActOutcome> {
  try {
    if (action.kind === "AddFinalizer" || action.kind === "RemoveFinalizer")
      return await finalizer(action, ctx);
    if (!ctx.client)
      return failed("ProxmoxNotContacted", `cannot ${describeAction(action)}: Proxmox was not contacted`);
    if (NON_IDEMPOTENT_ACTIONS.has(action.kind)) {
      const stale = await staleReason(ctx);
      if (stale) return { result: "skipped", reason: stale };
    }
    return await perform(action, ctx.client.client, ctx);
  } catch (err) {
    if (err instanceof OutcomeUnknown) return { result: "unknown", message: err.message };
    if (isProxmoxError(err))
      return { result: "failed", problem: proxmoxProblem(err, describeAction(action)) };
    // A 409 on the finalizer patch, an API server that did not answer the re-read: retried soon.
    return failed("ActionFailed", `${describeAction(action)}: ${errorMessage(err)}`, true);
  }
}

const failed = (reason: string, message: string, transient = false): ActOutcome => ({
  result: "failed",
  problem: { reason, message, transient },
});

async function finalizer(action: Action, ctx: ActContext): Promise<ActOutcome> {
  const obj = ctx.pair as unknown as KubeObject;
  const pair =
    action.kind === "AddFinalizer"
      ? await addFinalizer(ctx.resource, obj, FINALIZER)
      : await removeFinalizer(ctx.resource, obj, FINALIZER);
  return { result: "done", pair };
}

/**
 * Why the plan no longer fits the object in the API server, or undefined
 * when it still does. Read fresh: the cache may not hold the status that
 * recorded the last task yet.
 */
async function staleReason(ctx: ActContext): Promise<string | undefined> {
  const seen = ctx.pair;
  const { namespace, name } = seen.metadata;
  const fresh = (await ctx.resource.get(namespace, name)) as unknown as LdapPair;
  if (fresh.metadata.uid !== seen.metadata.uid) return "the LdapPair was deleted and created again";
  if (fresh.metadata.generation !== seen.metadata.generation)
    return `the spec changed (generation ${fresh.metadata.generation}, planned for ${seen.metadata.generation})`;
  if (!!fresh.metadata.deletionTimestamp !== !!seen.metadata.deletionTimestamp)
    return "the LdapPair is being deleted";
  const was = seen.status?.task?.upid;
  const now = fresh.status?.task?.upid;
  if (was !== now)
    return `status records ${now ? `task ${now}` : "no task"}, the plan saw ${was ? `task ${was}` : "none"}: another reconcile already acted`;
  return undefined;
}

async function perform(action: ProxmoxAction, client: ProxmoxClient, ctx: ActContext): Promise<Step> {
  const opts = { signal: ctx.signal };
  switch (action.kind) {
    case "PullImage":
      return pullImage(client, action, opts);
    case "DeleteImage": {
      const volume = client.api(opts).nodes.$(action.node).storage.$(action.storage).content.$(action.volid);
      return started(await (volume.$delete() as Promise<string>));
    }
    case "CreateContainer":
      return createContainer(client, action, ctx);
    case "ConfigureEnv":
      await client.updateContainerConfig(
        action.node,
        action.vmid,
        { set: { env: action.env }, digest: action.digest },
        opts,
      );
      return { result: "done" };
    case "UpdateInPlace":
      await client.updateContainerConfig(
        action.node,
        action.vmid,
        { set: action.set, delete: action.delete, digest: action.digest },
        opts,
      );
      return { result: "done" };
    case "StartContainer":
    case "StopContainer":
    case "DeleteContainer":
      return powerOrDelete(client, action, ctx);
    case "CreateRealm":
      await client.createRealm(action.params as unknown as LdapRealmCreate, opts);
      return { result: "done" };
    case "UpdateRealm":
      await client.updateRealm(
        action.name,
        { set: action.set, delete: action.delete, ...(action.digest ? { digest: action.digest } : {}) },
        opts,
      );
      return { result: "done" };
    case "DeleteRealm":
      try {
        await client.deleteRealm(action.name, opts);
      } catch (err) {
        if (!isNotThere(err)) throw err;
      }
      return { result: "done" };
    case "SyncRealm":
      // The realm's sync-defaults-options carry the scope: a sync needs no parameters.
      return started(await client.syncRealm(action.name, {}, opts));
    case "SetNodeDns":
      await client.updateNodeDns(action.node, action.dns, opts);
      return { result: "done" };
  }
}

const started = (upid: string, vmid?: number): Step => ({
  result: "started",
  upid,
  ...(vmid !== undefined ? { vmid } : {}),
});

async function pullImage(
  client: ProxmoxClient,
  action: Extract<Action, { kind: "PullImage" }>,
  opts: { signal: AbortSignal | undefined },
): Promise<Step> {
  const file = action.volid.slice(action.volid.indexOf("vztmpl/") + "vztmpl/".length);
  const filename = file.replace(/\.tar$/, "");
  const custom = ociFilename(action.reference) !== file;
  try {
    return started(
      await client.pullOciImage(
        action.node,
        action.storage,
        { reference: action.reference, ...(custom ? { filename } : {}) },
        opts,
      ),
    );
  } catch (err) {
    // `refusing to override existing file`: the volume arrived after the plan looked.
    if (isProxmoxError(err) && err.reason === "already-exists")
      return { result: "skipped", reason: `${action.volid} is already on ${action.node}` };
    throw err;
  }
}

/**
 * nextid reserves nothing: another creator may take the same id between the
 * two calls, and Proxmox answers `CT N already exists` at once. Then the next
 * free id is tried, a few times.
 */
async function createContainer(
  client: ProxmoxClient,
  action: Extract<Action, { kind: "CreateContainer" }>,
  ctx: ActContext,
): Promise<Step> {
  const opts = { signal: ctx.signal };
  const attempts = ctx.createAttempts ?? 4;
  let tried = 0;
  for (let attempt = 1; ; attempt++) {
    const vmid = Math.max(await client.nextId(opts), tried + 1);
    try {
      // Omit<> of an indexed type keeps only the index: the params are the whole create but the vmid.
      const params = { ...action.params, vmid } as ContainerCreate;
      return started(await client.createContainer(action.node, params, opts), vmid);
    } catch (err) {
      const collision = isProxmoxError(err) && err.reason === "already-exists";
      if (!collision || attempt >= attempts) throw err;
      tried = vmid;
    }
  }
}

/** Start, stop and delete act on a vmid: only while the container there still carries our tags. */
async function powerOrDelete(
  client: ProxmoxClient,
  action: Extract<Action, { kind: "StartContainer" | "StopContainer" | "DeleteContainer" }>,
  ctx: ActContext,
): Promise<Step> {
  const { node, vmid, server } = action;
  const opts = { signal: ctx.signal };
  let tags: string | undefined;
  try {
    tags = (await client.containerConfig(node, vmid, opts)).tags;
  } catch (err) {
    if (isNotThere(err)) return { result: "skipped", reason: `CT ${vmid} is no longer on ${node}` };
    throw err;
  }
  if (!isOurServer(tags, ctx.pair.metadata.uid ?? "", server))
    return {
      result: "skipped",
      reason: `CT ${vmid} on ${node} is no longer ${server} of this LdapPair (tags ${tags ?? "none"})`,
    };
  switch (action.kind) {
    case "StartContainer":
      return started(await client.startContainer(node, vmid, opts));
    case "DeleteContainer":
      return started(await client.deleteContainer(node, vmid, { purge: true }, opts));
    case "StopContainer":
      try {
        return started(await stopContainer(client, action, ctx));
      } catch (err) {
        // `CT N not running`: it stopped between the plan and the call (the shutdown it overrules ended).
        if (isProxmoxError(err) && err.reason === "not-running")
          return { result: "skipped", reason: `CT ${vmid} on ${node} is already stopped` };
        throw err;
      }
  }
}

/**
 * A shutdown that ends in a forced stop after `timeoutSeconds`. The planner
 * asks for `overrule` once its shutdown outlived its bound or failed; asked
 * again while our own shutdown of that container is in flight, it is the same:
 * a stop with overrule-shutdown aborts the shutdown and stops at once.
 */
async function stopContainer(
  client: ProxmoxClient,
  action: Extract<Action, { kind: "StopContainer" }>,
  ctx: ActContext,
): Promise<string> {
  const task = ctx.pair.status?.task;
  const opts = { signal: ctx.signal };
  const hanging = action.overrule === true || (task?.action === "StopContainer" && task.vmid === action.vmid);
  if (hanging) return client.stopContainer(action.node, action.vmid, { overruleShutdown: true }, opts);
  return client.shutdownContainer(
    action.node,
    action.vmid,
    { timeout: action.timeoutSeconds, forceStop: true },
    opts,
  );
}
