/** RFC 7386 JSON merge patch, computed between two documents. */

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const keys = Object.keys(a).filter((k) => a[k] !== undefined);
    const otherKeys = Object.keys(b).filter((k) => b[k] !== undefined);
    return keys.length === otherKeys.length && keys.every((k) => deepEqual(a[k], b[k]));
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
  for (const key of Object.keys(current)) {
    if (current[key] !== undefined && desired[key] === undefined) patch[key] = null;
  }
  for (const [key, value] of Object.entries(desired)) {
    if (value === undefined) continue;
    const sub = mergePatchDiff(current[key], value);
    if (sub !== undefined) patch[key] = sub;
  }
  return patch;
}
