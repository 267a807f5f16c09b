import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { statusErrors, validateSpec } from "../../src/api/validate.js";
import { INVALID_SPECS } from "../support/invalid-specs.js";
import { defaulted, MINIMAL_SPEC } from "../support/spec.js";
import { FULL_STATUS } from "../support/status.js";
import { VALID_SPECS } from "../support/valid-specs.js";

const example = parseAllDocuments(
  readFileSync(new URL("../../examples/ldappair.yaml", import.meta.url), "utf8"),
)
  .map((d) => d.toJS() as { kind: string; spec?: unknown; metadata: { name: string } })
  .find((d) => d.kind === "LdapPair")!;

describe("validateSpec", () => {
  it("accepts the complete example unchanged (every field already set)", () => {
    const result = validateSpec(example.spec);
    expect(result.ok ? [] : result.errors).toEqual([]);
    expect(result.ok && result.value).toEqual(example.spec);
  });

  it("fills in the runbook's defaults", () => {
    const result = validateSpec(MINIMAL_SPEC);
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    const spec = result.value;
    expect(spec.servers).toEqual([{ name: "ldap1" }, { name: "ldap2" }]);
    expect(spec.requireAuthForSearch).toBe(false);
    expect(spec.realm).toEqual({
      manage: true,
      name: "ldap",
      default: true,
      verifyCertificate: false,
      emailAttribute: "mail",
      syncScope: "both",
      syncInterval: "1h",
      adopt: false,
      syncNames: false,
    });
    expect(spec.groupMembers).toBe(true);
    expect(spec.proxmox.tls).toEqual({ insecureSkipVerify: false });
    expect(spec.proxmox.credentialsSecretRef).toEqual({
      name: "pve-token",
      tokenIdKey: "tokenId",
      tokenSecretKey: "tokenSecret",
    });
    expect(spec.database.uriSecretRef).toEqual({ name: "manager-db", key: "uri" });
    expect(spec.rollout).toMatchObject({
      strategy: "CreateThenSwap",
      paused: false,
      autoRollback: false,
      progressDeadline: "10m",
    });
    expect(spec.deletionPolicy).toBe("Retain");
    expect(spec.notifications).toBeUndefined();
  });

  it("does not modify its input", () => {
    const input = structuredClone(MINIMAL_SPEC);
    validateSpec(input);
    expect(input).toEqual(MINIMAL_SPEC);
  });

  it.each(INVALID_SPECS.map((c) => [c.title, c] as const))("refuses %s", (_title, c) => {
    const result = validateSpec(c.spec);
    expect(result.ok).toBe(false);
    const errors = result.ok ? [] : result.errors;
    expect(errors).toContainEqual({ field: c.field, message: expect.stringMatching(c.message) });
  });

  it.each(VALID_SPECS.map((c) => [c.title, c] as const))("accepts %s", (_title, c) => {
    const result = validateSpec(c.spec);
    expect(result.ok ? [] : result.errors).toEqual([]);
    if (result.ok && c.storedAs) expect(result.value).toEqual(defaulted(c.storedAs));
  });

  it("refuses unknown fields, as kubectl's strict validation does", () => {
    const result = validateSpec({
      ...MINIMAL_SPEC,
      replicas: 3,
      proxmox: { ...MINIMAL_SPEC.proxmox, tokn: "x" },
    });
    expect(result.ok ? [] : result.errors).toEqual(
      expect.arrayContaining([
        { field: "spec.replicas", message: "unknown field" },
        { field: "spec.proxmox.tokn", message: "unknown field" },
      ]),
    );
  });

  it("refuses two extra variables of the same name", () => {
    const result = validateSpec({
      ...MINIMAL_SPEC,
      extraEnv: [
        { name: "A", value: "1" },
        { name: "A", value: "2" },
      ],
    });
    expect(result.ok ? [] : result.errors).toContainEqual({
      field: "spec.extraEnv[1]",
      message: expect.stringMatching(/Duplicate value/),
    });
  });

  it("never echoes an extra env value back in an error", () => {
    const result = validateSpec({ ...MINIMAL_SPEC, extraEnv: [{ name: "TOKEN", value: "hunter2\nsecret" }] });
    expect(JSON.stringify(result)).not.toContain("hunter2");
  });
});

describe("statusErrors", () => {
  it("accepts a status with every field the operator writes", () => {
    expect(statusErrors(FULL_STATUS)).toEqual([]);
  });

  it.each([
    [
      "a field the schema lacks (the API server would prune it)",
      { ...FULL_STATUS, pendingTask: "UPID:x" },
      "status.pendingTask",
      /unknown field/,
    ],
    [
      "a task of an action that is no task",
      { ...FULL_STATUS, task: { ...FULL_STATUS.task!, action: "UpdateRealm" } },
      "status.task.action",
      /Unsupported value/,
    ],
    [
      "a sync reason nobody knows",
      { ...FULL_STATUS, realm: { pendingSync: "Whim" } },
      "status.realm.pendingSync",
      /Unsupported value/,
    ],
    [
      "a failure without attempts",
      { ...FULL_STATUS, lastFailure: { action: "PullImage", time: "2026-12-01T10:00:00Z", message: "x" } },
      "status.lastFailure.attempts",
      /Required value/,
    ],
  ])("refuses %s", (_what, status, field, message) => {
    expect(statusErrors(status)).toContainEqual({ field, message: expect.stringMatching(message) });
  });
});
