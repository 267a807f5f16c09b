/** Shared setup of the client tests: a client for a simulator, and the check that no error leaks a secret. */
import { inspect } from "node:util";
import { expect } from "vitest";
import { ProxmoxClient, type ProxmoxClientOptions } from "../../src/proxmox/client.js";
import { TEST_CATALOG, TEST_STORAGES } from "../pve-sim/helpers.js";
import { PveSimulator } from "../pve-sim/simulator.js";

/** A container network as the tests create it. */
export const NET = "name=eth0,bridge=vmbr0,ip=dhcp";

/** Two nodes sharing the image storage, tasks at a hundredth of their real length: the client tests' cluster. */
export function twoNodeSimulator(): Promise<PveSimulator> {
  return PveSimulator.start({
    nodes: ["pve1", "pve2"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: [{ ...TEST_STORAGES[0]!, shared: true }, TEST_STORAGES[1]!],
  });
}

/** Retries fast enough for tests, still exponential and bounded. */
export const FAST_RETRY = { retries: 3, minTimeoutMs: 5, maxTimeoutMs: 20, factor: 2, jitter: true };

export function clientFor(sim: PveSimulator, o: Partial<ProxmoxClientOptions> = {}): ProxmoxClient {
  return new ProxmoxClient({
    endpoint: sim.apiUrl,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    tls: { ca: sim.certPem },
    timeoutMs: 5_000,
    retry: FAST_RETRY,
    ...o,
  });
}

/** The rejection of `p`, which must reject. */
export async function failure(p: Promise<unknown>): Promise<Error> {
  const r = await p.then(
    (v) => ({ ok: true as const, v }),
    (e: unknown) => ({ ok: false as const, e }),
  );
  if (r.ok) throw new Error(`expected a rejection, got ${JSON.stringify(r.v)}`);
  expect(r.e).toBeInstanceOf(Error);
  return r.e as Error;
}

/** The secret is nowhere in the error: message, stack, JSON, every property and cause. */
export function expectNoSecret(e: Error, secret: string): void {
  expect(secret.length).toBeGreaterThan(8);
  const texts = [
    e.message,
    e.stack ?? "",
    JSON.stringify(e),
    String(e),
    inspect(e, { depth: Infinity, showHidden: true }),
  ];
  for (const t of texts) expect(t).not.toContain(secret);
}

/** Requests the simulator logged for this method and path pattern. */
export function logged(sim: PveSimulator, method: string, path: string | RegExp): number {
  return sim.requestLog.find(method, path).length;
}
