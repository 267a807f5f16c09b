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
    // A 0 or over-long delay becomes a 1 ms Node timer: a hot loop.
    ["--resync-period=0", /resync-period/],
    ["--retry-period=0ms", /retry-period/],
    ["--shutdown-grace-period=2147483648ms", /shutdown-grace-period/],
    ["--resync-period=600h", /resync-period/],
    ["--lease-duration=0.0001s", /lease-duration/],
    // client-go's rules: lease duration > renew deadline > 1.2 x retry period.
    ["--lease-duration=5s", /lease duration must be greater than renew deadline/],
    ["--retry-period=9s", /renew deadline must exceed/],
  ])("rejects %s", (flag, message) => {
    expect(() => parseConfig([flag], {})).toThrow(ConfigError);
    expect(() => parseConfig([flag], {})).toThrow(message);
  });

  it("starts one informer per namespace: repeated --namespaces entries count once", () => {
    expect(config(["--namespaces=a,b, a,,b"]).namespaces).toEqual(["a", "b"]);
    expect(config([], { WATCH_NAMESPACES: "x,x" }).namespaces).toEqual(["x"]);
  });

  it("does not check lease timing when leader election is off", () => {
    expect(config(["--leader-elect=false", "--lease-duration=5s"]).leaseDurationMs).toBe(5_000);
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
    ["2147483647ms", 2_147_483_647],
  ])("duration %s = %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });
});
