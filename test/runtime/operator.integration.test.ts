import { EventsV1Api, type KubeConfig } from "@kubernetes/client-node";
import { createWriteStream } from "node:fs";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { runOperator, type Operator } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import type { Reconciler } from "../../src/runtime/controller.js";
import { addFinalizer, hasFinalizer, isDeleting, removeFinalizer } from "../../src/runtime/finalizers.js";
import { startControlPlane, type ControlPlane } from "./helpers/controlplane.js";
import {
  createNamespace,
  eventually,
  installWidgetCrd,
  loadKubeConfig,
  widgets,
  widgetsApi,
} from "./helpers/kube.js";
import { ApiProxy } from "./helpers/proxy.js";

const finalizer = "test.ldapgateway.io/cleanup";

/** A reconciler shaped like the real one will be: finalizer first, status last, events on changes. */
const reconcile: Reconciler = async (_key, obj, ctx) => {
  if (!obj) return;
  if (isDeleting(obj)) {
    ctx.events.record(obj, {
      type: "Normal",
      reason: "CleanedUp",
      action: "Delete",
      note: "external resources removed",
    });
    await removeFinalizer(ctx.resource, obj, finalizer);
    return;
  }
  const current = hasFinalizer(obj, finalizer) ? obj : await addFinalizer(ctx.resource, obj, finalizer);
  const size = (current.spec as { size?: number } | undefined)?.size ?? 1;
  await ctx.status.update(current, {
    fields: { phase: "Ready", size },
    conditions: [{ type: "Ready", status: "True", reason: "Reconciled", message: `size ${size}` }],
  });
  ctx.events.record(current, {
    type: "Normal",
    reason: "Reconciled",
    action: "Reconcile",
    note: `size ${size}`,
  });
};

const statusPatches = (proxy: ApiProxy) =>
  proxy.count((r) => r.method === "PATCH" && r.path.endsWith("/status"));

describe("operator runtime against a real API server", () => {
  let cp: ControlPlane;
  let proxy: ApiProxy;
  let operator: Operator;
  let admin: KubeConfig;
  const ns = "status-test";

  const reconciles = async () => {
    const metric = await operator.metrics.registry
      .getSingleMetric("controller_runtime_reconcile_total")
      ?.get();
    return metric?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
  };

  beforeAll(async () => {
    cp = await startControlPlane();
    admin = loadKubeConfig(cp.kubeconfigPath);
    await installWidgetCrd(admin);
    await createNamespace(admin, ns);
    proxy = await ApiProxy.start(cp.kubeconfigPath);
    const parsed = parseConfig([
      "--leader-elect=false",
      `--namespaces=${ns}`,
      "--resync-period=300ms",
      "--metrics-bind-address=127.0.0.1:0",
      "--health-probe-bind-address=127.0.0.1:0",
      "--identity=status-test",
    ]);
    if (parsed.help) throw new Error("unexpected help");
    operator = await runOperator({
      config: parsed.config,
      kubeConfig: proxy.kubeConfig(),
      resource: widgets,
      controllerName: "widget",
      reconcile,
      logger: createLogger({
        level: "debug",
        stream: process.env.RUNTIME_TEST_LOG
          ? createWriteStream(process.env.RUNTIME_TEST_LOG)
          : new Writable({ write: (_c, _e, d) => d() }),
      }),
    });
  });

  afterAll(async () => {
    await operator?.stop();
    await proxy?.close();
    await cp?.stop();
  });

  it("adds the finalizer and writes status through a merge patch on the status subresource", async () => {
    await widgetsApi(admin).create(ns, "steady", { size: 3 });
    const obj = await eventually(async () => {
      const w = await widgetsApi(admin).get(ns, "steady");
      return w.status?.phase === "Ready" ? w : undefined;
    });
    expect(obj.metadata.finalizers).toContain(finalizer);
    expect(obj.status).toMatchObject({ observedGeneration: 1, size: 3 });
    expect(obj.status?.conditions).toEqual([
      expect.objectContaining({ type: "Ready", status: "True", reason: "Reconciled", observedGeneration: 1 }),
    ]);
    const patches = proxy.requests.filter((r) => r.method === "PATCH");
    expect(patches.length).toBeGreaterThan(0);
    for (const p of patches) expect(p.contentType).toBe("application/merge-patch+json");
  });

  it("a steady object causes no status writes across many reconciles", async () => {
    // Let the reconcile triggered by the status write itself settle first.
    await new Promise((r) => setTimeout(r, 500));
    const patchesBefore = statusPatches(proxy);
    const writes = () => proxy.count((r) => ["PATCH", "PUT", "POST", "DELETE"].includes(r.method));
    const writesBefore = writes();
    const rvBefore = (await widgetsApi(admin).get(ns, "steady")).metadata.resourceVersion;
    const reconcilesBefore = await reconciles();
    await eventually(async () => (await reconciles()) >= reconcilesBefore + 8, 20_000);
    expect(statusPatches(proxy)).toBe(patchesBefore);
    // Events are de-duplicated too: a steady object costs no write of any kind.
    expect(writes()).toBe(writesBefore);
    expect((await widgetsApi(admin).get(ns, "steady")).metadata.resourceVersion).toBe(rvBefore);
  });

  it("a spec change is reflected once, keeping the condition's transition time", async () => {
    const before = await widgetsApi(admin).get(ns, "steady");
    const transition = (before.status?.conditions as Array<{ lastTransitionTime: string }>)[0]
      ?.lastTransitionTime;
    const patchesBefore = statusPatches(proxy);
    await widgetsApi(admin).replaceSpec(ns, "steady", { size: 5 });
    const after = await eventually(async () => {
      const w = await widgetsApi(admin).get(ns, "steady");
      return w.status?.size === 5 ? w : undefined;
    });
    expect(after.status).toMatchObject({ observedGeneration: 2 });
    expect((after.status?.conditions as Array<{ lastTransitionTime: string }>)[0]?.lastTransitionTime).toBe(
      transition,
    );
    await new Promise((r) => setTimeout(r, 1000));
    expect(statusPatches(proxy)).toBe(patchesBefore + 1);
  });

  it("records events once despite repeated reconciles", async () => {
    const events = await eventually(async () => {
      const list = await admin.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
      const ours = list.items.filter((e) => e.regarding?.name === "steady" && e.reason === "Reconciled");
      return ours.length === 2 ? ours : undefined;
    });
    expect(events.map((e) => e.note).sort()).toEqual(["size 3", "size 5"]);
    expect(events[0]).toMatchObject({
      reportingController: "test.ldapgateway.io/widget-controller",
      type: "Normal",
    });
  });

  it("removes the finalizer after cleanup so the object goes away", async () => {
    await widgetsApi(admin).delete(ns, "steady");
    await eventually(async () => {
      try {
        await widgetsApi(admin).get(ns, "steady");
        return false;
      } catch (err) {
        return (err as { code?: number }).code === 404;
      }
    });
    const list = await admin.makeApiClient(EventsV1Api).listNamespacedEvent({ namespace: ns });
    expect(list.items.some((e) => e.reason === "CleanedUp")).toBe(true);
  });

  it("serves /healthz, /readyz and controller-runtime metrics", async () => {
    const base = `http://127.0.0.1:${operator.probePort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${operator.metricsPort}/metrics`)).text();
    expect(metrics).toContain('controller_runtime_reconcile_total{controller="widget",result="success"}');
    expect(metrics).toContain("workqueue_adds_total");
    expect(metrics).toContain("workqueue_queue_duration_seconds_bucket");
    expect(metrics).toContain("controller_runtime_reconcile_time_seconds_bucket");
  });
});
