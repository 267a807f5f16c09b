import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { Informer, InformerSet } from "../../src/runtime/informer.js";
import { objectKey, ResourceClient, type KubeObject } from "../../src/runtime/resource.js";
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

const logLines: string[] = [];
const logger = createLogger({
  level: "debug",
  stream: new Writable({ write: (c: Buffer, _e, d) => (logLines.push(c.toString()), d()) }),
});

interface Seen {
  kind: "added" | "updated" | "deleted" | "resync";
  key: string;
  rv: string | undefined;
}

function record(informer: Informer): Seen[] {
  const seen: Seen[] = [];
  const push = (kind: Seen["kind"]) => (obj: KubeObject) =>
    seen.push({ kind, key: objectKey(obj), rv: obj.metadata.resourceVersion });
  informer.addHandlers({
    added: push("added"),
    updated: (_old, obj) => push("updated")(obj),
    deleted: push("deleted"),
    resync: push("resync"),
  });
  return seen;
}

const has = (seen: Seen[], kind: Seen["kind"], key: string) =>
  seen.some((s) => s.kind === kind && s.key === key);

describe("informer against a real API server", () => {
  let cp: ControlPlane;
  let proxy: ApiProxy;
  let informer: Informer;
  let seen: Seen[];
  const ns = "informer-test";
  const admin = () => widgetsApi(loadKubeConfig(cp.kubeconfigPath));

  beforeAll(async () => {
    cp = await startControlPlane();
    const kc = loadKubeConfig(cp.kubeconfigPath);
    await installWidgetCrd(kc);
    await createNamespace(kc, ns);
    proxy = await ApiProxy.start(cp.kubeconfigPath);
    informer = new Informer({
      resource: new ResourceClient(proxy.kubeConfig(), widgets),
      namespace: ns,
      logger,
      resyncPeriodMs: 60 * 60_000,
      watchTimeoutSeconds: 2,
      watchdogGraceMs: 1_000,
      restartBackoff: { baseDelayMs: 100, maxDelayMs: 1_000 },
    });
    seen = record(informer);
    await admin().create(ns, "before-start");
    informer.start();
    await eventually(() => informer.hasSynced);
  });

  afterAll(async () => {
    await informer?.stop();
    await proxy?.close();
    await cp?.stop();
  });

  it("lists what existed before it started", () => {
    expect(has(seen, "added", `${ns}/before-start`)).toBe(true);
  });

  it("delivers add, update and delete", async () => {
    await admin().create(ns, "w1");
    await eventually(() => has(seen, "added", `${ns}/w1`));
    await admin().replaceSpec(ns, "w1", { size: 2 });
    await eventually(() => has(seen, "updated", `${ns}/w1`));
    expect(informer.get(`${ns}/w1`)?.spec).toEqual({ size: 2 });
    await admin().delete(ns, "w1");
    await eventually(() => has(seen, "deleted", `${ns}/w1`));
    expect(informer.get(`${ns}/w1`)).toBeUndefined();
  });

  it("re-watches from the last version after the server closes the watch (timeoutSeconds)", async () => {
    const watchesBefore = proxy.count((r) => r.watch);
    const listsBefore = proxy.count((r) => !r.watch && r.method === "GET");
    await eventually(() => proxy.count((r) => r.watch) >= watchesBefore + 2, 10_000);
    expect(proxy.count((r) => !r.watch && r.method === "GET")).toBe(listsBefore);
  });

  it("relists on 410 Gone and keeps delivering", async () => {
    const listsBefore = proxy.count((r) => !r.watch && r.method === "GET");
    proxy.injectGoneOnNextWatch();
    await eventually(() => proxy.count((r) => !r.watch && r.method === "GET") > listsBefore, 10_000);
    await admin().create(ns, "after-gone");
    await eventually(() => has(seen, "added", `${ns}/after-gone`));
  });

  it("restarts a watch that went silent (watchdog)", async () => {
    proxy.setStall(true);
    proxy.dropConnections();
    await eventually(() => logLines.join("").includes("watch stalled"), 15_000);
    proxy.setStall(false);
    await admin().create(ns, "after-stall");
    await eventually(() => has(seen, "added", `${ns}/after-stall`), 15_000);
  });

  it("recovers when the API server is stopped and started again mid-run", async () => {
    await admin().create(ns, "doomed");
    await eventually(() => has(seen, "added", `${ns}/doomed`));
    const restartsBefore = informer.restartCount;
    await cp.stopApiServer();
    await eventually(() => informer.restartCount > restartsBefore, 15_000);
    await cp.startApiServer();
    await eventually(() => admin().create(ns, "after-restart"), 30_000);
    await eventually(() => admin().delete(ns, "doomed"), 30_000);
    await eventually(() => has(seen, "added", `${ns}/after-restart`), 30_000);
    await eventually(() => has(seen, "deleted", `${ns}/doomed`), 30_000);
    expect(informer.keys().sort()).toEqual(
      [`${ns}/after-gone`, `${ns}/after-restart`, `${ns}/after-stall`, `${ns}/before-start`].sort(),
    );
  });

  it("periodic resync re-delivers every cached object", () => {
    const before = seen.filter((s) => s.kind === "resync").length;
    informer.resyncAll();
    expect(seen.filter((s) => s.kind === "resync").length - before).toBe(informer.keys().length);
  });

  it("watches several namespaces with a label selector as one cache", async () => {
    const kc = loadKubeConfig(cp.kubeconfigPath);
    for (const n of ["shard-1", "shard-2", "shard-3"]) await createNamespace(kc, n);
    const set = new InformerSet(
      ["shard-1", "shard-2"].map(
        (namespace) =>
          new Informer({
            resource: new ResourceClient(kc, widgets),
            namespace,
            labelSelector: "fleet=a",
            logger,
          }),
      ),
    );
    const api = widgetsApi(kc);
    await api.create("shard-1", "in-1", {}, { fleet: "a" });
    await api.create("shard-2", "other-fleet", {}, { fleet: "b" });
    await api.create("shard-3", "other-namespace", {}, { fleet: "a" });
    set.start();
    try {
      await eventually(() => set.hasSynced);
      await api.create("shard-2", "in-2", {}, { fleet: "a" });
      await eventually(() => set.get("shard-2/in-2"));
      expect(set.keys().sort()).toEqual(["shard-1/in-1", "shard-2/in-2"]);
    } finally {
      await set.stop();
    }
  });
});
