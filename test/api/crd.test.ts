import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { buildCrd, CRD_FILE, renderCrdYaml } from "../../src/api/crd.js";
import type { OpenApiSchema } from "../../src/api/openapi.js";
import { applyDefaults, celRules, compileAllRules } from "../../src/api/validate.js";

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
    expect(Object.keys(columns)).toEqual(
      expect.arrayContaining(["Phase", "Image", "Ready", "Realm", "Age", "Reason", "Message"]),
    );
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
    for (const [path, node] of nodes(spec)) {
      if (node.default === undefined) continue;
      const value = applyDefaults(node, structuredClone(node.default));
      expect(value, path).toBeDefined();
    }
  });

  it("has CEL rules that all compile", () => {
    expect(celRules().length).toBeGreaterThanOrEqual(8);
    expect(() => compileAllRules()).not.toThrow();
  });
});
