import { describe, expect, it } from "vitest";
import { Redactor } from "../../src/observability/redact.js";
import type { KubeObject, ResourceClient } from "../../src/runtime/resource.js";
import { StatusPatcher } from "../../src/runtime/status.js";

/** Stands in for the API server: applies merge patches to status and bumps the resourceVersion. */
function fakeClient() {
  const sent: unknown[] = [];
  let rv = 10;
  const client = {
    patchStatus: async (_ns: string, name: string, body: { status: Record<string, unknown> }) => {
      sent.push(body);
      rv += 1;
      return {
        metadata: { name, namespace: "ns", uid: "u1", resourceVersion: String(rv), generation: 1 },
        status: body.status,
      };
    },
  } as unknown as ResourceClient;
  return { client, sent };
}

const cached = (rv: string, status?: Record<string, unknown>): KubeObject => ({
  metadata: { name: "a", namespace: "ns", uid: "u1", resourceVersion: rv, generation: 1 },
  ...(status ? { status } : {}),
});

const update = {
  fields: { phase: "Ready" },
  conditions: [{ type: "Ready", status: "True" as const, reason: "Ok", message: "" }],
};

describe("StatusPatcher", () => {
  it("does not write again from a stale cache that has not seen its last write yet", async () => {
    const { client, sent } = fakeClient();
    const patcher = new StatusPatcher(client, { now: () => new Date("2026-01-01T00:00:00Z") });
    const written = await patcher.update(cached("10"), update);
    // A resync hands the same stale object again before the watch caught up.
    await patcher.update(cached("10"), update);
    expect(sent).toHaveLength(1);
    // Once the cache shows the written version, it is the reference again: still nothing to write.
    await patcher.update(cached(written.metadata.resourceVersion!, written.status), update);
    expect(sent).toHaveLength(1);
    expect(patcher.writes).toBe(1);
  });

  it("writes again when the wanted status changes", async () => {
    const { client, sent } = fakeClient();
    const patcher = new StatusPatcher(client, { now: () => new Date("2026-01-01T00:00:00Z") });
    await patcher.update(cached("10"), update);
    await patcher.update(cached("10"), { fields: { phase: "Degraded" } });
    expect(sent).toHaveLength(2);
    expect(sent[1]).toEqual({ status: { phase: "Degraded" } });
  });

  it("does not patch a field wanted null that the object does not have, on any reconcile", async () => {
    const { client, sent } = fakeClient();
    const patcher = new StatusPatcher(client, { now: () => new Date("2026-01-01T00:00:00Z") });
    const written = await patcher.update(cached("10"), update);
    const clearing = { ...update, fields: { ...update.fields, lastError: null } };
    await patcher.update(cached(written.metadata.resourceVersion!, written.status), clearing);
    expect(sent).toHaveLength(1);
  });

  it("redacts free text only: enum, name and hash fields stay valid even when a secret equals them", async () => {
    const { client, sent } = fakeClient();
    const redactor = new Redactor();
    for (const value of ["Running", "ldap1", "9f8e7d6c5b4a", "Ready"]) redactor.registerSecret(value);
    const patcher = new StatusPatcher(client, { now: () => new Date("2026-01-01T00:00:00Z"), redactor });
    await patcher.update(cached("10"), {
      fields: {
        phase: "Ready",
        servers: [
          { name: "ldap1", state: "Running", configHash: "9f8e7d6c5b4a", message: "ldap1 is Running" },
        ],
        rollout: { targetHash: "9f8e7d6c5b4a", lastError: "hash 9f8e7d6c5b4a refused" },
      },
      conditions: [{ type: "Ready", status: "True", reason: "Ready", message: "Ready" }],
    });
    expect(sent).toEqual([
      {
        status: {
          phase: "Ready",
          servers: [
            {
              name: "ldap1",
              state: "Running",
              configHash: "9f8e7d6c5b4a",
              message: "[REDACTED] is [REDACTED]",
            },
          ],
          rollout: { targetHash: "9f8e7d6c5b4a", lastError: "hash [REDACTED] refused" },
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "Ready",
              message: "[REDACTED]",
              lastTransitionTime: "2026-01-01T00:00:00Z",
              observedGeneration: 1,
            },
          ],
          observedGeneration: 1,
        },
      },
    ]);
  });

  it("never sends a registered secret or a URI password in a condition message or status field", async () => {
    const { client, sent } = fakeClient();
    const redactor = new Redactor();
    redactor.registerSecret("tok-3f1c9a7e55b2");
    const patcher = new StatusPatcher(client, { now: () => new Date("2026-01-01T00:00:00Z"), redactor });
    await patcher.update(cached("10"), {
      fields: { lastError: "pve said tok-3f1c9a7e55b2", detail: { uris: ["postgres://mgr:pa55word@db/x"] } },
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "Failed",
          message: "postgres://mgr:pa55word@db:5432/x refused",
        },
      ],
    });
    const body = JSON.stringify(sent);
    expect(body).not.toContain("tok-3f1c9a7e55b2");
    expect(body).not.toContain("pa55word");
    expect(body).toContain("postgres://mgr:[REDACTED]@db:5432/x refused");
  });
});
