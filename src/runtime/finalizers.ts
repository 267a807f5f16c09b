import type { KubeObject, ResourceClient } from "./resource.js";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata.finalizers?.includes(finalizer) ?? false;
}

export function isDeleting(obj: KubeObject): boolean {
  return obj.metadata.deletionTimestamp != null;
}

/**
 * A merge patch replaces the whole finalizer list, so it carries the
 * resourceVersion it was computed from: if anyone changed the object since,
 * the server answers 409 instead of dropping someone else's finalizer.
 */
function finalizerPatch(obj: KubeObject, finalizers: string[]) {
  return { metadata: { finalizers, resourceVersion: obj.metadata.resourceVersion } };
}

/** Adds the finalizer; call before anything is created outside the cluster. */
export async function addFinalizer(
  client: ResourceClient,
  obj: KubeObject,
  finalizer: string,
): Promise<KubeObject> {
  if (hasFinalizer(obj, finalizer)) return obj;
  const next = [...(obj.metadata.finalizers ?? []), finalizer];
  return client.patch(obj.metadata.namespace ?? "", obj.metadata.name, finalizerPatch(obj, next));
}

/** Removes the finalizer once cleanup is done; a 409 means the object moved on and the key is retried. */
export async function removeFinalizer(
  client: ResourceClient,
  obj: KubeObject,
  finalizer: string,
): Promise<KubeObject> {
  if (!hasFinalizer(obj, finalizer)) return obj;
  const next = (obj.metadata.finalizers ?? []).filter((f) => f !== finalizer);
  return client.patch(obj.metadata.namespace ?? "", obj.metadata.name, finalizerPatch(obj, next));
}
