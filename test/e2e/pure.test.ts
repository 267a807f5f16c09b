// The harness's pure parts: the time scale, the example LdapPair and the
// process tree read from ps.
import { describe, expect, it } from "vitest";
import { validateSpec } from "../../src/api/validate.js";
import { exampleLdapPair, merge, SECRETS, type SiteFacts } from "./example.js";
import { descendantsOf, parsePs } from "./processes.js";
import { durationText, scaledTimes, timeScaleFrom } from "./time-scale.js";

describe("time scale", () => {
  it.each([
    [undefined, 0.05, 0.05],
    ["", 1, 1],
    ["1", 0.05, 1],
    ["0.1", 1, 0.1],
    ["0", 1, 0],
  ])("E2E_TIME_SCALE=%j with fallback %d is %d", (raw, fallback, expected) => {
    expect(timeScaleFrom(raw, fallback)).toBe(expected);
  });

  it.each(["-1", "fast", "NaN", "Infinity"])("refuses E2E_TIME_SCALE=%s", (raw) => {
    expect(() => timeScaleFrom(raw, 1)).toThrow(/E2E_TIME_SCALE must be a number >= 0/);
  });

  it.each([
    // scale, sim speed, gateway start-up, settle time, SSSD memory, client timeout, stop grace
    [1, 1, 1, "45s", 30_000, 6_000, 3_000],
    [0.1, 0.1, 0.1, "4500ms", 3_000, 2_000, 300],
    [0.05, 0.05, 0.05, "2250ms", 1_500, 2_000, 200],
    [0, 0, 0, "0s", 0, 2_000, 200],
  ])(
    "scale %d: speed %d, start-up %d, settle %s, memory %d ms, timeouts %d ms, grace %d ms",
    (scale, speed, startup, settle, memory, timeout, grace) => {
      const t = scaledTimes(scale);
      expect([t.simSpeed, t.gatewayStartupScale, t.settleTime, t.failedServerMemoryMs]).toEqual([
        speed,
        startup,
        settle,
        memory,
      ]);
      expect([t.searchTimeoutMs, t.connectTimeoutMs, t.stopGraceMs]).toEqual([timeout, timeout, grace]);
    },
  );

  it("keeps the settle time longer than SSSD's memory of a failed server at every scale", () => {
    for (const scale of [1, 0.5, 0.1, 0.05, 0.01]) {
      const t = scaledTimes(scale);
      expect(t.settleTimeMs).toBeGreaterThan(t.failedServerMemoryMs);
    }
  });

  it.each([
    [45_000, "45s"],
    [2_250, "2250ms"],
    [0, "0s"],
    [1, "1ms"],
  ])("writes %d ms as %s", (ms, text) => {
    expect(durationText(ms)).toBe(text);
  });
});

describe("the example LdapPair", () => {
  const site: SiteFacts = {
    namespace: "e2e-x",
    proxmoxUrl: "https://127.0.0.1:40123",
    nodes: ["pve1", "pve2"],
    dnsAddress: "127.40.255.254",
    settleTime: "2250ms",
  };

  it("is valid for the operator, with its servers on different nodes and the world's Secrets", () => {
    const pair = exampleLdapPair(site);
    const result = validateSpec(pair.spec);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const spec = result.value;
    expect(spec.servers.map((s) => [s.name, s.node])).toEqual([
      ["ldap1", "pve1"],
      ["ldap2", "pve2"],
    ]);
    expect(spec.proxmox).toMatchObject({
      url: site.proxmoxUrl,
      node: "pve1",
      credentialsSecretRef: { name: SECRETS.token.name },
      tls: { caSecretRef: SECRETS.ca, insecureSkipVerify: false },
    });
    expect(spec.database.uriSecretRef).toEqual(SECRETS.database);
    expect(spec.nodeDns).toEqual({
      nameserver: site.dnsAddress,
      searchDomain: "example.com",
      nodes: ["pve1", "pve2"],
    });
    expect(spec.rollout.settleTime).toBe("2250ms");
    expect(pair.metadata).toEqual({ name: "site-a", namespace: "e2e-x" });
  });

  it("takes overrides: nested fields merge, arrays replace, undefined removes", () => {
    const pair = exampleLdapPair(site, {
      metadata: { name: "site-b" },
      spec: {
        rollout: { strategy: "CreateThenSwap" },
        servers: [
          { name: "ldap1", node: "pve2" },
          { name: "ldap2", node: "pve1" },
        ],
        nodeDns: undefined,
      },
    });
    expect(pair.metadata).toEqual({ name: "site-b", namespace: "e2e-x" });
    expect(pair.spec["rollout"]).toEqual({ settleTime: "2250ms", strategy: "CreateThenSwap" });
    expect((pair.spec["servers"] as { node: string }[]).map((s) => s.node)).toEqual(["pve2", "pve1"]);
    expect(pair.spec).not.toHaveProperty("nodeDns");
    expect(validateSpec(pair.spec).ok).toBe(true);
  });

  it("does not share objects with its overrides or with earlier results", () => {
    const overrides = { spec: { extraEnv: [{ name: "LOG_LEVEL", value: "debug" }] } };
    const a = exampleLdapPair(site, overrides);
    (a.spec["extraEnv"] as { value: string }[])[0]!.value = "changed";
    (a.spec["rollout"] as { settleTime: string }).settleTime = "1s";
    expect(overrides.spec.extraEnv[0]!.value).toBe("debug");
    expect(exampleLdapPair(site).spec["rollout"]).toEqual({ settleTime: "2250ms" });
  });

  it("refuses a world of one node", () => {
    expect(() => exampleLdapPair({ ...site, nodes: ["pve1"] })).toThrow(/two nodes/);
  });

  it.each([
    [{ a: 1 }, { b: 2 }, { a: 1, b: 2 }],
    [{ a: { x: 1, y: 2 } }, { a: { y: 3 } }, { a: { x: 1, y: 3 } }],
    [{ a: [1, 2] }, { a: [3] }, { a: [3] }],
    [{ a: 1, b: 2 }, { a: undefined }, { b: 2 }],
    [{ a: { x: 1 } }, { a: "flat" }, { a: "flat" }],
  ])("merge(%j, %j) is %j", (base, override, expected) => {
    expect(merge(base, override)).toEqual(expected);
  });
});

describe("the process tree from ps", () => {
  const ps = [
    "    1     0 Ss   /sbin/init",
    "  100     1 Sl   node vitest",
    "  200   100 Sl   /usr/bin/kube-apiserver --etcd-servers=http://127.0.0.1:1",
    "  201   200 S    child of the API server",
    "  300   100 Z    [node] <defunct>",
    "  400     1 S    someone else",
    "",
  ].join("\n");

  it("parses pid, parent and command line, and leaves zombies out", () => {
    expect(parsePs(ps).map((p) => p.pid)).toEqual([1, 100, 200, 201, 400]);
    expect(parsePs(ps)[2]).toEqual({
      pid: 200,
      ppid: 100,
      args: "/usr/bin/kube-apiserver --etcd-servers=http://127.0.0.1:1",
    });
  });

  it("finds every descendant of a process, not the process itself nor its neighbours", () => {
    expect(descendantsOf(parsePs(ps), 100).map((p) => p.pid)).toEqual([200, 201]);
    expect(descendantsOf(parsePs(ps), 400)).toEqual([]);
  });
});
