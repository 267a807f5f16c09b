import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { shutDown } from "../../src/main.js";

/** Stand-ins that record what the stop sequence asked of each part. */
function parts(reconcilesFinishInGrace: boolean) {
  const calls: string[] = [];
  return {
    calls,
    parts: {
      controller: {
        stop: async (graceMs: number) => {
          calls.push(`controller.stop(${graceMs})`);
          return reconcilesFinishInGrace;
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
  it.each([
    [
      "SIGTERM, reconciles finished in the grace period",
      false,
      true,
      0,
      "controller.stop(30000)",
      "elector.stop(true)",
    ],
    [
      "SIGTERM, reconciles still running after the grace period",
      false,
      false,
      0,
      "controller.stop(30000)",
      "elector.stop(false)",
    ],
    [
      "leadership lost: no grace, no release, exit 1",
      true,
      true,
      1,
      "controller.stop(0)",
      "elector.stop(false)",
    ],
  ])("%s", async (_case, leadershipLost, finishInGrace, exitCode, controllerCall, electorCall) => {
    const { calls, parts: p } = parts(finishInGrace);
    expect(await shutDown(p, { graceMs: 30_000, leadershipLost })).toBe(exitCode);
    expect(calls).toEqual([controllerCall, "events.flush", electorCall, "cache.stop", "server.close"]);
  });
});
