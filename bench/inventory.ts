/**
 * Proxmox calls per minute to watch N LdapPairs (2 containers each): the shared inventory (one
 * `/cluster/resources?type=vm` per endpoint per interval) against a per-pair poll of `status/current`
 * for each container at the same interval. Counted from the simulator's request log over a scaled
 * window: the interval is shortened by `scale` and the counts are read as calls per interval, then
 * given per minute of the real interval.
 *
 *   npx tsx bench/inventory.ts [pairs=500] [scaledIntervalMs=2000] [intervals=6] [realIntervalMs=10000]
 */
import { setMaxListeners } from "node:events";
import { ProxmoxClient } from "../src/proxmox/client.js";
import { InventoryRegistry } from "../src/proxmox/inventory.js";
import { createCt, DEBIAN, TEST_STORAGES } from "../test/pve-sim/helpers.js";
import { PveSimulator } from "../test/pve-sim/simulator.js";

const pairs = Number(process.argv[2] ?? 500);
const intervalMs = Number(process.argv[3] ?? 2_000);
const intervals = Number(process.argv[4] ?? 6);
const realIntervalMs = Number(process.argv[5] ?? 10_000);
const NODE = "pve1";
const FIRST_VMID = 1000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

async function pool<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

/** Calls of `path` that arrived inside [from, from + intervals * intervalMs). */
function countCalls(sim: PveSimulator, path: string | RegExp, from: number): number {
  const to = from + intervals * intervalMs;
  return sim.requestLog.find("GET", path).filter((e) => e.time >= from && e.time < to).length;
}

/** Runs `watch` for one interval of ramp-up plus the counted window, then stops it. */
async function measure(sim: PveSimulator, path: string | RegExp, watch: (stop: AbortSignal) => void) {
  sim.requestLog.clear();
  const stop = new AbortController();
  const cpu0 = process.cpuUsage();
  const start = Date.now();
  watch(stop.signal);
  const from = start + intervalMs;
  await sleep(from + intervals * intervalMs - Date.now());
  const cpu = process.cpuUsage(cpu0);
  stop.abort();
  await sleep(intervalMs / 2);
  const calls = countCalls(sim, path, from);
  const failed = sim.requestLog.find("GET", path).filter((e) => e.status !== 200).length;
  return { calls, perInterval: calls / intervals, failed, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** The shared inventory: every pair subscribes; one poll per interval lists every container. */
function sharedInventory(client: ProxmoxClient) {
  return (stop: AbortSignal) => {
    const registry = new InventoryRegistry({ intervalMs });
    const endpoint = { url: client.endpoint, tokenId: client.tokenId };
    const subs = Array.from({ length: pairs }, () =>
      registry.subscribe(
        endpoint,
        (signal) => client.clusterResources({ signal }),
        () => undefined,
      ),
    );
    stop.addEventListener("abort", () => subs.forEach((s) => s.unsubscribe()), { once: true });
  };
}

/** Each pair on its own: `status/current` of its two containers every interval, pairs spread over it. */
function perPairPolls(client: ProxmoxClient) {
  return (stop: AbortSignal) => {
    // Every one of the 2 x pairs calls in flight listens on this one signal: that is no leak.
    setMaxListeners(2 * pairs + 10, stop);
    for (let p = 0; p < pairs; p++) {
      const vmids = [FIRST_VMID + 2 * p, FIRST_VMID + 2 * p + 1];
      void (async () => {
        await sleep((p / pairs) * intervalMs);
        while (!stop.aborted) {
          const tick = Date.now();
          await Promise.all(
            vmids.map((v) => client.containerStatus(NODE, v, { signal: stop }).catch(() => null)),
          );
          await sleep(tick + intervalMs - Date.now());
        }
      })();
    }
  };
}

const sim = await PveSimulator.start({ nodes: [NODE], speed: 0, storages: TEST_STORAGES });
const client = new ProxmoxClient({
  endpoint: sim.apiUrl,
  tokenId: sim.tokenId,
  tokenSecret: sim.tokenSecret,
  tls: { ca: sim.certPem },
  maxSockets: 64,
});
try {
  const t0 = performance.now();
  const vmids = Array.from({ length: 2 * pairs }, (_, i) => FIRST_VMID + i);
  await pool(vmids, 32, async (vmid) => {
    const st = await createCt(sim, NODE, vmid, DEBIAN);
    if (st["exitstatus"] !== "OK") throw new Error(`create ${vmid}: ${String(st["exitstatus"])}`);
  });
  console.log(`created ${vmids.length} containers in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  const shared = await measure(sim, "/cluster/resources", sharedInventory(client));
  const perPair = await measure(sim, `/nodes/${NODE}/lxc/*/status/current`, perPairPolls(client));

  const perMinute = (perInterval: number) => (perInterval * 60_000) / realIntervalMs;
  const expectedPerPair = 2 * pairs;
  console.log(
    JSON.stringify(
      {
        pairs,
        containers: 2 * pairs,
        scaledIntervalMs: intervalMs,
        realIntervalMs,
        countedIntervals: intervals,
        shared: {
          calls: shared.calls,
          callsPerInterval: shared.perInterval,
          callsPerMinute: perMinute(shared.perInterval),
          failed: shared.failed,
          cpuMs: Math.round(shared.cpuMs),
        },
        perPair: {
          calls: perPair.calls,
          callsPerInterval: perPair.perInterval,
          expectedPerInterval: expectedPerPair,
          keptUp: perPair.perInterval >= 0.95 * expectedPerPair,
          callsPerMinute: perMinute(perPair.perInterval),
          failed: perPair.failed,
          cpuMs: Math.round(perPair.cpuMs),
        },
        ratio: Math.round(perPair.perInterval / shared.perInterval),
        goal: "ratio >= 500",
      },
      null,
      2,
    ),
  );
} finally {
  client.close();
  await sim.stop();
}
