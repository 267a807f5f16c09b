import { describe, expect, it } from "vitest";
import { ConfigError, helpText, parseConfig, parseDuration } from "../../src/config.js";

function config(argv: string[], env: Record<string, string> = {}) {
  const result = parseConfig(argv, env);
  if (result.help) throw new Error("unexpected help");
  return result.config;
}

describe("config", () => {
  it("has controller-runtime-like defaults", () => {
    const c = config([], { POD_NAMESPACE: "ldap-operator" });
    expect(c).toMatchObject({
      namespaces: [],
      workers: 1,
      leaderElect: true,
      leaseNamespace: "ldap-operator",
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      metricsAddress: ":8080",
      probeAddress: ":8081",
      logLevel: "info",
    });
    expect(c.identity).toMatch(/_[0-9a-f]{8}$/);
  });

  it("reads the environment, and a flag wins over it", () => {
    const c = config(["--workers=4", "--namespaces", "a, b"], {
      WORKERS: "2",
      LABEL_SELECTOR: "shard=1",
      LOG_LEVEL: "debug",
      LEADER_ELECT: "false",
    });
    expect(c).toMatchObject({
      workers: 4,
      namespaces: ["a", "b"],
      labelSelector: "shard=1",
      logLevel: "debug",
      leaderElect: false,
    });
  });

  it.each([
    ["--workers=0", /workers/],
    ["--log-level=trace", /log-level/],
    ["--lease-duration=soon", /duration/],
    ["--no-such-flag", /no-such-flag/],
    ["--leader-elect=maybe", /leader-elect/],
  ])("rejects %s", (flag, message) => {
    expect(() => parseConfig([flag], {})).toThrow(ConfigError);
    expect(() => parseConfig([flag], {})).toThrow(message);
  });

  it("answers --help and -h", () => {
    expect(parseConfig(["--help"], {})).toEqual({ help: true });
    expect(parseConfig(["-h"], {})).toEqual({ help: true });
    expect(helpText()).toContain("--label-selector");
    expect(helpText()).toContain("LEASE_NAMESPACE");
  });

  it.each([
    ["500ms", 500],
    ["15s", 15_000],
    ["10m", 600_000],
    ["1h", 3_600_000],
    ["2", 2_000],
    ["1.5s", 1_500],
  ])("duration %s = %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});
