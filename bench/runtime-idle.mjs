// Child process of bench/runtime.ts: the built operator (dist/, plain node,
// no TypeScript loader in memory) watching the bench objects, measured idle.
// Run with --expose-gc so both figures are taken after a collection.
import process from "node:process";
import { setTimeout as sleep } from "node:timers/promises";
import { parseConfig } from "../dist/config.js";
import { runOperator } from "../dist/main.js";
import { createLogger } from "../dist/observability/logger.js";

const [kubeconfig, namespace, expected, group, version, plural, kind] = process.argv.slice(2);
const settle = async (ms) => {
  await sleep(ms);
  globalThis.gc?.();
  globalThis.gc?.();
};

const parsed = parseConfig([
  `--kubeconfig=${kubeconfig}`,
  `--namespaces=${namespace}`,
  "--leader-elect=false",
  "--metrics-bind-address=127.0.0.1:0",
  "--health-probe-bind-address=127.0.0.1:0",
  "--log-level=warn",
]);

// Baseline: all code loaded and a logger built, nothing watched yet.
const logger = createLogger({ level: "warn" });
await settle(500);
const before = process.memoryUsage();

let reconciled = 0;
const operator = await runOperator({
  config: parsed.config,
  resource: { group, version, plural, kind },
  controllerName: "bench",
  logger,
  reconcile: async () => {
    reconciled += 1;
  },
});
while (reconciled < Number(expected)) await sleep(100);
await settle(5_000);
const after = process.memoryUsage();
process.stdout.write(
  `${JSON.stringify({ cached: operator.cache.keys().length, reconciled, before, after })}\n`,
);
await operator.stop();
