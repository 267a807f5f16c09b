// What the demo shows, from what it read.
import { describe, expect, it } from "vitest";
import {
  elapsed,
  fitted,
  frameLines,
  lookAroundLines,
  notReadyLines,
  readiness,
  redraw,
  withoutAges,
  type LookAround,
  type PairView,
} from "./demo-view.js";

const pair = (
  generation: number,
  ...conditions: NonNullable<PairView["status"]>["conditions"] & object
): PairView => ({
  metadata: { generation },
  status: { conditions },
});

describe("readiness", () => {
  it.each<[string, PairView | undefined, ReturnType<typeof readiness>]>([
    ["no object", undefined, { ready: false, why: "no Ready condition yet" }],
    ["no status", { metadata: { generation: 1 } }, { ready: false, why: "no Ready condition yet" }],
    ["Ready True", pair(1, { type: "Ready", status: "True", observedGeneration: 1 }), { ready: true }],
    ["Ready True, no observedGeneration", pair(2, { type: "Ready", status: "True" }), { ready: true }],
    [
      "Ready True about an older generation",
      pair(3, { type: "Ready", status: "True", observedGeneration: 2 }),
      { ready: false, why: "Ready is about generation 2, the spec is at 3" },
    ],
    [
      "Ready False with a reason",
      pair(1, {
        type: "Ready",
        status: "False",
        reason: "Provisioning",
        message: "creating ldap1",
        observedGeneration: 1,
      }),
      { ready: false, why: "Ready=False (Provisioning: creating ldap1)" },
    ],
    [
      "Ready Unknown, bare",
      pair(1, { type: "Ready", status: "Unknown" }),
      { ready: false, why: "Ready=Unknown" },
    ],
    [
      "only other conditions",
      pair(1, { type: "Reconciling", status: "True" }),
      { ready: false, why: "no Ready condition yet" },
    ],
  ])("%s", (_, view, expected) => {
    expect(readiness(view)).toEqual(expected);
  });
});

describe("the live frame", () => {
  const table = "NAME     PHASE   IMAGE\nsite-a   Ready   ghcr.io/mieweb/ldap-gateway:1.4.0\n";

  it("shows the title, the pairs and only the latest events under kubectl's header", () => {
    const events = [
      "LAST SEEN   TYPE     REASON",
      ...Array.from({ length: 12 }, (_, i) => `${i}s   Normal   Step${i}`),
    ].join("\n");
    const lines = frameLines({ title: "Waiting", pairs: table, events }, 3);
    expect(lines).toEqual([
      "Waiting",
      "",
      "NAME     PHASE   IMAGE",
      "site-a   Ready   ghcr.io/mieweb/ldap-gateway:1.4.0",
      "",
      "LAST SEEN   TYPE     REASON",
      "9s   Normal   Step9",
      "10s   Normal   Step10",
      "11s   Normal   Step11",
    ]);
  });

  it("says so when there are no events", () => {
    expect(frameLines({ title: "t", pairs: table, events: "" }).at(-1)).toBe("(no events yet)");
  });

  it("cuts lines to the terminal's width, so that the redraw counts lines right", () => {
    expect(fitted(["short", "a line that is too long"], 10)).toEqual(["short", "a line th…"]);
  });

  it("replaces the previous frame: up as many lines as it drew, clear below, write", () => {
    expect(redraw(0, ["a", "b"])).toBe("\x1b[Ja\nb\n");
    expect(redraw(6, ["a"])).toBe("\x1b[6F\x1b[Ja\n");
  });

  it("compares frames without the ages kubectl counts up by itself", () => {
    const at = (age: string, phase: string) => [
      `site-a   ${phase}   ${age}`,
      `${age}   Normal   Created   ldappair/site-a   created ldap1`,
    ];
    expect(withoutAges(at("5s", "Provisioning"))).toBe(withoutAges(at("2m3s", "Provisioning")));
    expect(withoutAges(at("5s", "Provisioning"))).toBe(withoutAges(at("3d4h", "Provisioning")));
    expect(withoutAges(at("5s", "Provisioning"))).not.toBe(withoutAges(at("5s", "Ready")));
    // A number that is not an age stays.
    expect(withoutAges(["READY 1/2"])).not.toBe(withoutAges(["READY 2/2"]));
  });

  it.each([
    [1_234, "1.2 s"],
    [59_900, "59.9 s"],
    [185_000, "3 min 05 s"],
  ])("writes %d ms as %s", (ms, text) => {
    expect(elapsed(ms)).toBe(text);
  });
});

describe("the look-around commands", () => {
  const facts: LookAround = {
    kubeconfig: "/tmp/cp/kubeconfig",
    namespace: "ldap-operator",
    name: "site-a",
    probePort: 40001,
    metricsPort: 40002,
    operatorLog: "/tmp/w/operator.log",
    proxmoxApiUrl: "https://127.0.0.1:40003/api2/json",
    tokenSecret: "pve-token",
    databaseSecret: "manager-db",
    baseDn: "dc=example,dc=com",
  };

  it("start with the export line, then kubectl without a kubeconfig flag", () => {
    const lines = lookAroundLines(facts).map((l) => l.trim());
    expect(lines).toContain("export KUBECONFIG=/tmp/cp/kubeconfig");
    expect(lines).toContain("kubectl -n ldap-operator describe ldappair site-a");
    expect(lines.indexOf("export KUBECONFIG=/tmp/cp/kubeconfig")).toBeLessThan(
      lines.findIndex((l) => l.startsWith("kubectl")),
    );
    expect(lines.filter((l) => l.startsWith("kubectl")).every((l) => !l.includes("--kubeconfig"))).toBe(true);
  });

  it("read the token and the database URI from the Secrets instead of printing them", () => {
    const text = lookAroundLines(facts).join("\n");
    expect(text).toContain(
      "get secret pve-token -o go-template='{{.data.tokenId | base64decode}}={{.data.tokenSecret | base64decode}}'",
    );
    expect(text).toContain("get secret manager-db -o go-template='{{.data.uri | base64decode}}'");
  });

  it("give the ldapsearch and lookup commands only once ldap1 runs, with its address", () => {
    const without = lookAroundLines(facts).join("\n");
    expect(without).toContain("ldap1 has no container yet");
    expect(without).not.toContain("ldapsearch -x");
    const withLdap1 = lookAroundLines({
      ...facts,
      ldap1: { vmid: 100, node: "pve1", address: "127.44.0.1" },
    }).join("\n");
    expect(withLdap1).toContain(
      "LDAPTLS_REQCERT=never ldapsearch -x -LLL -H ldaps://127.44.0.1:636 -b dc=example,dc=com '(objectClass=posixAccount)' uid cn",
    );
    expect(withLdap1).toContain("npm run -s demo:lookup -- alice bob");
  });

  it("say whether the demo goes on", () => {
    expect(lookAroundLines(facts)[0]).toMatch(/Ctrl-C here stops everything/);
    expect(lookAroundLines(facts, true)[0]).toMatch(/exits now/);
  });
});

describe("the message when the wait ends", () => {
  const notReady = { ready: false as const, why: "no Ready condition yet" };

  it("explains an operator that writes no status, and whether the demo goes on", () => {
    const lines = notReadyLines("site-a", 180_000, notReady, false).join("\n");
    expect(lines).toMatch(/^ldappair\/site-a is not Ready after 3 min 00 s \(no Ready condition yet\)\./);
    expect(lines).toMatch(/has written no status for it yet: .* first reconcile/);
    expect(lines).toMatch(/its log says which/);
    expect(lines).toMatch(/The demo keeps running/);
    expect(notReadyLines("site-a", 1, notReady, false, true).join("\n")).not.toMatch(/keeps running/);
  });

  it("points at describe and the log when the operator is working on it", () => {
    const why = { ready: false as const, why: "Ready=False (Provisioning: creating ldap1)" };
    const lines = notReadyLines("site-a", 5_000, why, true).join("\n");
    expect(lines).toContain("(Ready=False (Provisioning: creating ldap1))");
    expect(lines).toContain("kubectl describe");
    expect(lines).not.toMatch(/no status/);
  });
});
