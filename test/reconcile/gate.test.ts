import { describe, expect, it } from "vitest";
import { peerGate, type GateInput, type GateReason } from "../../src/reconcile/gate.js";

const NOW = new Date("2026-12-01T10:00:00Z");
const ago = (s: number) => new Date(NOW.getTime() - s * 1000);

const OPEN: GateInput = {
  now: NOW,
  server: "ldap2",
  peer: { name: "ldap1", running: true, passing: true, passes: 2 },
  lastDownAt: ago(60),
  settleMs: 45_000,
  requiredPasses: 2,
  database: { ok: true },
  paused: false,
};

describe("peerGate", () => {
  it.each<[string, Partial<GateInput>, GateReason | "open", RegExp?, number?]>([
    ["peer healthy, settled, database fine", {}, "open"],
    ["no server ever went down", { lastDownAt: undefined }, "open"],
    ["exactly the settle time passed", { lastDownAt: ago(45) }, "open"],
    ["more passes than needed", { peer: { ...OPEN.peer, passes: 50 } }, "open"],
    ["paused", { paused: true }, "RolloutPaused", /paused/],
    ["no database preflight this time", { database: undefined }, "DatabaseNotChecked", /has not run/],
    [
      "database down",
      { database: { ok: false, problem: "database unreachable: ECONNREFUSED" } },
      "DatabaseUnreachable",
      /preflight failed: database unreachable: ECONNREFUSED/,
    ],
    [
      "peer not running",
      { peer: { name: "ldap1", running: false, passing: false, passes: 0, problem: "no container" } },
      "PeerNotRunning",
      /peer ldap1 is not running \(no container\)/,
    ],
    [
      "peer fails its probe",
      { peer: { name: "ldap1", running: true, passing: false, passes: 0, problem: "knownUser: no entry" } },
      "PeerUnhealthy",
      /fails its probe \(knownUser: no entry\)/,
    ],
    [
      "peer passed once only",
      { peer: { ...OPEN.peer, passes: 1 } },
      "PeerNotVerified",
      /passed 1 of 2 probes in a row/,
    ],
    [
      "a server went down 20 s ago (SSSD still skips it)",
      { lastDownAt: ago(20) },
      "SettleTime",
      /went down 20s ago; .* until 45s/,
      25_000,
    ],
    ["a server went down just now", { lastDownAt: NOW }, "SettleTime", /0s ago/, 45_000],
    [
      "paused wins over an unhealthy peer",
      { paused: true, peer: { ...OPEN.peer, passing: false } },
      "RolloutPaused",
    ],
    [
      "an unhealthy peer wins over the settle time",
      { lastDownAt: ago(1), peer: { ...OPEN.peer, passing: false } },
      "PeerUnhealthy",
    ],
  ])("%s -> %s", (_what, change, expected, message, retry) => {
    const verdict = peerGate({ ...OPEN, ...change });
    if (expected === "open") {
      expect(verdict.open).toBe(true);
      return;
    }
    expect(verdict).toMatchObject({ open: false, reason: expected });
    if (message) expect(verdict.message).toMatch(message);
    expect(verdict.message).toMatch(/^ldap2 waits: /);
    if (retry !== undefined) expect(verdict.open === false && verdict.retryAfterMs).toBe(retry);
  });
});
