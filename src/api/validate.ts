// The operator's own reading of an LdapPair spec, with the API server's
// semantics: unknown fields refused (kubectl's strict field validation),
// null fields dropped and defaults applied recursively, then the OpenAPI
// keywords, list uniqueness and the CEL rules of the very schema the CRD is
// generated from. The API server normally has done all of this already; the
// operator repeats it so that a spec applied to an older CRD, or built in
// tests and the demo, is judged by the same rules.
import { Ajv, type ErrorObject } from "ajv";
import { parse as parseCel } from "@marcbachmann/cel-js";
import { LdapPairSpec, LdapPairStatus } from "./ldappair.js";
import { toOpenApi, type OpenApiSchema } from "./openapi.js";
import type { CelRule } from "./schema-kit.js";

export interface FieldError {
  /** Path in kubectl's notation, e.g. `spec.servers[1].name`. */
  field: string;
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

const SPEC_SCHEMA = toOpenApi(LdapPairSpec);
const STATUS_SCHEMA = toOpenApi(LdapPairStatus);

const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false, logger: false });
const compiledSchemas = new WeakMap<OpenApiSchema, ReturnType<typeof ajv.compile>>();
function openApiCheck(schema: OpenApiSchema) {
  let check = compiledSchemas.get(schema);
  if (!check) {
    check = ajv.compile(schema);
    compiledSchemas.set(schema, check);
  }
  return check;
}

type Compiled = (context: Record<string, unknown>) => unknown;
const celCache = new Map<string, Compiled>();
function compileCel(rule: string): Compiled {
  let compiled = celCache.get(rule);
  if (!compiled) {
    compiled = parseCel(rule) as Compiled;
    celCache.set(rule, compiled);
  }
  return compiled;
}

/** Every CEL rule of the schema, for tests that compile them all. */
export function celRules(schema: OpenApiSchema = SPEC_SCHEMA): string[] {
  const own = ((schema["x-kubernetes-validations"] as CelRule[] | undefined) ?? []).map((r) => r.rule);
  const children = [...Object.values(schema.properties ?? {}), ...(schema.items ? [schema.items] : [])];
  return [...own, ...children.flatMap((child) => celRules(child))];
}

export function compileAllRules(): void {
  for (const rule of celRules()) compileCel(rule);
}

/** Applies defaults and validates; returns the spec as the API server would store it. */
export function validateSpec(input: unknown): ValidationResult<LdapPairSpec> {
  const errors = unknownFields(SPEC_SCHEMA, input, "spec");
  const value = applyDefaults(SPEC_SCHEMA, structuredClone(input));
  errors.push(...schemaErrors(SPEC_SCHEMA, value, "spec"));
  return errors.length === 0 ? { ok: true, value: value as LdapPairSpec } : { ok: false, errors };
}

/**
 * What the API server would refuse or silently prune in a status the
 * operator is about to write: a field the schema lacks is dropped without an
 * error, so a status that loses a field on the way would be lost memory.
 */
export function statusErrors(status: unknown): FieldError[] {
  return [
    ...unknownFields(STATUS_SCHEMA, status, "status"),
    ...schemaErrors(STATUS_SCHEMA, status, "status"),
  ];
}

/** What the API server says about an already defaulted value of one schema node: keywords, lists, CEL. */
export function schemaErrors(schema: OpenApiSchema, value: unknown, path: string): FieldError[] {
  const check = openApiCheck(schema);
  const openApi = check(value) ? [] : (check.errors ?? []).map((e) => ajvError(e, path));
  return [
    ...openApi,
    ...duplicateListEntries(schema, value, path),
    ...celErrors(schema, value, path, openApi.length === 0),
  ];
}

export function formatErrors(errors: FieldError[]): string {
  return errors.map((e) => `${e.field}: ${e.message}`).join("; ");
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Kubernetes defaulting: a property set to null is dropped (no field of the
 * schema is nullable), a missing property with a default gets it, then
 * defaulting recurses into it. Null list items stay: the API server refuses them.
 */
export function applyDefaults(schema: OpenApiSchema, value: unknown): unknown {
  if (isObject(value) && schema.properties) {
    for (const [name, child] of Object.entries(schema.properties)) {
      if (value[name] === null) delete value[name];
      if (value[name] === undefined && child.default !== undefined)
        value[name] = structuredClone(child.default);
      if (value[name] !== undefined) value[name] = applyDefaults(child, value[name]);
    }
  } else if (Array.isArray(value) && schema.items) {
    const items = schema.items;
    return value.map((item) => applyDefaults(items, item));
  }
  return value;
}

/** Every value present in the object, with the schema node that describes it and its path. */
function* walk(
  schema: OpenApiSchema,
  value: unknown,
  path: string,
): Generator<[OpenApiSchema, unknown, string]> {
  if (value === undefined) return;
  yield [schema, value, path];
  if (isObject(value) && schema.properties) {
    for (const [name, child] of Object.entries(value)) {
      const sub = schema.properties[name];
      if (sub) yield* walk(sub, child, `${path}.${name}`);
    }
  } else if (Array.isArray(value) && schema.items) {
    for (const [i, item] of value.entries()) yield* walk(schema.items, item, `${path}[${i}]`);
  }
}

function unknownFields(schema: OpenApiSchema, value: unknown, path: string): FieldError[] {
  return [...walk(schema, value, path)].flatMap(([node, v, at]) =>
    isObject(v) && node.properties
      ? Object.keys(v)
          .filter((name) => !node.properties?.[name])
          .map((name) => ({ field: `${at}.${name}`, message: "unknown field" }))
      : [],
  );
}

/**
 * List-maps (`x-kubernetes-list-type: map`) may not repeat a key and sets
 * (`set`) may not repeat an item, as the API server enforces; it names the
 * second occurrence.
 */
function duplicateListEntries(schema: OpenApiSchema, value: unknown, path: string): FieldError[] {
  return [...walk(schema, value, path)].flatMap(([node, v, at]) => {
    const listType = node["x-kubernetes-list-type"];
    if ((listType !== "map" && listType !== "set") || !Array.isArray(v)) return [];
    const identity = listType === "map" ? mapKeyOf(node) : (item: unknown) => JSON.stringify(item);
    const seen = new Set<string>();
    return v.flatMap((item: unknown, i) => {
      const id = identity(item);
      if (!seen.has(id)) return (seen.add(id), []);
      return [{ field: `${at}[${i}]`, message: `Duplicate value: ${id}` }];
    });
  });
}

/** A list-map item's identity, as the API server prints it: {"name":"A"}. */
const mapKeyOf = (node: OpenApiSchema) => (item: unknown) => {
  const keys = (node["x-kubernetes-list-map-keys"] as string[] | undefined) ?? [];
  return JSON.stringify(Object.fromEntries(keys.map((k) => [k, isObject(item) ? item[k] : undefined])));
};

/**
 * A rule that fails to evaluate on a value of the right types is an error, as
 * on the API server (and shows a rule this CEL implementation reads otherwise).
 * On a value the OpenAPI check refused, the error is already reported.
 */
function celErrors(schema: OpenApiSchema, value: unknown, path: string, typesValid: boolean): FieldError[] {
  return [...walk(schema, value, path)].flatMap(([node, v, at]) =>
    ((node["x-kubernetes-validations"] as CelRule[] | undefined) ?? []).flatMap((r) => {
      const holds = celHolds(r.rule, v);
      if (holds === true || (holds === "unevaluable" && !typesValid)) return [];
      const message = holds === "unevaluable" ? `${r.message} (the rule could not be evaluated)` : r.message;
      return [{ field: at, message }];
    }),
  );
}

function celHolds(rule: string, self: unknown): boolean | "unevaluable" {
  const compiled = compileCel(rule); // a rule that does not compile is a bug in the schema: throw
  try {
    return compiled({ self }) === true;
  } catch {
    // The message is not kept: it may quote the value, which may be a secret.
    return "unevaluable";
  }
}

function ajvError(error: ErrorObject, root: string): FieldError {
  const field = root + error.instancePath.replace(/\/(\d+)(?=\/|$)/g, "[$1]").replace(/\//g, ".");
  switch (error.keyword) {
    case "required":
      return { field: `${field}.${String(error.params.missingProperty)}`, message: "Required value" };
    case "pattern":
      return { field, message: `should match '${String(error.params.pattern)}'` };
    case "enum":
      return {
        field,
        message: `Unsupported value: supported values: ${(error.params.allowedValues as string[]).map((v) => `"${v}"`).join(", ")}`,
      };
    case "minimum":
      return { field, message: `should be greater than or equal to ${String(error.params.limit)}` };
    case "maximum":
      return { field, message: `should be less than or equal to ${String(error.params.limit)}` };
    case "minLength":
      return { field, message: `should be at least ${String(error.params.limit)} chars long` };
    case "maxLength":
      return { field, message: `Too long: may not be more than ${String(error.params.limit)} bytes` };
    case "minItems":
      return { field, message: `should have at least ${String(error.params.limit)} items` };
    case "maxItems":
      return { field, message: `Too many: must have at most ${String(error.params.limit)} items` };
    case "type":
      return { field, message: `Invalid value: must be of type ${String(error.params.type)}` };
    default:
      return { field, message: error.message ?? error.keyword };
  }
}
