import { redactor as defaultRedactor, type Redactor } from "../observability/redact.js";
import { BoundedMap } from "./boundedmap.js";
import { setConditions, type Condition, type ConditionUpdate } from "./conditions.js";
import { mergePatchDiff } from "./mergepatch.js";
import type { KubeObject, ResourceClient } from "./resource.js";

export interface StatusUpdate {
  /** Fields of `status` to set; a field set to undefined or null is removed (and an absent one stays absent). */
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

interface Written {
  /** The resourceVersion the patch was computed from. */
  fromVersion: string | undefined;
  status: Record<string, unknown>;
}

/**
 * Remembers the status it last wrote per object: until the watch delivers the
 * result of that write, the cache still shows the version it was computed
 * from, and diffing against that stale copy would write the same status again.
 */
export interface StatusPatcherOptions {
  now?: () => Date;
  maxRemembered?: number;
  /** Condition messages and status strings often quote an error; `kubectl describe` must not show a secret. */
  redactor?: Redactor;
}

export class StatusPatcher implements StatusWriter {
  private patches = 0;
  private readonly written: BoundedMap<string, Written>;
  private readonly now: () => Date;
  private readonly redactor: Redactor;

  constructor(
    private readonly client: ResourceClient,
    options: StatusPatcherOptions = {},
  ) {
    this.now = options.now ?? (() => new Date());
    this.redactor = options.redactor ?? defaultRedactor;
    this.written = new BoundedMap(options.maxRemembered ?? 10_000);
  }

  /** Status writes sent so far; a steady state must leave it unchanged. */
  get writes(): number {
    return this.patches;
  }

  async update(obj: KubeObject, update: StatusUpdate): Promise<KubeObject> {
    const id = obj.metadata.uid ?? `${obj.metadata.namespace}/${obj.metadata.name}`;
    const base = this.freshest(id, obj);
    const patch = statusPatch(base, this.redacted(update), this.now());
    if (!patch) return base;
    this.patches += 1;
    const updated = await this.client.patchStatus(obj.metadata.namespace ?? "", obj.metadata.name, patch);
    this.written.set(id, { fromVersion: obj.metadata.resourceVersion, status: updated.status ?? {} });
    return updated;
  }

  private freshest(id: string, obj: KubeObject): KubeObject {
    const last = this.written.get(id);
    if (!last) return obj;
    if (last.fromVersion !== obj.metadata.resourceVersion) {
      this.written.delete(id);
      return obj;
    }
    return { ...obj, status: last.status };
  }

  private redacted(update: StatusUpdate): StatusUpdate {
    return {
      ...(update.fields
        ? { fields: redactFreeText(update.fields, this.redactor, false) as Record<string, unknown> }
        : {}),
      ...(update.conditions
        ? {
            conditions: update.conditions.map((c) => ({
              ...c,
              message: this.redactor.redactText(c.message),
            })),
          }
        : {}),
    };
  }
}

/**
 * Fields that carry prose (a message, an error quoted from Proxmox): only
 * these can quote a secret. Enums, names, hashes and task ids are left
 * alone: rewriting one that happens to equal a registered secret would
 * make the patch invalid on every reconcile.
 */
const freeTextKey = /^(message|error|details?|description)$|[a-z](Message|Error|Details?|Description)$/;

/** Strings under a free-text field, at any depth, redacted; every other value (undefined and null too) as it is. */
function redactFreeText(value: unknown, redactor: Redactor, freeText: boolean): unknown {
  if (typeof value === "string") return freeText ? redactor.redactText(value) : value;
  if (Array.isArray(value)) return value.map((v) => redactFreeText(v, redactor, freeText));
  if (value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype)
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        redactFreeText(v, redactor, freeText || freeTextKey.test(k)),
      ]),
    );
  return value;
}
