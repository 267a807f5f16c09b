// The parts of an LdapPair's metadata the planner decides on.
import type { LdapPair } from "../api/ldappair.js";
import { hasFinalizer, isDeleting } from "../runtime/finalizers.js";
import type { KubeObject } from "../runtime/resource.js";
import { FINALIZER, type PairMeta } from "./model.js";

export function pairMeta(pair: LdapPair): PairMeta {
  const obj = pair as unknown as KubeObject;
  return {
    namespace: pair.metadata.namespace,
    name: pair.metadata.name,
    uid: pair.metadata.uid ?? "",
    generation: pair.metadata.generation ?? 0,
    deleting: isDeleting(obj),
    hasFinalizer: hasFinalizer(obj, FINALIZER),
    annotations: pair.metadata.annotations ?? {},
  };
}
