// The generated CRD, proven against a real kube-apiserver: installed with
// kubectl, the example accepted with defaults filled in by the server (and
// equal to the operator's own defaulting), the shared valid LdapPairs stored
// as the operator stores them, invalid ones refused with readable messages,
// printer columns and generation semantics.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import {
  ApiException,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from "@kubernetes/client-node";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { GROUP, PLURAL, VERSION } from "../../src/api/ldappair.js";
import { validateSpec } from "../../src/api/validate.js";
import { INVALID_SPECS } from "../support/invalid-specs.js";
import { defaulted, MINIMAL_SPEC } from "../support/spec.js";
import { FULL_STATUS } from "../support/status.js";
import { VALID_SPECS } from "../support/valid-specs.js";

const kubeconfig = inject("kubeconfig");
const NS = "crd-test";
const kubectl = (...args: string[]) =>
  execFileSync("kubectl", ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
    stdio: ["pipe", "pipe", "pipe"],
  });

const kc = new KubeConfig();
kc.loadFromFile(kubeconfig);
const objects = kc.makeApiClient(CustomObjectsApi);
const target = { group: GROUP, version: VERSION, namespace: NS, plural: PLURAL };

interface StoredPair {
  metadata: { name: string; generation: number };
  spec: Record<string, unknown>;
  status?: Record<string, unknown>;
}

const pair = (name: string, spec: unknown) => ({
  apiVersion: `${GROUP}/${VERSION}`,
  kind: "LdapPair",
  metadata: { name, namespace: NS },
  spec,
});

interface Cause {
  field?: string;
  message?: string;
}

/** What the API server says when it refuses a dry-run create. */
async function refusal(spec: unknown): Promise<{ code: number; message: string; causes: Cause[] }> {
  try {
    await objects.createNamespacedCustomObject({
      ...target,
      body: pair("invalid", spec),
      dryRun: "All",
      fieldValidation: "Strict",
    });
  } catch (e) {
    if (!(e instanceof ApiException)) throw e;
    const body = (typeof e.body === "string" ? JSON.parse(e.body) : e.body) as {
      message: string;
      details?: { causes?: Cause[] };
    };
    return { code: e.code, message: body.message, causes: body.details?.causes ?? [] };
  }
  throw new Error("the API server accepted an invalid LdapPair");
}

beforeAll(() => {
  kubectl("apply", "-f", "crds/");
  kubectl("wait", "--for=condition=Established", "--timeout=60s", `crd/${PLURAL}.${GROUP}`);
  kubectl("create", "namespace", NS);
});

describe("the LdapPair CRD on a real API server", () => {
  it("is Established, with its short name and category", () => {
    expect(kubectl("get", "lp", "-n", NS)).toMatch(/No resources found|^$/);
    expect(kubectl("api-resources", "--api-group", GROUP)).toMatch(
      /ldappairs\s+lp\s+ldapgateway\.io\/v1alpha1\s+true\s+LdapPair/,
    );
    expect(kubectl("get", "ldapgateway", "-n", NS)).toMatch(/No resources found|^$/);
  });

  it("accepts the example with its Secrets", () => {
    const docs = parseAllDocuments(readFileSync("examples/ldappair.yaml", "utf8")).map((d) => {
      const obj = d.toJS() as { metadata: { namespace: string } };
      obj.metadata.namespace = NS;
      return JSON.stringify(obj);
    });
    for (const doc of docs) {
      const out = execFileSync(
        "kubectl",
        ["--kubeconfig", kubeconfig, "apply", "--validate=strict", "-f", "-"],
        {
          input: doc,
          encoding: "utf8",
        },
      );
      expect(out).toMatch(/created|configured/);
    }
    const stored = JSON.parse(kubectl("get", "ldappair", "site-a", "-n", NS, "-o", "json")) as StoredPair;
    const example = docs
      .map((d) => JSON.parse(d) as { kind: string; spec: unknown })
      .find((d) => d.kind === "LdapPair");
    expect(stored.spec).toEqual(example?.spec);
  });

  it("fills in the same defaults as the operator's own validation", async () => {
    const created = (await objects.createNamespacedCustomObject({
      ...target,
      body: pair("minimal", MINIMAL_SPEC),
    })) as StoredPair;
    const ours = validateSpec(MINIMAL_SPEC);
    if (!ours.ok) throw new Error("minimal spec invalid");
    expect(created.spec).toEqual(ours.value);
    expect(created.spec.servers).toEqual([{ name: "ldap1" }, { name: "ldap2" }]);
    expect((created.spec.realm as Record<string, unknown>).name).toBe("ldap");
  });

  it.each(VALID_SPECS.map((c) => [c.title, c] as const))(
    "accepts %s and stores it as the operator's validation does",
    async (_title, c) => {
      const stored = (await objects.createNamespacedCustomObject({
        ...target,
        body: pair("valid", c.spec),
        dryRun: "All",
        fieldValidation: "Strict",
      })) as StoredPair;
      expect(stored.spec).toEqual(defaulted(c.spec));
      if (c.storedAs) expect(stored.spec).toEqual(defaulted(c.storedAs));
    },
  );

  it.each(INVALID_SPECS.map((c) => [c.title, c] as const))("refuses %s", async (_title, c) => {
    expect(validateSpec(c.spec).ok, "the operator's validation must refuse it too").toBe(false);
    const { code, message, causes } = await refusal(c.spec);
    expect(code).toBe(422);
    const cause = causes.find((k) => k.field === c.field && c.message.test(k.message ?? ""));
    expect(cause, `${c.field}: ${String(c.message)} in ${message}`).toBeDefined();
  });

  it("refuses unknown fields under strict field validation", async () => {
    const { code, message } = await refusal({ ...MINIMAL_SPEC, replicas: 2 });
    expect(code).toBe(400);
    expect(message).toMatch(/unknown field "spec\.replicas"/);
  });

  it("refuses two extra variables of the same name", async () => {
    const { causes } = await refusal({
      ...MINIMAL_SPEC,
      extraEnv: [
        { name: "A", value: "1" },
        { name: "A", value: "2" },
      ],
    });
    expect(
      causes.some((k) => k.field === "spec.extraEnv[1]" && /Duplicate value/.test(k.message ?? "")),
    ).toBe(true);
  });

  it("prints the columns after a status update; status updates keep the generation, spec changes bump it", async () => {
    const name = "columns";
    const created = (await objects.createNamespacedCustomObject({
      ...target,
      body: pair(name, MINIMAL_SPEC),
    })) as StoredPair;
    expect(created.metadata.generation).toBe(1);
    const status = {
      observedGeneration: 1,
      phase: "RollingUpdate",
      readyServers: "1/2",
      realm: { name: "ldap", syncState: "Synced" },
      rollout: { server: "ldap2", step: "Verify" },
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "RollingUpdate",
          message: "replacing ldap2",
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
          observedGeneration: 1,
        },
      ],
    };
    const patched = (await objects.patchNamespacedCustomObjectStatus(
      { ...target, name, body: { status } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as StoredPair;
    expect(patched.metadata.generation).toBe(1);

    const table = kubectl("get", "ldappairs", name, "-n", NS);
    expect(table).toMatch(/^NAME\s+PHASE\s+IMAGE\s+READY\s+REALM\s+SERVER\s+STEP\s+AGE\n/);
    expect(table).toMatch(
      /columns\s+RollingUpdate\s+ghcr\.io\/mieweb\/ldap-gateway:1\.4\.0\s+1\/2\s+Synced\s+ldap2\s+Verify\s+\d+s/,
    );
    const wide = kubectl("get", "ldappairs", name, "-n", NS, "-o", "wide");
    expect(wide).toMatch(/AGE\s+REASON\s+MESSAGE/);
    expect(wide).toMatch(/Verify\s+\d+s\s+RollingUpdate\s+replacing ldap2/);

    const changed = (await objects.patchNamespacedCustomObject(
      { ...target, name, body: { spec: { image: "ghcr.io/mieweb/ldap-gateway:1.5.0" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as StoredPair;
    expect(changed.metadata.generation).toBe(2);
    expect(changed.status?.phase).toBe("RollingUpdate");
  });

  it("stores a status with every field the operator writes unchanged (nothing pruned)", async () => {
    const name = "full-status";
    await objects.createNamespacedCustomObject({ ...target, body: pair(name, MINIMAL_SPEC) });
    const patched = (await objects.patchNamespacedCustomObjectStatus(
      { ...target, name, body: { status: FULL_STATUS } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    )) as StoredPair;
    expect(patched.status).toEqual(FULL_STATUS);
  });

  it("keeps the status out of spec writes and the spec out of status writes", async () => {
    const name = "subresource";
    await objects.createNamespacedCustomObject({
      ...target,
      body: { ...pair(name, MINIMAL_SPEC), status: { phase: "Ready" } },
    });
    const stored = (await objects.getNamespacedCustomObject({ ...target, name })) as StoredPair;
    expect(stored.status).toBeUndefined();
    await objects.patchNamespacedCustomObjectStatus(
      {
        ...target,
        name,
        body: { spec: { image: "ghcr.io/mieweb/ldap-gateway:9.9.9" }, status: { phase: "Ready" } },
      },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    const after = (await objects.getNamespacedCustomObject({ ...target, name })) as StoredPair;
    expect(after.spec.image).toBe(MINIMAL_SPEC.image);
    expect(after.status?.phase).toBe("Ready");
  });

  it("lets RBAC decide who may read LdapPairs (authorization is on)", () => {
    expect(kubectl("auth", "can-i", "list", "ldappairs", "-n", NS).trim()).toBe("yes");
    const forbidden = () =>
      kubectl("auth", "can-i", "list", "ldappairs", "-n", NS, "--as", "system:serviceaccount:x:nobody");
    expect(forbidden).toThrow();
  });
});
