import { describe, expect, it } from "vitest";
import { KubeConfig } from "@kubernetes/client-node";
import { createLogger } from "../../src/observability/logger.js";
import { Redactor } from "../../src/observability/redact.js";
import {
  EventFilter,
  EventRecorder,
  eventName,
  truncateUtf8,
  type EventSpec,
} from "../../src/runtime/events.js";
import type { KubeObject } from "../../src/runtime/resource.js";

const obj = (uid: string): KubeObject => ({ metadata: { name: uid, namespace: "ns", uid } });
const ev = (reason = "Synced", note = "realm synced"): EventSpec => ({
  type: "Normal",
  reason,
  action: "Sync",
  note,
});

describe("EventFilter", () => {
  it("suppresses an identical event within the window, lets it through after", () => {
    const f = new EventFilter({ dedupWindowMs: 60_000 });
    expect(f.admit(obj("a"), ev(), 0)).toBe(true);
    expect(f.admit(obj("a"), ev(), 59_999)).toBe(false);
    expect(f.admit(obj("a"), ev(), 60_000)).toBe(true);
  });

  it("does not confuse different objects, reasons or notes", () => {
    const f = new EventFilter();
    expect(f.admit(obj("a"), ev(), 0)).toBe(true);
    expect(f.admit(obj("b"), ev(), 0)).toBe(true);
    expect(f.admit(obj("a"), ev("Failed"), 0)).toBe(true);
    expect(f.admit(obj("a"), ev("Synced", "other"), 0)).toBe(true);
  });

  it("caps distinct events per object so a flapping loop cannot flood the API", () => {
    const f = new EventFilter({ perObject: { burst: 3, qps: 1 / 300 } });
    const admitted = Array.from({ length: 10 }, (_, i) => f.admit(obj("a"), ev("Flap", `n${i}`), i)).filter(
      Boolean,
    );
    expect(admitted).toHaveLength(3);
    expect(f.admit(obj("a"), ev("Flap", "later"), 300_000)).toBe(true);
  });

  it("keeps the budget per reason: a flood of one reason never silences another", () => {
    const f = new EventFilter({ perObject: { burst: 3, qps: 1 / 300 } });
    for (let i = 0; i < 10; i++) f.admit(obj("a"), ev("WaitingForPeer", `n${i}`), i);
    expect(f.admit(obj("a"), { ...ev("HealthGateFailed", "ldap1 failed"), type: "Warning" }, 20)).toBe(true);
    expect(f.admit(obj("a"), ev("CleanedUp", "all gone"), 21)).toBe(true);
    expect(f.admit(obj("a"), ev("WaitingForPeer", "n10"), 22)).toBe(false);
  });

  it("stays bounded in memory", () => {
    const f = new EventFilter({ maxEntries: 10 });
    for (let i = 0; i < 1000; i++) f.admit(obj(`o${i}`), ev(), 0);
    // The first object was evicted, so the same event is admitted again.
    expect(f.admit(obj("o0"), ev(), 1)).toBe(true);
  });
});

function recorderSendingTo(bodies: unknown[], redactor = new Redactor()) {
  return new EventRecorder({
    kubeConfig: new KubeConfig(),
    reportingController: "test/controller",
    reportingInstance: "i-1",
    logger: createLogger({ level: "error" }),
    redactor,
    api: {
      createNamespacedEvent: async (request: { body: unknown }) => {
        bodies.push(request.body);
        return {} as never;
      },
    } as never,
  });
}

describe("truncateUtf8", () => {
  it.each([
    ["short text kept whole", "realm synced", 1024, "realm synced"],
    ["ASCII cut at the byte limit", "a".repeat(2000), 1024, "a".repeat(1024)],
    ["two-byte characters: 512 fit", "é".repeat(600), 1024, "é".repeat(512)],
    ["three-byte characters: 341 fit, 1023 bytes", "€".repeat(400), 1024, "€".repeat(341)],
    ["four-byte characters (surrogate pairs): 256 fit", "😀".repeat(300), 1024, "😀".repeat(256)],
    [
      "a character that would straddle the limit is dropped whole",
      `a${"😀".repeat(300)}`,
      1024,
      `a${"😀".repeat(255)}`,
    ],
  ])("%s", (_case, text, max, expected) => {
    const cut = truncateUtf8(text, max);
    expect(cut).toBe(expected);
    expect(Buffer.byteLength(cut, "utf8")).toBeLessThanOrEqual(max);
  });
});

describe("EventRecorder", () => {
  it("cuts a note to the API server's 1024 bytes, not 1024 UTF-16 units", async () => {
    const bodies: unknown[] = [];
    const recorder = recorderSendingTo(bodies);
    recorder.record(obj("a"), ev("Failed", `Échec : ${"é".repeat(1000)}`));
    await recorder.flush();
    const note = (bodies[0] as { note: string }).note;
    expect(Buffer.byteLength(note, "utf8")).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(note, "utf8")).toBeGreaterThan(1020);
    expect(note.startsWith("Échec : é")).toBe(true);
  });

  it("never sends a registered secret or a URI password in an event note", async () => {
    const bodies: unknown[] = [];
    const redactor = new Redactor();
    redactor.registerSecret("tok-3f1c9a7e55b2");
    const recorder = recorderSendingTo(bodies, redactor);
    recorder.record(
      obj("a"),
      ev("Failed", "login with tok-3f1c9a7e55b2 to postgres://mgr:pa55word@db/x failed"),
    );
    await recorder.flush();
    expect(bodies).toHaveLength(1);
    const body = JSON.stringify(bodies[0]);
    expect(body).not.toContain("tok-3f1c9a7e55b2");
    expect(body).not.toContain("pa55word");
    expect(body).toContain("postgres://mgr:[REDACTED]@db/x failed");
  });
});

describe("eventName", () => {
  it.each([
    ["short name kept whole", "a", "a"],
    ["253-char name cut", "x".repeat(253), "x".repeat(237)],
    ["cut never leaves a trailing dash or dot", `${"x".repeat(235)}-.y`, "x".repeat(235)],
  ])("%s", (_case, name, head) => {
    const full = eventName(name, 0x19a0b1c2d3e);
    expect(full.length).toBeLessThanOrEqual(253);
    expect(full).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    expect(full.slice(0, full.lastIndexOf("."))).toBe(head);
  });
});
