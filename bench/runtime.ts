/**
 * Runtime benchmark: the workqueue's cost per item against a plain array
 * queue measured in the same run, and the memory of an idle operator watching
 * 1,000 objects against the same process before it watched anything.
 *
 *   npx tsx bench/runtime.ts [--keys=10000] [--rounds=20] [--objects=1000]
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { WorkQueue } from "../src/runtime/workqueue.js";
import { startControlPlane } from "../test/testenv/controlplane.js";
import { createNamespace, installWidgetCrd, loadKubeConfig, widgets } from "../test/runtime/helpers/kube.js";

const { values } = parseArgs({
  options: { keys: { type: "string" }, rounds: { type: "string" }, objects: { type: "string" } },
});
const root = fileURLToPath(new URL("..", import.meta.url));
const keyCount = Number(values.keys ?? 10_000);
const rounds = Number(values.rounds ?? 20);
const objects = Number(values.objects ?? 1_000);

const keys = Array.from({ length: keyCount }, (_, i) => `ns-${i % 50}/pair-${i}`);

type Run = () => Promise<void> | void;

/** The least a queue can do: push and shift. */
const plainArray: Run = () => {
  const q: string[] = [];
  let head = 0;
  for (const k of keys) q.push(k);
  let sink = 0;
  while (head < q.length) sink += q[head++]!.length;
  if (sink < 0) throw new Error("unreachable");
};

/** The least a de-duplicating queue can do: an array plus a set of queued keys. */
const arrayWithSet: Run = () => {
  const q: string[] = [];
  const queued = new Set<string>();
  let head = 0;
  for (const k of keys) {
    if (queued.has(k)) continue;
    queued.add(k);
    q.push(k);
  }
  while (head < q.length) queued.delete(q[head++]!);
};

/** add, get, done for every key, as a controller's worker does. */
const workqueue: Run = async () => {
  const q = new WorkQueue();
  for (const k of keys) q.add(k);
  for (let i = 0; i < keys.length; i++) q.done((await q.get())!);
  q.shutDown();
};

/** Each key added five times before it is taken: the de-duplication path. */
const workqueueDuplicates: Run = async () => {
  const q = new WorkQueue();
  for (let r = 0; r < 5; r++) for (const k of keys) q.add(k);
  for (let i = 0; i < keys.length; i++) q.done((await q.get())!);
  q.shutDown();
};

async function nsPerItem(run: Run): Promise<number> {
  await run(); // warm-up: JIT and hash table growth
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    await run();
    samples.push(Number(process.hrtime.bigint() - start) / keys.length);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

async function queueBench(): Promise<void> {
  const plain = await nsPerItem(plainArray);
  const set = await nsPerItem(arrayWithSet);
  const wq = await nsPerItem(workqueue);
  const dup = await nsPerItem(workqueueDuplicates);
  const line = (name: string, v: number) =>
    `  ${name.padEnd(28)} ${v.toFixed(0).padStart(6)} ns/item   ${(v / plain).toFixed(1)}x plain array, ${(v / set).toFixed(1)}x array+set`;
  console.log(`queue: ${keyCount} distinct keys, median of ${rounds} rounds (after one warm-up round):`);
  console.log(line("plain array push/shift", plain));
  console.log(line("array + Set de-duplication", set));
  console.log(line("WorkQueue add/get/done", wq));
  console.log(line("WorkQueue, 5 adds per key", dup));
}

function ldapPairLike(i: number): Record<string, unknown> {
  return {
    domain: `site${i}.example.com`,
    image: "ghcr.io/mieweb/ldap-gateway:1.4.0",
    proxmox: {
      url: "https://pve.example.com:8006",
      credentialsSecretRef: { name: "pve-token" },
      node: "pve1",
    },
    database: { uriSecretRef: { name: "manager-db", key: "uri" } },
    notifications: { url: "https://push.example.com/send-notification" },
  };
}

async function memoryBench(): Promise<void> {
  const cp = await startControlPlane();
  try {
    const kc = loadKubeConfig(cp.kubeconfigPath);
    await installWidgetCrd(kc);
    const ns = "bench";
    await createNamespace(kc, ns);
    const api = kc.makeApiClient(CustomObjectsApi);
    const names = Array.from({ length: objects }, (_, i) => `pair-${i}`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(
        names.slice(i, i + 20).map((name, j) =>
          api.createNamespacedCustomObject({
            group: widgets.group,
            version: widgets.version,
            plural: widgets.plural,
            namespace: ns,
            body: {
              apiVersion: `${widgets.group}/${widgets.version}`,
              kind: widgets.kind,
              metadata: { name },
              spec: ldapPairLike(i + j),
            },
          }),
        ),
      );
    }
    // The idle operator runs from the build, as `npm start` does, so no TypeScript loader inflates its memory.
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "inherit" });
    const child = fileURLToPath(new URL("./runtime-idle.mjs", import.meta.url));
    const { group, version, plural, kind } = widgets;
    const out = execFileSync(
      process.execPath,
      ["--expose-gc", child, cp.kubeconfigPath, ns, String(objects), group, version, plural, kind],
      { encoding: "utf8", timeout: 300_000 },
    );
    const line = out.trim().split("\n").pop()!;
    const r = JSON.parse(line) as {
      cached: number;
      before: NodeJS.MemoryUsage;
      after: NodeJS.MemoryUsage;
    };
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
    console.log(
      `idle operator (node dist/) watching ${r.cached} LdapPair-sized objects, after GC and 5 s idle:`,
    );
    console.log(
      `  RSS   ${mib(r.before.rss)} MiB before watching -> ${mib(r.after.rss)} MiB (+${mib(r.after.rss - r.before.rss)} MiB)`,
    );
    console.log(
      `  heap  ${mib(r.before.heapUsed)} MiB before watching -> ${mib(r.after.heapUsed)} MiB (+${mib(r.after.heapUsed - r.before.heapUsed)} MiB, ${((r.after.heapUsed - r.before.heapUsed) / r.cached / 1024).toFixed(1)} KiB/object)`,
    );
  } finally {
    await cp.stop();
  }
}

await queueBench();
await memoryBench();
