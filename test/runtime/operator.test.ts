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
});
