// The probe's pure description: which steps, in what order, with what
// limits, and how step outcomes become a verdict naming the failed step.
import { describe, expect, it } from "vitest";
import {
  DEFAULT_PROBE_TIMEOUTS,
  judgeProbe,
  knownUserFilter,
  probePlan,
  sameDn,
  type ProbeExpectation,
  type ProbeStepName,
  type StepOutcome,
  type StepStatus,
} from "../../src/health/probe-plan.js";

const BASE = "dc=example,dc=com";
const expectation: ProbeExpectation = { baseDn: BASE, knownUser: "alice", userCount: 4 };

const connected: StepOutcome = { step: "connect", durationMs: 5, observed: { protocol: "TLSv1.3" } };
const dse = (...namingContexts: string[]): StepOutcome => ({
  step: "rootDse",
  durationMs: 3,
  observed: { namingContexts },
});
const user = (...entries: { dn: string; uid: string[] }[]): StepOutcome => ({
  step: "knownUser",
  durationMs: 7,
  observed: { entries },
});
const alice = { dn: `uid=alice,${BASE}`, uid: ["alice"] };
const count = (n: number): StepOutcome => ({ step: "userCount", durationMs: 40, observed: { count: n } });
const timedOut = (step: ProbeStepName): StepOutcome =>
  ({
    step,
    durationMs: 3000,
    fault: { kind: "timeout", message: "no answer within 3000 ms" },
  }) as StepOutcome;
const refused: StepOutcome = {
  step: "connect",
  durationMs: 1,
  fault: { kind: "error", message: "connection refused" },
};

describe("probePlan", () => {
  it("runs connect, rootDse, knownUser in that order, with the default limits", () => {
    const { userCount: _, ...withoutCount } = expectation;
    expect(probePlan(withoutCount)).toEqual([
      { step: "connect", timeoutMs: DEFAULT_PROBE_TIMEOUTS.connect },
      { step: "rootDse", timeoutMs: DEFAULT_PROBE_TIMEOUTS.rootDse },
      { step: "knownUser", timeoutMs: DEFAULT_PROBE_TIMEOUTS.knownUser },
    ]);
  });

  it("adds the full listing last when a user count is expected, zero included", () => {
    expect(probePlan(expectation).map((s) => s.step)).toEqual([
      "connect",
      "rootDse",
      "knownUser",
      "userCount",
    ]);
    expect(probePlan({ ...expectation, userCount: 0 }).map((s) => s.step)).toContain("userCount");
  });

  it("takes per-step limits, keeping the defaults for the others", () => {
    expect(probePlan(expectation, { knownUser: 750 }).map((s) => s.timeoutMs)).toEqual([
      DEFAULT_PROBE_TIMEOUTS.connect,
      DEFAULT_PROBE_TIMEOUTS.rootDse,
      750,
      DEFAULT_PROBE_TIMEOUTS.userCount,
    ]);
  });
});

describe("judgeProbe", () => {
  const plan = probePlan(expectation);
  type Row = [
    name: string,
    outcomes: StepOutcome[],
    failedStep: ProbeStepName | undefined,
    reason: string | undefined,
    statuses: StepStatus[],
  ];
  const rows: Row[] = [
    [
      "every step passed",
      [connected, dse(BASE), user(alice), count(4)],
      undefined,
      undefined,
      ["passed", "passed", "passed", "passed"],
    ],
    [
      "connection refused",
      [refused],
      "connect",
      "connect: connection refused",
      ["failed", "notRun", "notRun", "notRun"],
    ],
    [
      "TLS never answered",
      [timedOut("connect")],
      "connect",
      "connect: no answer within 3000 ms",
      ["failed", "notRun", "notRun", "notRun"],
    ],
    [
      "another naming context",
      [connected, dse("dc=example,dc=org"), user(alice)],
      "rootDse",
      "rootDse: namingContexts is 'dc=example,dc=org', expected 'dc=example,dc=com'",
      ["passed", "failed", "notRun", "notRun"],
    ],
    [
      "no namingContexts (only defaultNamingContext would not do)",
      [connected, dse()],
      "rootDse",
      "rootDse: the root DSE has no namingContexts",
      ["passed", "failed", "notRun", "notRun"],
    ],
    [
      "two naming contexts, ours among them",
      [connected, dse(BASE, "dc=other")],
      "rootDse",
      "rootDse: namingContexts is 'dc=example,dc=com', 'dc=other', expected 'dc=example,dc=com'",
      ["passed", "failed", "notRun", "notRun"],
    ],
    [
      "the base DN in another case and spacing is the same DN",
      [connected, dse("DC=Example, DC=Com"), user(alice), count(4)],
      undefined,
      undefined,
      ["passed", "passed", "passed", "passed"],
    ],
    [
      "zero entries: the database is down behind a succeeding search",
      [connected, dse(BASE), user()],
      "knownUser",
      "knownUser: (uid=alice) returned no entry (as the gateway answers when its database is down)",
      ["passed", "passed", "failed", "notRun"],
    ],
    [
      "two entries",
      [connected, dse(BASE), user(alice, { dn: `uid=bob,${BASE}`, uid: ["bob"] })],
      "knownUser",
      "knownUser: (uid=alice) returned 2 entries, expected exactly one",
      ["passed", "passed", "failed", "notRun"],
    ],
    [
      "another user's entry",
      [connected, dse(BASE), user({ dn: `uid=bob,${BASE}`, uid: ["bob"] })],
      "knownUser",
      "knownUser: (uid=alice) returned 'uid=bob,dc=example,dc=com', expected 'uid=alice,dc=example,dc=com'",
      ["passed", "passed", "failed", "notRun"],
    ],
    [
      "the right DN without the uid attribute",
      [connected, dse(BASE), user({ dn: alice.dn, uid: [] })],
      "knownUser",
      "knownUser: (uid=alice) returned an entry whose uid is []",
      ["passed", "passed", "failed", "notRun"],
    ],
    [
      "the user under another base",
      [connected, dse(BASE), user({ dn: "uid=alice,dc=other", uid: ["alice"] })],
      "knownUser",
      "knownUser: (uid=alice) returned 'uid=alice,dc=other', expected 'uid=alice,dc=example,dc=com'",
      ["passed", "passed", "failed", "notRun"],
    ],
    [
      "a hung database",
      [connected, dse(BASE), timedOut("knownUser")],
      "knownUser",
      "knownUser: no answer within 3000 ms",
      ["passed", "passed", "failed", "notRun"],
    ],
    [
      "fewer users than the database holds",
      [connected, dse(BASE), user(alice), count(3)],
      "userCount",
      "userCount: the full listing returned 3 posixAccount entries, the database holds 4 users",
      ["passed", "passed", "passed", "failed"],
    ],
    [
      "a probe that stopped early is not a pass",
      [connected, dse(BASE)],
      "knownUser",
      "knownUser: the probe ended before this step ran",
      ["passed", "passed", "failed", "notRun"],
    ],
  ];

  it.each(rows)("%s", (_name, outcomes, failedStep, reason, statuses) => {
    const v = judgeProbe(plan, outcomes, expectation);
    expect(v.healthy).toBe(failedStep === undefined);
    expect(v.failedStep).toBe(failedStep);
    expect(v.reason).toBe(reason);
    expect(v.steps.map((s) => s.status)).toEqual(statuses);
  });

  it("reports each step's duration and limit; steps that did not run have no duration", () => {
    const v = judgeProbe(plan, [connected, dse(BASE), user()], expectation);
    expect(v.steps).toEqual([
      { step: "connect", status: "passed", timeoutMs: 3000, durationMs: 5 },
      { step: "rootDse", status: "passed", timeoutMs: 3000, durationMs: 3 },
      {
        step: "knownUser",
        status: "failed",
        timeoutMs: 5000,
        durationMs: 7,
        reason: "(uid=alice) returned no entry (as the gateway answers when its database is down)",
      },
      { step: "userCount", status: "notRun", timeoutMs: 15000 },
    ]);
  });

  it("expects no count step without an expected count", () => {
    const { userCount: _, ...withoutCount } = expectation;
    const v = judgeProbe(probePlan(withoutCount), [connected, dse(BASE), user(alice)], withoutCount);
    expect(v).toMatchObject({ healthy: true });
    expect(v.steps).toHaveLength(3);
  });
});

describe("sameDn", () => {
  it.each([
    [BASE, BASE, true],
    [BASE, "DC=EXAMPLE,DC=COM", true],
    [BASE, " dc = example , dc = com ", true],
    [BASE, "dc=example,dc=org", false],
    [BASE, "dc=example", false],
    ["uid=alice,dc=example,dc=com", "uid=alice,dc=example,dc=com", true],
  ])("%s vs %s -> %s", (a, b, same) => expect(sameDn(a, b)).toBe(same));
});

describe("knownUserFilter", () => {
  it.each([
    ["alice", "(uid=alice)"],
    ["a*", "(uid=a\\2a)"],
    ["x)(uid=*", "(uid=x\\29\\28uid=\\2a)"],
    ["back\\slash", "(uid=back\\5cslash)"],
    ["nul\0", "(uid=nul\\00)"],
  ])("%j -> %s", (uid, filter) => expect(knownUserFilter(uid)).toBe(filter));
});
