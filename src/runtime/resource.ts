import {
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1ObjectMeta,
} from "@kubernetes/client-node";

/** The custom resource a controller watches, named as the API paths need it. */
export interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
}

export interface ObjectMeta extends V1ObjectMeta {
  name: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  status?: Record<string, unknown>;
  [field: string]: unknown;
}

export interface ObjectList {
  items: KubeObject[];
  resourceVersion: string;
}

export function objectKey(obj: { metadata: { name: string; namespace?: string } }): string {
  const ns = obj.metadata.namespace;
  return ns ? `${ns}/${obj.metadata.name}` : obj.metadata.name;
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf("/");
  if (slash < 0) return { namespace: undefined, name: key };
  return { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** Merge patch must be chosen explicitly: the client's default Content-Type is JSON Patch. */
const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

const pageSize = 500;

/** Namespaced custom objects of one type, through the generated client. */
export class ResourceClient {
  readonly api: CustomObjectsApi;

  constructor(
    readonly kubeConfig: KubeConfig,
    readonly type: ResourceType,
  ) {
    this.api = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  /** The watch path; all namespaces when `namespace` is undefined. */
  collectionPath(namespace: string | undefined): string {
    const { group, version, plural } = this.type;
    return namespace
      ? `/apis/${group}/${version}/namespaces/${encodeURIComponent(namespace)}/${plural}`
      : `/apis/${group}/${version}/${plural}`;
  }

  /** Lists in pages so a large fleet does not arrive as one huge response. */
  async list(namespace: string | undefined, labelSelector: string | undefined): Promise<ObjectList> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let resourceVersion = "";
    do {
      const page = (await this.listPage(namespace, labelSelector, cont)) as {
        items: KubeObject[];
        metadata?: { resourceVersion?: string; continue?: string };
      };
      items.push(...page.items);
      resourceVersion = page.metadata?.resourceVersion ?? resourceVersion;
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { items, resourceVersion };
  }

  async get(namespace: string, name: string): Promise<KubeObject> {
    const { group, version, plural } = this.type;
    return (await this.api.getNamespacedCustomObject({
      group,
      version,
      plural,
      namespace,
      name,
    })) as KubeObject;
  }

  async patch(namespace: string, name: string, body: unknown): Promise<KubeObject> {
    const { group, version, plural } = this.type;
    return (await this.api.patchNamespacedCustomObject(
      { group, version, plural, namespace, name, body },
      mergePatch,
    )) as KubeObject;
  }

  async patchStatus(namespace: string, name: string, body: unknown): Promise<KubeObject> {
    const { group, version, plural } = this.type;
    return (await this.api.patchNamespacedCustomObjectStatus(
      { group, version, plural, namespace, name, body },
      mergePatch,
    )) as KubeObject;
  }

  private listPage(
    namespace: string | undefined,
    labelSelector: string | undefined,
    cont: string | undefined,
  ) {
    const { group, version, plural } = this.type;
    const common = { group, version, plural, labelSelector, limit: pageSize, _continue: cont };
    return namespace
      ? this.api.listNamespacedCustomObject({ ...common, namespace })
      : this.api.listClusterCustomObject(common);
  }
}
