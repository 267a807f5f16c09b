import { afterEach, describe, expect, it } from "vitest";
import { Informer, jitteredDelay } from "../../src/runtime/informer.js";
import type { ResourceClient } from "../../src/runtime/resource.js";
import { fakeApiServer, sendJson } from "./helpers/fakeapi.js";
import { eventually } from "./helpers/kube.js";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const done of cleanup.splice(0)) await done();
});

type Handler = Parameters<typeof fakeApiServer>[0];

/** An informer on a fake API whose watch answers with `watch`; collects the restart delays it logs. */
async function watchedInformer(watch: Handler) {
  const api = await fakeApiServer(watch);
  let lists = 0;
  const resource = {
    kubeConfig: api.kubeConfig,
    collectionPath: () => "/apis/test.example/v1/widgets",
    list: async () => {
      lists += 1;
      return { items: [], resourceVersion: "1" };
    },
  } as unknown as ResourceClient;
  const delays: number[] = [];
  const logger = {
    warn: (_msg: string, meta: { retryInMs: number }) => delays.push(meta.retryInMs),
    info: () => undefined,
    error: () => undefined,
  };
  const informer = new Informer({
    resource,
    namespace: undefined,
    logger: logger as never,
    restartBackoff: { baseDelayMs: 2, maxDelayMs: 60_000 },
    random: () => 0.5,
  });
  cleanup.push(async () => {
    await informer.stop();
    await api.close();
  });
  informer.start();
  return { delays, lists: () => lists };
}

describe("Informer restart backoff", () => {
  it("backs off further while the list works and the watch keeps failing", async () => {
    // Every watch is refused with 500, while the list (faked below) always works.
    const { delays, lists } = await watchedInformer((_req, res) =>
      sendJson(res, 500, { kind: "Status", apiVersion: "v1", status: "Failure", code: 500, message: "boom" }),
    );
    await eventually(async () => delays.length >= 6, 20_000);
    // Doubling from the base, not the base again after every successful re-list.
    expect(delays.slice(0, 6)).toEqual([2, 4, 8, 16, 32, 64]);
    expect(lists()).toBeGreaterThanOrEqual(6);
  });

  it("starts the backoff over once a watch delivered an event", async () => {
    let watches = 0;
    const { delays } = await watchedInformer((_req, res) => {
      watches += 1;
      if (watches !== 4)
        return sendJson(res, 500, { kind: "Status", apiVersion: "v1", status: "Failure", code: 500 });
      res.writeHead(200, { "Content-Type": "application/json" });
      const obj = { metadata: { name: "a", namespace: "ns", resourceVersion: "2" } };
      res.end(`${JSON.stringify({ type: "ADDED", object: obj })}\n`);
    });
    await eventually(async () => delays.length >= 5, 20_000);
    expect(delays.slice(0, 5)).toEqual([2, 4, 8, 2, 4]);
  });

  it.each([
    [0, 800],
    [0.5, 1000],
    [0.999999, 1200],
  ])("jitter with random %f puts 1000 ms at %i ms", (random, expected) => {
    expect(jitteredDelay(1000, () => random)).toBe(expected);
  });
});
