import { setConditions, type Condition, type ConditionUpdate } from "./conditions.js";
import { mergePatchDiff } from "./mergepatch.js";
import type { KubeObject, ResourceClient } from "./resource.js";

export interface StatusUpdate {
  /** Fields of `status` to set; a field set to undefined is removed. */
  fields?: Record<string, unknown>;
  conditions?: ConditionUpdate[];
}

/**
 * The status a reconcile wants, from the object's current status: conditions
 * merged (transition time kept unless the status flips) and
 * `observedGeneration` set. Pure; `now` is an input.
 */
export function desiredStatus(obj: KubeObject, update: StatusUpdate, now: Date): Record<string, unknown> {
  const current = obj.status ?? {};
  const generation = obj.metadata.generation;
  const conditions = setConditions(
    (current.conditions as Condition[] | undefined) ?? [],
    update.conditions ?? [],
    generation,
    now,
  );
  const next: Record<string, unknown> = { ...current, ...update.fields };
  if (conditions.length > 0) next.conditions = conditions;
  if (generation !== undefined) next.observedGeneration = generation;
  return next;
}

/** The merge patch for the status subresource, or undefined when nothing would change. */
export function statusPatch(
  obj: KubeObject,
  update: StatusUpdate,
  now: Date,
): Record<string, unknown> | undefined {
  const patch = mergePatchDiff(obj.status ?? {}, desiredStatus(obj, update, now));
  return patch === undefined ? undefined : { status: patch };
}

export interface StatusWriter {
  /** Patches status if it would change; returns the updated object, or the same one when no write was needed. */
  update(obj: KubeObject, update: StatusUpdate): Promise<KubeObject>;
}

export class StatusPatcher implements StatusWriter {
  private patches = 0;

  constructor(
    private readonly client: ResourceClient,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Status writes sent so far; a steady state must leave it unchanged. */
  get writes(): number {
    return this.patches;
  }

  async update(obj: KubeObject, update: StatusUpdate): Promise<KubeObject> {
    const patch = statusPatch(obj, update, this.now());
    if (!patch) return obj;
    const namespace = obj.metadata.namespace ?? "";
    this.patches += 1;
    return this.client.patchStatus(namespace, obj.metadata.name, patch);
  }
}
