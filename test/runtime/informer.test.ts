import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { Informer, jitteredDelay } from "../../src/runtime/informer.js";
import type { ResourceClient } from "../../src/runtime/resource.js";
import { eventually } from "./helpers/kube.js";

/** An API stand-in whose every watch is refused with 500, while the list (faked below) always works. */
async function refusingWatchServer(): Promise<{
  server: Server;
  kubeConfig: KubeConfig;
  watches: () => number;
}> {
  let watches = 0;
  const server = createServer((_req, res) => {
    watches += 1;
    res.writeHead(500, { "Content-Type": "application/json" });
    res.end(
      JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", code: 500, message: "boom" }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      {
        name: "c",
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
  return { server, kubeConfig, watches: () => watches };
}

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const done of cleanup.splice(0)) await done();
});

describe("Informer restart backoff", () => {
  it("backs off further while the list works and the watch keeps failing", async () => {
    const { server, kubeConfig } = await refusingWatchServer();
    let lists = 0;
    const resource = {
      kubeConfig,
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
      await new Promise((resolve) => server.close(resolve));
    });
    informer.start();
    await eventually(async () => delays.length >= 6, 20_000);
    // Doubling from the base, not the base again after every successful re-list.
    expect(delays.slice(0, 6)).toEqual([2, 4, 8, 16, 32, 64]);
    expect(lists).toBeGreaterThanOrEqual(6);
  });

  it.each([
    [0, 800],
    [0.5, 1000],
    [0.999999, 1200],
  ])("jitter with random %f puts 1000 ms at %i ms", (random, expected) => {
    expect(jitteredDelay(1000, () => random)).toBe(expected);
  });
});
