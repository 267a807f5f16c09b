// The reconciler's vocabulary: what observe() saw, the one action plan()
// chooses, and what act() reports back. observe and act are the imperative
// shell (Proxmox, LDAP, PostgreSQL, Kubernetes); plan is a pure function of
// these types and of the time, so every decision can be tested as a table.
import type { LdapPairSpec, LdapPairStatus, TaskAction } from "../api/ldappair.js";
import { TASK_ACTIONS as TASK_ACTION_NAMES } from "../api/ldappair.js";
import type { GatewayEnv } from "../gateway/env.js";
import type { ProbeResult } from "../health/ldaps-probe.js";
import type { PreflightResult } from "../health/preflight.js";
import type { NodeDns, RealmSettings } from "../proxmox/normalize.js";
import type { OperatorTags } from "../proxmox/tags.js";
import type { ServerBuild } from "../gateway/config-hash.js";
import type { ContainerConfig, ContainerCreate, ContainerOptions } from "../proxmox/types.js";
import type { ConditionUpdate } from "../runtime/conditions.js";

/** The parts of the LdapPair's metadata that decisions depend on. */
export interface PairMeta {
  namespace: string;
  name: string;
  uid: string;
  generation: number;
  deleting: boolean;
  hasFinalizer: boolean;
  annotations: Readonly<Record<string, string>>;
}

/** The finalizer the operator puts on every LdapPair before its first Proxmox call. */
export const FINALIZER = "ldapgateway.io/cleanup";
/** Present (any value): the finalizer is dropped at once, leaving everything in Proxmox as it is. */
export const DROP_FINALIZER_ANNOTATION = "ldapgateway.io/drop-finalizer";
/** A new value asks for one realm sync now. */
export const SYNC_NOW_ANNOTATION = "ldapgateway.io/sync-now";
/** Present (any value but "false"): the rollout holds between steps, as spec.rollout.paused does. */
export const PAUSED_ANNOTATION = "ldapgateway.io/paused";

/** Why an observation could not be made: a typed cause the planner turns into a condition. */
export interface Problem {
  /** A condition reason, e.g. `SecretNotFound`, `ProxmoxUnauthorized`, `ProxmoxUnreachable`. */
  reason: string;
  /** For a person; never a secret. */
  message: string;
  /** Transient problems are retried soon; permanent ones wait for a change (or a slow retry). */
  transient: boolean;
}

/** One container the pair owns, as Proxmox shows it (inventory entry, then its config). */
export interface ObservedContainer {
  vmid: number;
  node: string;
  status: "running" | "stopped" | string;
  lock?: string;
  /** From the tags: the config hash (restart + rebuild inputs) and the build hash (rebuild inputs). */
  configHash?: string;
  buildHash?: string;
  /** The config as read (current values, not pending); absent when it could not be read. */
  config?: ContainerConfig;
  /**
   * Values waiting for the next start (GET .../pending), by key; null is a
   * pending delete. Absent when not read; `{}` when nothing is pending.
   */
  pending?: Readonly<Record<string, string | number | null>>;
  /** Seconds since the container started (inventory `uptime`), while running. */
  uptimeSeconds?: number;
  /** eth0's IPv4 address while running. */
  address?: string;
  /** The health probe, when the container is running and has an address. */
  probe?: ProbeResult;
}

/** A container the pair does not own that carries one of its servers' hostnames. */
export interface ForeignContainer {
  vmid: number;
  node: string;
  hostname: string;
}

export interface ObservedServer {
  name: string;
  /** Our containers for this server: normally one, two during a swap, more is a fault to repair. */
  containers: readonly ObservedContainer[];
  foreign: readonly ForeignContainer[];
  /** Another container already configured with this server's static address. */
  addressTaken?: { address: string; vmid: number; node: string };
}

/** The state of the Proxmox task recorded in status, read from the node named in its UPID. */
export type ObservedTask =
  | { upid: string; state: "running" }
  | { upid: string; state: "ok"; exitStatus: string; log?: readonly string[] }
  | { upid: string; state: "failed"; exitStatus: string; log?: readonly string[] }
  | { upid: string; state: "unknown"; problem: Problem };

export interface ObservedRealm {
  /** Absent when there is no realm of that name. */
  config?: Readonly<Record<string, string | number>>;
  digest?: string;
  /** Which LdapPair (uid) the realm's comment names as its manager, if any (realm-marker.ts). */
  managedBy?: string;
}

export interface Observation {
  /** The Secrets resolved (their values live only in the shell; here only whether they could be read). */
  secrets: { ok: true } | { ok: false; problem: Problem };
  /** Version check and reachability of the Proxmox endpoint. */
  proxmox: { ok: true; release: string } | { ok: false; problem: Problem };
  servers: readonly ObservedServer[];
  /**
   * Image volumes listed on each node's image storage: node -> volids. A node
   * that was not listed is absent (the planner then does not pull blindly).
   */
  images: Readonly<Record<string, readonly string[]>>;
  /**
   * Image volumes another LdapPair records (its status.images) or uses: never
   * removed on deletion. Absent when unknown: then no image is removed.
   */
  imagesInUseElsewhere?: readonly string[];
  /** Absent when not read (realm.manage off). */
  realm?: ObservedRealm;
  /** Current DNS of each node the spec names; a node not read is absent. */
  nodeDns: Readonly<Record<string, NodeDns>>;
  /** The database preflight with the pair's queries; absent when it did not run. */
  database?: PreflightResult;
  task?: ObservedTask;
  /**
   * Reads that failed without stopping the rest (the realm, a node's DNS or
   * image list, a container's config): their part above is absent, and each
   * Problem says what could not be read and why (a 403 names the privilege).
   */
  readProblems?: readonly Problem[];
}

/** What one server should look like, rendered from the spec and the Secrets (pure, see desired.ts). */
export interface DesiredServer {
  name: string;
  node: string;
  image: string;
  /** Restart + rebuild inputs; the container's config tag. */
  configHash: string;
  /** Rebuild inputs only: when it differs the container is replaced, otherwise restarted. */
  buildHash: string;
  tags: OperatorTags;
  /** The image volume the container is created from, e.g. `local:vztmpl/ldap-gateway_1.4.0.tar`. */
  imageVolume: string;
  /** The pull that makes imageVolume. */
  pull: { storage: string; reference: string };
  /** The create call, without vmid (taken from nextid when acting). */
  create: Omit<ContainerCreate, "vmid">;
  /** The operator's env (merged over the image's when applied). Holds SQL_URI: never log it. */
  env: GatewayEnv;
  /** Keys Proxmox applies to a running container at once: cores, memory, swap, onboot, description. */
  inPlace: ContainerOptions;
  /** The static address without its prefix length, when the server has one. */
  address?: string;
  /** What the hashes cover, so a rollback can render the same server on the previous image. Holds SQL_URI. */
  build: ServerBuild;
}

export interface DesiredRealm {
  name: string;
  /** The runbook's table, without the marker comment (which depends on who made the realm). */
  settings: RealmSettings;
  /** The node that runs syncs (spec.proxmox.node). */
  syncNode: string;
}

export interface DesiredNodeDns {
  nameserver: string;
  search: string;
  nodes: readonly string[];
}

export interface DesiredPair {
  servers: readonly DesiredServer[];
  /** Absent when realm.manage is off. */
  realm?: DesiredRealm;
  /** Absent when spec.nodeDns is unset. */
  nodeDns?: DesiredNodeDns;
  imageStorage: string;
  rootStorage: string;
  baseDn: string;
}

/**
 * One step through the adapters. Task actions return a UPID that act() records
 * in status; the next reconcile observes the task instead of waiting for it.
 */
export type Action =
  | { kind: "AddFinalizer" }
  | { kind: "RemoveFinalizer" }
  | { kind: "PullImage"; node: string; storage: string; reference: string; volid: string }
  | { kind: "DeleteImage"; node: string; storage: string; volid: string }
  | { kind: "CreateContainer"; server: string; node: string; params: Omit<ContainerCreate, "vmid"> }
  /** `env` holds SQL_URI: never log it (describeAction leaves it out). */
  | { kind: "ConfigureEnv"; server: string; node: string; vmid: number; env: string; digest: string }
  | {
      kind: "UpdateInPlace";
      server: string;
      node: string;
      vmid: number;
      set: ContainerOptions;
      delete: readonly string[];
      digest: string;
    }
  | { kind: "StartContainer"; server: string; node: string; vmid: number }
  /**
   * A shutdown within timeoutSeconds that ends in a forced stop (`forceStop`):
   * bounded, whatever clients hold open. With `overrule`, a hard stop
   * (`status/stop`, `overrule-shutdown=1`) that aborts our own shutdown of it
   * still in flight: the planner asks for it once a shutdown outlives its bound
   * or failed.
   */
  | {
      kind: "StopContainer";
      server: string;
      node: string;
      vmid: number;
      timeoutSeconds: number;
      overrule?: boolean;
    }
  /** With purge: also out of backup, replication and HA jobs. */
  | { kind: "DeleteContainer"; server: string; node: string; vmid: number }
  | { kind: "CreateRealm"; name: string; params: Readonly<Record<string, string>> }
  | {
      kind: "UpdateRealm";
      name: string;
      set: Readonly<Record<string, string>>;
      delete: readonly string[];
      digest?: string;
    }
  | { kind: "DeleteRealm"; name: string }
  | { kind: "SyncRealm"; name: string; node: string }
  | { kind: "SetNodeDns"; node: string; dns: NodeDns & { search: string } };

export type ActionKind = Action["kind"];

/** An action whose Proxmox call returns a task. */
export const TASK_ACTIONS: ReadonlySet<ActionKind> = new Set<ActionKind>(TASK_ACTION_NAMES);

export function isTaskAction(action: Action): action is Extract<Action, { kind: TaskAction }> {
  return TASK_ACTIONS.has(action.kind);
}

/** Actions that can take a serving server down: only ever behind the peer gate (or on deletion). */
export const DESTRUCTIVE_ACTIONS: ReadonlySet<ActionKind> = new Set<ActionKind>([
  "StopContainer",
  "DeleteContainer",
]);

/** Actions Proxmox may not repeat safely: act() re-reads the LdapPair from the API server first. */
export const NON_IDEMPOTENT_ACTIONS: ReadonlySet<ActionKind> = new Set<ActionKind>([
  "PullImage",
  "CreateContainer",
  "StartContainer",
  "StopContainer",
  "DeleteContainer",
  "DeleteImage",
  "CreateRealm",
  "SyncRealm",
]);

/** One line about an action for logs, events and status: never the env or another secret. */
export function describeAction(action: Action): string {
  switch (action.kind) {
    case "AddFinalizer":
      return `add the finalizer ${FINALIZER}`;
    case "RemoveFinalizer":
      return `remove the finalizer ${FINALIZER}`;
    case "PullImage":
      return `pull ${action.reference} to ${action.volid} on ${action.node}`;
    case "DeleteImage":
      return `delete the image volume ${action.volid} on ${action.node}`;
    case "CreateContainer":
      return `create ${action.server} on ${action.node} from ${String(action.params.ostemplate)}`;
    case "ConfigureEnv":
      return `write the env of ${action.server} (CT ${action.vmid} on ${action.node})`;
    case "UpdateInPlace": {
      const keys = [...Object.keys(action.set), ...action.delete].sort().join(", ");
      return `update ${keys} of ${action.server} (CT ${action.vmid} on ${action.node}) in place`;
    }
    case "StartContainer":
      return `start ${action.server} (CT ${action.vmid} on ${action.node})`;
    case "StopContainer":
      return action.overrule
        ? `stop ${action.server} (CT ${action.vmid} on ${action.node}) at once, overruling its shutdown`
        : `stop ${action.server} (CT ${action.vmid} on ${action.node}, forced after ${action.timeoutSeconds}s)`;
    case "DeleteContainer":
      return `delete ${action.server} (CT ${action.vmid} on ${action.node})`;
    case "CreateRealm":
      return `create the realm ${action.name}`;
    case "UpdateRealm": {
      const keys = [...Object.keys(action.set), ...action.delete].sort().join(", ");
      return `update ${keys} of the realm ${action.name}`;
    }
    case "DeleteRealm":
      return `delete the realm ${action.name}`;
    case "SyncRealm":
      return `sync the realm ${action.name} on ${action.node}`;
    case "SetNodeDns":
      return `set the DNS of ${action.node} to ${action.dns.dns1 ?? "(none)"}, search ${action.dns.search}`;
  }
}

export interface EventRecord {
  type: "Normal" | "Warning";
  /** CamelCase, searchable: `ContainerCreated`, `ImagePullFailed`, `PeerGateClosed`... */
  reason: string;
  /** What was done or tried, e.g. the action kind. */
  action: string;
  note: string;
}

/** The planner's clocks; tests scale them down, the defaults are for real sites. */
export interface PlanTimings {
  /** Look at a running task again after this long. */
  taskPollMs: number;
  /** Probe a server that is being verified again after this long. */
  verifyPollMs: number;
  /** The longest wait on a gate before looking again. */
  gatePollMaxMs: number;
  /** With nothing to do: look again after this long (inventory changes enqueue the pair sooner). */
  resyncMs: number;
  /** After a transient problem (Proxmox unreachable, a node offline). */
  problemRetryMs: number;
  /** After a permanent problem: a change to the spec or a Secret requeues sooner. */
  stalledRetryMs: number;
  /** Backoff of a failed action: base * 2^(attempts-1), at most max. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** A failed action is Stalled after this many attempts in a row (and still retried at the backoff). */
  stallAfterAttempts: number;
  /** Shutdown timeout before the forced stop. */
  stopTimeoutSeconds: number;
  /** Consecutive passed probes that make a server healthy for the gate and for Ready. */
  requiredPasses: number;
}

export const DEFAULT_TIMINGS: PlanTimings = {
  taskPollMs: 1_000,
  verifyPollMs: 2_000,
  gatePollMaxMs: 5_000,
  resyncMs: 10 * 60_000,
  problemRetryMs: 15_000,
  stalledRetryMs: 5 * 60_000,
  backoffBaseMs: 10_000,
  backoffMaxMs: 10 * 60_000,
  stallAfterAttempts: 3,
  stopTimeoutSeconds: 10,
  requiredPasses: 2,
};

export interface PlanInput {
  now: Date;
  meta: PairMeta;
  spec: LdapPairSpec;
  status: LdapPairStatus;
  observed: Observation;
  /** Absent when the Secrets could not be read (observed.secrets then says why). */
  desired?: DesiredPair;
  timings?: Partial<PlanTimings>;
}

/** The status the planner writes: conditions and observedGeneration are the shell's to merge. */
export type PlannedStatus = Omit<LdapPairStatus, "conditions" | "observedGeneration">;

export interface Plan {
  /** At most one action; none when the pair is in sync or must wait. */
  action?: Action;
  /**
   * The status to write (conditions excluded). Every key the planner owns is
   * present; one set to undefined is to be removed (status.task once done).
   */
  status: PlannedStatus;
  conditions: readonly ConditionUpdate[];
  events: readonly EventRecord[];
  /** When to look again: soon while a task runs or a gate waits, the resync interval otherwise. */
  requeueAfterMs: number;
  /** Why the planner chose this action, or why it waits: for logs and `kubectl describe`. */
  explanation: string;
}

export type { ContainerConfig };
