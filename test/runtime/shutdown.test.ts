import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { shutDown } from "../../src/main.js";

type LossAt = "never" | "before" | "during grace";

/** Stand-ins that record what the stop sequence asked of each part; leadership may be lost mid-way. */
function parts(reconcilesFinishInGrace: boolean, lossAt: LossAt) {
  const calls: string[] = [];
  const lost = new AbortController();
  if (lossAt === "before") lost.abort();
  return {
    calls,
    lost: lost.signal,
    parts: {
      controller: {
        stop: async (graceMs: number, cutShort?: AbortSignal) => {
          calls.push(`controller.stop(${graceMs})`);
          if (lossAt === "during grace") lost.abort();
          // A controller whose grace period a loss of leadership cut short has reconciles still running.
          return reconcilesFinishInGrace && !cutShort?.aborted;
        },
      },
      events: { flush: async () => void calls.push("events.flush") },
      elector: { stop: async (release?: boolean) => void calls.push(`elector.stop(${String(release)})`) },
      cache: { stop: async () => void calls.push("cache.stop") },
      servers: [{ close: async () => void calls.push("server.close") }],
      logger: createLogger({ level: "error" }),
    },
  };
}

describe("shutDown", () => {
  it.each<[string, LossAt, boolean, number, string, string]>([
    [
      "SIGTERM, reconciles finished in the grace period",
      "never",
      true,
      0,
      "controller.stop(30000)",
      "elector.stop(true)",
    ],
    [
      "SIGTERM, reconciles still running after the grace period",
      "never",
      false,
      0,
      "controller.stop(30000)",
      "elector.stop(false)",
    ],
    [
      "leadership lost: no grace, no release, exit 1",
      "before",
      true,
      1,
      "controller.stop(0)",
      "elector.stop(false)",
    ],
    [
      "SIGTERM, then leadership lost during the grace period: no release, exit 1",
      "during grace",
      true,
      1,
      "controller.stop(30000)",
      "elector.stop(false)",
    ],
  ])("%s", async (_case, lossAt, finishInGrace, exitCode, controllerCall, electorCall) => {
    const { calls, lost, parts: p } = parts(finishInGrace, lossAt);
    expect(await shutDown(p, { graceMs: 30_000, exitCode: 0, leadershipLost: lost })).toBe(exitCode);
    expect(calls).toEqual([controllerCall, "events.flush", electorCall, "cache.stop", "server.close"]);
  });
});
