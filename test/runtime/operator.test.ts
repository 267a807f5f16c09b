import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config.js";
import { runOperator, type Operator } from "../../src/main.js";
import { createLogger } from "../../src/observability/logger.js";
import { Redactor } from "../../src/observability/redact.js";
import { fakeApiServer, sendJson } from "./helpers/fakeapi.js";
import { eventually, widgets } from "./helpers/kube.js";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const done of cleanup.splice(0)) await done();
});

/** Lists one widget; every watch stays open and silent. */
async function oneWidgetApi() {
  return fakeApiServer((req, res) => {
    if (req.url?.includes("watch=true")) {
      res.writeHead(200, { "Content-Type": "application/json" });
      return;
    }
    sendJson(res, 200, {
      apiVersion: `${widgets.group}/${widgets.version}`,
      kind: "WidgetList",
      metadata: { resourceVersion: "5" },
      items: [{ metadata: { name: "a", namespace: "ns", uid: "u-a", resourceVersion: "5" } }],
    });
  });
}

/**
 * Lists one widget and holds every watch open; keeps one Lease in memory,
 * which starts refusing every lease request once `failLease` is set.
 */
async function leasedWidgetApi() {
  const state = { failLease: false, lease: undefined as Record<string, unknown> | undefined, rv: 1 };
  const api = await fakeApiServer((req, res) => {
    const url = req.url ?? "";
    if (url.includes("/leases")) {
      if (state.failLease) return sendJson(res, 500, { kind: "Status", code: 500, message: "etcd down" });
      if (req.method === "GET")
        return state.lease
          ? sendJson(res, 200, state.lease)
          : sendJson(res, 404, { kind: "Status", code: 404 });
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString()));
      req.on("end", () => {
        const body = JSON.parse(text) as { metadata: Record<string, unknown> };
        state.rv += 1;
        state.lease = {
          ...body,
          metadata: { ...body.metadata, namespace: "ns", resourceVersion: String(state.rv) },
        };
        sendJson(res, req.method === "POST" ? 201 : 200, state.lease);
      });
      return;
    }
    if (url.includes("watch=true")) {
      res.writeHead(200, { "Content-Type": "application/json" });
      return;
    }
    if (req.method === "POST") return sendJson(res, 201, {});
    sendJson(res, 200, {
      apiVersion: `${widgets.group}/${widgets.version}`,
      kind: "WidgetList",
      metadata: { resourceVersion: "5" },
      items: [{ metadata: { name: "a", namespace: "ns", uid: "u-a", resourceVersion: "5" } }],
    });
  });
  return { ...api, state };
}

describe("runOperator", () => {
  it("registers a reconcile's secrets on the redactor of the logger it was given", async () => {
    const api = await oneWidgetApi();
    const lines: string[] = [];
    const stream = new Writable({ write: (c: Buffer, _e, d) => (lines.push(c.toString()), d()) });
    const logger = createLogger({ level: "info", stream, redactor: new Redactor() });
    const parsed = parseConfig(
      ["--leader-elect=false", "--metrics-bind-address=0", "--health-probe-bind-address=0"],
      {},
    );
    if (parsed.help) throw new Error("unexpected help");
    let reconciled = false;
    const operator: Operator = await runOperator({
      config: parsed.config,
      resource: widgets,
      kubeConfig: api.kubeConfig,
      logger,
      reconcile: async (_key, _obj, ctx) => {
        ctx.registerSecret("pve-token-7f3e9c21");
        ctx.logger.info("using pve-token-7f3e9c21");
        reconciled = true;
      },
    });
    cleanup.push(async () => {
      await operator.stop();
      await api.close();
    });
    await eventually(() => reconciled, 10_000);
    await new Promise((r) => setImmediate(r));
    expect(lines.join("\n")).toContain("using [REDACTED]");
    expect(lines.join("\n")).not.toContain("pve-token-7f3e9c21");
  });

  it("aborts running reconciles at once and exits 1 when leadership is lost during the SIGTERM grace period", async () => {
    const api = await leasedWidgetApi();
    const parsed = parseConfig(
      [
        "--lease-name=lease",
        "--lease-namespace=ns",
        "--identity=me",
        "--lease-duration=1500ms",
        "--renew-deadline=1000ms",
        "--retry-period=100ms",
        "--shutdown-grace-period=60s",
        "--metrics-bind-address=0",
        "--health-probe-bind-address=0",
      ],
      {},
    );
    if (parsed.help) throw new Error("unexpected help");
    let signal: AbortSignal | undefined;
    const operator: Operator = await runOperator({
      config: parsed.config,
      resource: widgets,
      kubeConfig: api.kubeConfig,
      logger: createLogger({ level: "error", stream: new Writable({ write: (_c, _e, d) => d() }) }),
      // A reconcile that runs until told to stop.
      reconcile: (_key, _obj, ctx) =>
        new Promise<void>((resolve) => {
          signal = ctx.signal;
          ctx.signal.addEventListener("abort", () => resolve());
        }),
    });
    cleanup.push(async () => {
      await operator.stop();
      await api.close();
    });
    await eventually(() => signal !== undefined, 10_000);
    const exitCode = operator.stop(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(signal!.aborted).toBe(false);
    // Renewals fail from now on: within the renew deadline the lease is lost, long before the grace period ends.
    api.state.failLease = true;
    const lostAt = Date.now();
    await eventually(() => signal!.aborted, 5_000, 20);
    expect(Date.now() - lostAt).toBeLessThan(3_000);
    expect(await exitCode).toBe(1);
    expect(await operator.finished).toBe(1);
  });

  it("serves workqueue_unfinished_work_seconds, workqueue_longest_running_processor_seconds and controller_runtime_reconcile_panics_total on /metrics, with controller-runtime's labels, before any panic", async () => {
    const api = await oneWidgetApi();
    const parsed = parseConfig(
      ["--leader-elect=false", "--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=0"],
      {},
    );
    if (parsed.help) throw new Error("unexpected help");
    let release: () => void = () => undefined;
    let started = false;
    const operator: Operator = await runOperator({
      config: parsed.config,
      resource: widgets,
      kubeConfig: api.kubeConfig,
      logger: createLogger({ level: "error", stream: new Writable({ write: (_c, _e, d) => d() }) }),
      // One reconcile that stays in progress until released.
      reconcile: () =>
        new Promise<void>((resolve) => {
          started = true;
          release = resolve;
        }),
    });
    cleanup.push(async () => {
      release();
      await operator.stop();
      await api.close();
    });
    await eventually(() => started, 10_000);
    await new Promise((r) => setTimeout(r, 100));
    const text = await (await fetch(`http://127.0.0.1:${operator.metricsPort}/metrics`)).text();
    const sample = (series: string): number | undefined => {
      const line = text.split("\n").find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    const queue = '{name="ldappair",controller="ldappair"}';
    expect(sample(`workqueue_unfinished_work_seconds${queue}`)).toBeGreaterThanOrEqual(0.05);
    expect(sample(`workqueue_longest_running_processor_seconds${queue}`)).toBeGreaterThanOrEqual(0.05);
    // At 0 from the start, as controller-runtime has it, so the first panic shows as an increase.
    expect(sample('controller_runtime_reconcile_panics_total{controller="ldappair"}')).toBe(0);
    expect(sample('controller_runtime_reconcile_errors_total{controller="ldappair"}')).toBe(0);
  });
});
