// Deletion (rows D0 to D9 of the table in plan.ts): the finalizer kept until
// everything of the pair is gone from Proxmox with policy Delete, or dropped
// at once with Retain or on request. Pure.
import { nodeDnsEqual, type NodeDns } from "../proxmox/normalize.js";
import type { Assessment, Why } from "./conditions.js";
import { realmManagerOf, realmOrigin } from "./desired.js";
import {
  DROP_FINALIZER_ANNOTATION,
  describeAction,
  type Action,
  type DesiredPair,
  type Plan,
  type PlanInput,
  type PlannedStatus,
  type PlanTimings,
} from "./model.js";
import {
  baseStatus,
  capitalize,
  context,
  newProblemEvent,
  type Ctx,
  type Decision,
  type Effect,
} from "./plan-context.js";
import { finish } from "./plan-report.js";

/** Row T of plan.ts, which deletion obeys too: wait for the task in flight, or overrule a hanging shutdown. */
export type TaskRule = (ctx: Ctx) => Decision | undefined;

export function planDeletion(input: PlanInput, t: PlanTimings, taskRule: TaskRule): Plan {
  const base = { ...baseStatus(input), phase: "Deleting" as const };
  const deleting = (progress: Why): Assessment => ({ ready: undefined, progressing: progress });
  if (!input.meta.hasFinalizer)
    return finish({
      status: base,
      assessment: deleting({ reason: "Deleting", message: "deleting" }),
      events: [],
      requeueAfterMs: t.resyncMs,
      explanation: "deleting: the finalizer is gone, nothing left to do",
    });
  if (input.meta.annotations[DROP_FINALIZER_ANNOTATION] !== undefined)
    return finish({
      action: { kind: "RemoveFinalizer" },
      status: base,
      assessment: deleting({ reason: "FinalizerDropped", message: "dropping the finalizer on request" }),
      events: [
        {
          type: "Warning",
          reason: "FinalizerDropped",
          action: "RemoveFinalizer",
          note: `the annotation ${DROP_FINALIZER_ANNOTATION} drops the finalizer: containers, images, realm and node DNS are left in Proxmox as they are`,
        },
      ],
      requeueAfterMs: 1,
      explanation: `next: remove the finalizer, because the annotation ${DROP_FINALIZER_ANNOTATION} asks for it; nothing in Proxmox is touched`,
    });
  if (input.spec.deletionPolicy === "Retain") {
    const kept = [
      ...(input.status.servers ?? [])
        .filter((s) => s.vmid)
        .map((s) => `${s.name} (CT ${s.vmid} on ${s.node})`),
      ...(input.spec.realm.manage ? [`realm ${input.spec.realm.name}`] : []),
    ];
    return finish({
      action: { kind: "RemoveFinalizer" },
      status: base,
      assessment: deleting({ reason: "Retained", message: "deletionPolicy Retain" }),
      events: [
        {
          type: "Normal",
          reason: "Retained",
          action: "RemoveFinalizer",
          note: `deletionPolicy Retain: left in Proxmox: ${kept.length ? kept.join(", ") : "nothing was made"}, and the nodes' DNS as it is`,
        },
      ],
      requeueAfterMs: 1,
      explanation: "next: remove the finalizer, because deletionPolicy Retain keeps everything in Proxmox",
    });
  }
  const problem = input.observed.secrets.ok
    ? input.observed.proxmox.ok
      ? undefined
      : input.observed.proxmox.problem
    : input.observed.secrets.problem;
  if (problem) {
    const why = {
      reason: "DeletionBlocked",
      message: `cannot clean up before deletion: ${problem.message}; to delete the LdapPair and leave Proxmox as it is, annotate it with ${DROP_FINALIZER_ANNOTATION}=true`,
    };
    return finish({
      status: base,
      assessment: problem.transient ? deleting(why) : { ready: undefined, stalled: why },
      events: newProblemEvent(input, why),
      requeueAfterMs: problem.transient ? t.problemRetryMs : t.stalledRetryMs,
      explanation: `waiting: ${why.message}`,
    });
  }
  return deletionStep(input, t, base, taskRule);
}

function deletionStep(input: PlanInput, t: PlanTimings, base: PlannedStatus, taskRule: TaskRule): Plan {
  const ctx = context(input, t, input.desired ?? emptyDesired(input), base);
  const status = ctx.draft;
  const step = (action: Action | undefined, why: string, requeueAfterMs: number, effect?: Effect): Plan => {
    effect?.(status);
    return finish({
      ...(action ? { action } : {}),
      status,
      assessment: {
        ready: undefined,
        progressing: {
          reason: "Deleting",
          message: action ? `${describeAction(action)} before deletion` : why,
        },
      },
      events: [
        ...ctx.events,
        ...(action
          ? [
              {
                type: "Normal" as const,
                reason: "CleaningUp",
                action: action.kind,
                note: `${capitalize(describeAction(action))} before deletion`,
              },
            ]
          : []),
      ],
      requeueAfterMs,
      explanation: action
        ? `next: ${describeAction(action)}, because the LdapPair is deleted with deletionPolicy Delete`
        : why,
    });
  };
  const task = taskRule(ctx);
  if (task?.kind === "wait") return step(undefined, task.why, task.retryMs);
  if (task?.kind === "act") return step(task.action, "", t.taskPollMs);
  for (const server of input.observed.servers)
    for (const c of server.containers) {
      if (c.lock) return step(undefined, `waiting: CT ${c.vmid} is locked (${c.lock})`, t.taskPollMs);
      if (c.status === "running")
        return step(
          {
            kind: "StopContainer",
            server: server.name,
            node: c.node,
            vmid: c.vmid,
            timeoutSeconds: t.stopTimeoutSeconds,
          },
          "",
          t.taskPollMs,
        );
      return step(
        { kind: "DeleteContainer", server: server.name, node: c.node, vmid: c.vmid },
        "",
        t.taskPollMs,
      );
    }
  const elsewhere = input.observed.imagesInUseElsewhere;
  for (const image of status.images ?? []) {
    const listed = input.observed.images[image.node]?.includes(image.volid);
    if (listed && elsewhere && !elsewhere.includes(image.volid))
      return step(
        { kind: "DeleteImage", node: image.node, storage: image.volid.split(":")[0]!, volid: image.volid },
        "",
        t.taskPollMs,
      );
  }
  const realm = input.observed.realm;
  if (input.spec.realm.manage && realm?.config) {
    const manager = realm.managedBy ?? realmManagerOf(realm.config["comment"]);
    if (manager === input.meta.uid.toLowerCase() && realmOrigin(realm.config["comment"]) === "created")
      return step({ kind: "DeleteRealm", name: input.spec.realm.name }, "", 1);
  }
  for (const record of status.nodeDns ?? []) {
    const current = input.observed.nodeDns[record.node];
    if (!current) continue;
    if (!nodeDnsEqual(current, record.previous))
      return step(
        { kind: "SetNodeDns", node: record.node, dns: restoreDns(record.previous, current) },
        "",
        1,
      );
    return step(
      undefined,
      `the DNS of node ${record.node} is restored`,
      1,
      (s) => (s.nodeDns = (s.nodeDns ?? []).filter((r) => r.node !== record.node)),
    );
  }
  // A volume no longer listed on a listed node is gone; the others stay (in use elsewhere, or not listed).
  const kept = (status.images ?? []).filter((i) => input.observed.images[i.node]?.includes(i.volid) ?? true);
  status.images = kept;
  const left = kept.map((i) => i.volid);
  return finish({
    action: { kind: "RemoveFinalizer" },
    status,
    assessment: { ready: undefined, progressing: { reason: "Deleting", message: "cleaned up" } },
    events: [
      ...ctx.events,
      {
        type: "Normal",
        reason: "CleanedUp",
        action: "RemoveFinalizer",
        note: `containers, realm and node DNS cleaned up${left.length ? `; image volumes kept (in use or not listed): ${left.join(", ")}` : ""}`,
      },
    ],
    requeueAfterMs: 1,
    explanation: "next: remove the finalizer, because nothing of this LdapPair is left in Proxmox",
  });
}

function restoreDns(previous: NodeDns, current: NodeDns): NodeDns & { search: string } {
  const search = previous.search || current.search || "";
  return { ...previous, search };
}

/** Deletion of a pair whose Secret is gone still knows its servers' names from the spec. */
function emptyDesired(input: PlanInput): DesiredPair {
  return {
    servers: [],
    imageStorage: input.spec.proxmox.imageStorage,
    rootStorage: input.spec.proxmox.rootStorage,
    baseDn: "",
  };
}
