/** RFC 7386 JSON merge patch, computed between two documents. */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * An object member set to null is absent, as merge patch reads it: the API
 * server stores no null, so a desired null against a missing field must not
 * count as a change, or every reconcile would patch it again.
 */
function present(value: unknown): boolean {
  return value !== undefined && value !== null;
}

function presentKeys(obj: Record<string, unknown>): string[] {
  return Object.keys(obj).filter((k) => present(obj[k]));
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = presentKeys(a);
    return keys.length === presentKeys(b).length && keys.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * The merge patch that turns `current` into `desired`, or undefined when they
 * are equal, which is how a steady state makes no write at all.
 */
export function mergePatchDiff(current: unknown, desired: unknown): Json | undefined {
  if (deepEqual(current, desired)) return undefined;
  if (!isObject(current) || !isObject(desired)) return (desired ?? null) as Json;
  const patch: Record<string, Json> = {};
  for (const key of presentKeys(current)) {
    if (!present(desired[key])) patch[key] = null;
  }
  for (const key of presentKeys(desired)) {
    const sub = mergePatchDiff(current[key], desired[key]);
    if (sub !== undefined) patch[key] = sub;
  }
  return patch;
}
