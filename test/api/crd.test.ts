import { readFileSync } from "node:fs";
import { parse as parseCel } from "@marcbachmann/cel-js";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildCrd, CRD_FILE, renderCrdYaml } from "../../src/api/crd.js";
import type { OpenApiSchema } from "../../src/api/openapi.js";
import { DURATION_PATTERN, NODE_TIMER_MAX, NODE_TIMER_MAX_MS } from "../../src/api/schema-kit.js";
import { applyDefaults, celRules, compileAllRules, schemaErrors } from "../../src/api/validate.js";

const committed = readFileSync(new URL(`../../${CRD_FILE}`, import.meta.url), "utf8");
const schemaOf = (crd: ReturnType<typeof buildCrd>) => crd.spec.versions[0]!.schema.openAPIV3Schema;

/** Every node of a schema with its path. */
function* nodes(schema: OpenApiSchema, path = ""): Generator<[string, OpenApiSchema]> {
  yield [path, schema];
  for (const [name, child] of Object.entries(schema.properties ?? {})) yield* nodes(child, `${path}.${name}`);
  if (schema.items) yield* nodes(schema.items, `${path}[]`);
}

describe("the LdapPair CRD", () => {
  it("in crds/ is exactly what `npm run crds` generates from src/api", () => {
    expect(committed, "run `npm run crds` and commit the result").toBe(renderCrdYaml());
    expect(parse(committed)).toEqual(buildCrd());
  });

  it("has the status subresource, a short name, a category and the printer columns", () => {
    const crd = buildCrd();
    const version = crd.spec.versions[0]!;
    expect(version.subresources).toEqual({ status: {} });
    expect(crd.spec.names.shortNames).toContain("lp");
    expect(crd.spec.names.categories).toContain("ldapgateway");
    const columns = Object.fromEntries(version.additionalPrinterColumns.map((c) => [c.name, c]));
    expect(
      version.additionalPrinterColumns.filter((c) => c.priority === undefined).map((c) => c.name),
    ).toEqual(["Phase", "Image", "Ready", "Realm", "Server", "Step", "Age"]);
    // -o wide: why the pair is (not) Ready.
    expect(version.additionalPrinterColumns.filter((c) => c.priority === 1).map((c) => c.name)).toEqual([
      "Reason",
      "Message",
    ]);
    expect(columns.Server!.jsonPath).toBe(".status.rollout.server");
    expect(columns.Reason!.priority).toBe(1);
    expect(columns.Message!.priority).toBe(1);
    expect(columns.Phase!.priority).toBeUndefined();
  });

  it("is structural: every node has a type, no anyOf/oneOf, no $id", () => {
    for (const [path, node] of nodes(schemaOf(buildCrd()) as OpenApiSchema)) {
      if (path === ".metadata") continue;
      expect(node.type, `type at ${path || "root"}`).toMatch(
        /^(object|array|string|integer|number|boolean)$/,
      );
      for (const forbidden of ["anyOf", "oneOf", "allOf", "$id", "additionalProperties"]) {
        expect(node[forbidden], `${forbidden} at ${path}`).toBeUndefined();
      }
    }
  });

  it("never requires a field that has a default", () => {
    for (const [path, node] of nodes(schemaOf(buildCrd()) as OpenApiSchema)) {
      for (const name of node.required ?? []) {
        expect(node.properties?.[name]?.default, `${path}.${name}`).toBeUndefined();
      }
    }
  });

  it("bounds every string and array of the spec (the API server estimates CEL cost from them)", () => {
    for (const [path, node] of nodes(schemaOf(buildCrd()).properties.spec as OpenApiSchema, "spec")) {
      if (node.type === "string" && !node.enum) expect(node.maxLength, `maxLength at ${path}`).toBeDefined();
      if (node.type === "array") expect(node.maxItems, `maxItems at ${path}`).toBeDefined();
    }
  });

  it("has defaults that are themselves valid after defaulting", () => {
    const spec = schemaOf(buildCrd()).properties.spec as OpenApiSchema;
    const defaulted = [...nodes(spec, "spec")].filter(([, node]) => node.default !== undefined);
    expect(defaulted.length).toBeGreaterThan(20);
    for (const [path, node] of defaulted) {
      const value = applyDefaults(node, structuredClone(node.default));
      expect(schemaErrors(node, value, path), path).toEqual([]);
    }
  });

  it("bounds every duration by Node's timer limit or less, in CEL", () => {
    const spec = schemaOf(buildCrd()).properties.spec as OpenApiSchema;
    const durations = [...nodes(spec, "spec")].filter(([, node]) => node.pattern === DURATION_PATTERN);
    expect(durations.map(([path]) => path)).toEqual([
      "spec.realm.syncInterval",
      "spec.rollout.healthGateTimeout",
      "spec.rollout.settleTime",
      "spec.rollout.progressDeadline",
    ]);
    for (const [path, node] of durations) {
      expect(schemaErrors(node, "0s", path), path).toEqual([]);
      expect(schemaErrors(node, `${NODE_TIMER_MAX_MS + 1}ms`, path), path).toEqual([
        { field: path, message: expect.stringMatching(/^must be at most /) },
      ]);
    }
  });

  it("writes Node's timer limit, 2^31-1 ms, as the duration the API server compares with", () => {
    const { seconds, nanos } = parseCel("duration(self)")({ self: NODE_TIMER_MAX }) as {
      seconds: bigint;
      nanos: number;
    };
    expect(Number(seconds) * 1000 + nanos / 1e6).toBe(2 ** 31 - 1);
  });

  it("accepts no duration that overflows the API server's int64 nanoseconds", () => {
    const pattern = new RegExp(DURATION_PATTERN);
    // The largest component of each unit the pattern accepts, four times over.
    const largest = [
      "999999999999.999999999ms",
      "999999999.999999999s",
      "9999999.999999999m",
      "99999.999999999h",
    ];
    for (const part of largest) {
      const worst = part.repeat(4);
      expect(pattern.test(worst), worst).toBe(true);
      expect(pattern.test(worst + part), `${worst} and a fifth part`).toBe(false);
      expect(pattern.test(`9${part}`), `a digit more than ${part}`).toBe(false);
      const { seconds } = parseCel("duration(self)")({ self: worst }) as { seconds: bigint };
      expect(seconds * 1_000_000_000n < 2n ** 63n, worst).toBe(true);
    }
  });

  it("has CEL rules that all compile", () => {
    expect(celRules().length).toBeGreaterThanOrEqual(8);
    expect(() => compileAllRules()).not.toThrow();
  });
});
