// The building blocks the parts of the state machine (plan.ts, plan-upkeep.ts)
// make their decisions from: do an action (and how a ConfigureEnv, an
// in-place update, a start are put together), wait, back off after a
// failure. Pure.
import type { Phase } from "../api/ldappair.js";
import { describeAction, type Action, type ObservedContainer } from "./model.js";
import { mergedEnv, staleEnvKeys, type TierVerdict } from "./tiers.js";
import { capitalize, sameFailure, seconds, type Ctx, type Decision, type Effect } from "./plan-context.js";
import type { ServerView } from "./servers.js";

export interface ActSpec {
  action: Action;
  because: string;
  reason: string;
  effect?: Effect;
  /** The action takes a serving server down: the settle time starts now, and it goes after every other act. */
  wentDown?: boolean;
  /** The variables a ConfigureEnv writes. */
  envKeys?: string[];
  /** The rollout step it is, when not the action's own (Preflight, Cleanup, Rollback...). */
  step?: string;
  phase?: Phase;
}

export function act(ctx: Ctx, view: ServerView | undefined, a: ActSpec): Decision {
  const description = describeAction(a.action);
  const server = view?.desired.name;
  const effect: Effect = (draft) => {
    a.effect?.(draft);
    if (server && (a.wentDown || a.envKeys))
      ctx.marks[server] = {
        ...(a.wentDown ? { wentDown: true } : {}),
        ...(a.envKeys ? { envKeys: a.envKeys } : {}),
      };
  };
  const step = a.step ?? STEP_OF_ACTION[a.action.kind];
  return {
    kind: "act",
    action: a.action,
    why: `next: ${description}, because ${a.because}`,
    event: {
      type: "Normal",
      reason: a.reason,
      action: a.action.kind,
      note: `${capitalize(description)}: ${a.because}`,
    },
    progress: { reason: a.reason, message: `${description}: ${a.because}` },
    ...(server ? { server, ...(step ? { step } : {}) } : {}),
    ...(a.wentDown ? { destructive: true } : {}),
    ...(a.phase ? { phase: a.phase } : {}),
    effect,
  };
}

const STEP_OF_ACTION: Partial<Record<Action["kind"], string>> = {
  PullImage: "PullImage",
  CreateContainer: "Create",
  ConfigureEnv: "Configure",
  UpdateInPlace: "UpdateInPlace",
  StartContainer: "Start",
  StopContainer: "Stop",
  DeleteContainer: "Remove",
};

export function wait(ctx: Ctx, view: ServerView, step: string, what: string, retryMs: number): Decision {
  return {
    kind: "wait",
    why: `waiting: ${what}`,
    progress: { reason: step === "Verify" ? "Verifying" : `Waiting${step}`, message: what },
    retryMs,
    server: view.desired.name,
    step,
  };
}

/** A shutdown bounded by the stop timeout that ends in a forced stop; `overrule`: a hard stop at once. */
export function stopAction(ctx: Ctx, server: string, c: ObservedContainer, overrule = false): Action {
  return {
    kind: "StopContainer",
    server,
    node: c.node,
    vmid: c.vmid,
    timeoutSeconds: ctx.t.stopTimeoutSeconds,
    ...(overrule ? { overrule: true } : {}),
  };
}

/** Retry a failed action only after its backoff; Stalled after stallAfterAttempts failures in a row. */
export function backoffWait(ctx: Ctx, action: string, server: string | undefined): Decision | undefined {
  const f = ctx.draft.lastFailure;
  if (!sameFailure(f, action, server)) return undefined;
  const delay = Math.min(ctx.t.backoffMaxMs, ctx.t.backoffBaseMs * 2 ** (f!.attempts - 1));
  const remaining = new Date(f!.time).getTime() + delay - ctx.now.getTime();
  if (remaining <= 0) return undefined;
  const why = {
    reason: f!.reason ?? `${action}Failed`,
    message: `${f!.message} (attempt ${f!.attempts}); retrying in ${seconds(remaining)}`,
  };
  return {
    kind: "wait",
    why: `waiting: ${why.message}`,
    progress: why,
    retryMs: remaining,
    ...(server ? { server } : {}),
    ...(f!.attempts >= ctx.t.stallAfterAttempts
      ? { stalled: { reason: why.reason, message: `${f!.message}: failed ${f!.attempts} times in a row` } }
      : {}),
  };
}

/** When this server entered its current rollout step: kept while the step lasts. */
export function sinceOf(ctx: Ctx, server: string, step: string): string {
  const r = ctx.input.status.rollout;
  return r?.server === server && r.step === step && r.since ? r.since : ctx.stamp;
}

export function configureEnv(
  ctx: Ctx,
  view: ServerView,
  c: ObservedContainer,
  because: string,
  step: string,
): Decision {
  const d = view.desired;
  const stale = staleEnvKeys(d, view.before?.envKeys ?? []);
  return act(ctx, view, {
    action: {
      kind: "ConfigureEnv",
      server: d.name,
      node: c.node,
      vmid: c.vmid,
      env: mergedEnv(c.config!.env, d, stale),
      digest: String(c.config!.digest),
    },
    because,
    reason: "ConfiguringEnv",
    envKeys: d.env.map(([k]) => k),
    step,
  });
}

export function updateInPlace(
  ctx: Ctx,
  view: ServerView,
  c: ObservedContainer,
  tier: Extract<TierVerdict, { tier: "inPlace" }>,
  step?: string,
): Decision {
  return act(ctx, view, {
    action: {
      kind: "UpdateInPlace",
      server: view.desired.name,
      node: c.node,
      vmid: c.vmid,
      set: tier.update.set,
      delete: tier.update.delete,
      digest: String(c.config!.digest),
    },
    because: `${tier.reason}: Proxmox applies them to a ${c.status} container at once`,
    reason: "UpdatingInPlace",
    ...(step ? { step } : {}),
  });
}

export function startContainer(ctx: Ctx, view: ServerView, c: ObservedContainer, because?: string): Decision {
  const backoff = backoffWait(ctx, "StartContainer", view.desired.name);
  if (backoff) return backoff;
  return act(ctx, view, {
    action: { kind: "StartContainer", server: view.desired.name, node: c.node, vmid: c.vmid },
    because: because ?? `CT ${c.vmid} is stopped and configured; bringing a server up is never gated`,
    reason: "StartingContainer",
  });
}
