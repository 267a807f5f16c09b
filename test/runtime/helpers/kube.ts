import { ApiextensionsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import type { ResourceType } from "../../../src/runtime/resource.js";

/** A tiny CRD of the runtime's own, so these tests do not depend on the LdapPair schema. */
export const widgets: ResourceType = {
  group: "test.ldapgateway.io",
  version: "v1",
  plural: "widgets",
  kind: "Widget",
};

export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

export async function installWidgetCrd(kc: KubeConfig): Promise<void> {
  const api = kc.makeApiClient(ApiextensionsV1Api);
  const name = `${widgets.plural}.${widgets.group}`;
  // The generated client serializes schema fields by their model names only (x-kubernetes-* as x_kubernetes_*).
  const open = { type: "object", x_kubernetes_preserve_unknown_fields: true };
  try {
    await api.createCustomResourceDefinition({
      body: {
        metadata: { name },
        spec: {
          group: widgets.group,
          scope: "Namespaced",
          names: { plural: widgets.plural, singular: "widget", kind: widgets.kind, listKind: "WidgetList" },
          versions: [
            {
              name: widgets.version,
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: { openAPIV3Schema: { type: "object", properties: { spec: open, status: open } } },
            },
          ],
        },
      },
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  await eventually(async () => {
    const crd = await api.readCustomResourceDefinition({ name });
    return crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True") ?? false;
  }, 30_000);
  // Established can precede the discovery of the new path by a moment.
  const objects = kc.makeApiClient(CustomObjectsApi);
  await eventually(async () => {
    try {
      await objects.listClusterCustomObject({ ...widgets });
      return true;
    } catch {
      return false;
    }
  }, 30_000);
}

export async function createNamespace(kc: KubeConfig, name: string): Promise<void> {
  try {
    await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
}

export function widgetsApi(kc: KubeConfig) {
  const api = kc.makeApiClient(CustomObjectsApi);
  const base = { group: widgets.group, version: widgets.version, plural: widgets.plural };
  return {
    create: (
      namespace: string,
      name: string,
      spec: Record<string, unknown> = {},
      labels: Record<string, string> = {},
    ) =>
      api.createNamespacedCustomObject({
        ...base,
        namespace,
        body: {
          apiVersion: `${widgets.group}/${widgets.version}`,
          kind: widgets.kind,
          metadata: { name, labels },
          spec,
        },
      }) as Promise<{ metadata: { resourceVersion: string; generation: number } }>,
    get: (namespace: string, name: string) =>
      api.getNamespacedCustomObject({ ...base, namespace, name }) as Promise<{
        metadata: { resourceVersion: string; finalizers?: string[]; managedFields?: unknown[] };
        status?: Record<string, unknown>;
      }>,
    replaceSpec: async (namespace: string, name: string, spec: Record<string, unknown>) => {
      const current = (await api.getNamespacedCustomObject({ ...base, namespace, name })) as Record<
        string,
        unknown
      >;
      return api.replaceNamespacedCustomObject({ ...base, namespace, name, body: { ...current, spec } });
    },
    delete: (namespace: string, name: string) =>
      api.deleteNamespacedCustomObject({ ...base, namespace, name }),
  };
}

export async function eventually<T>(
  probe: () => Promise<T | false | undefined> | T | false | undefined,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== false && value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
