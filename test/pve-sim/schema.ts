/**
 * Parameter checking in the manner of PVE::JSONSchema: values arrive as strings (form-urlencoded) or JSON
 * values, are converted to their declared type, and every problem is reported per parameter in a 400.
 * The texts are those of PVE::JSONSchema's check_type / check_prop.
 */
import { paramError } from "./errors.js";

export type ParamValue = string | number;

export interface ParamSpec {
  type: "string" | "integer" | "number" | "boolean";
  optional?: boolean;
  default?: ParamValue;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  pattern?: RegExp;
  enum?: readonly string[];
  /** Returns the error text (without the "invalid format - " prefix) or undefined when the value is fine. */
  format?: (value: string) => string | undefined;
}

export interface Schema {
  properties: Record<string, ParamSpec>;
  /** Properties named by a pattern, e.g. net0..net31. */
  patternProperties?: { re: RegExp; spec: ParamSpec }[];
  /** Accept and pass through properties not described (default: refuse them as PVE does). */
  additionalProperties?: boolean;
}

export function specFor(schema: Schema, name: string): ParamSpec | undefined {
  return schema.properties[name] ?? schema.patternProperties?.find((p) => p.re.test(name))?.spec;
}

const TRUE_RE = /^(1|true|yes|on)$/i;
const FALSE_RE = /^(0|false|no|off)$/i;

/** Converts one value to its type; returns [value] or [undefined, error]. */
export function checkValue(spec: ParamSpec, raw: unknown): [ParamValue | undefined, string | undefined] {
  const text =
    typeof raw === "string"
      ? raw
      : typeof raw === "number" || typeof raw === "boolean"
        ? String(raw)
        : undefined;
  if (text === undefined)
    return [undefined, `type check ('${spec.type}') failed - got '${JSON.stringify(raw)}'`];
  let value: ParamValue;
  switch (spec.type) {
    case "boolean":
      if (typeof raw === "boolean") value = raw ? 1 : 0;
      else if (TRUE_RE.test(text)) value = 1;
      else if (FALSE_RE.test(text)) value = 0;
      else return [undefined, `type check ('boolean') failed - got '${text}'`];
      break;
    case "integer":
      if (!/^[+-]?\d+$/.test(text)) return [undefined, `type check ('integer') failed - got '${text}'`];
      value = parseInt(text, 10);
      break;
    case "number":
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text))
        return [undefined, `type check ('number') failed - got '${text}'`];
      value = Number(text);
      break;
    default:
      value = text;
  }
  if (typeof value === "number") {
    if (spec.minimum !== undefined && value < spec.minimum)
      return [undefined, `value must have a minimum value of ${spec.minimum}`];
    if (spec.maximum !== undefined && value > spec.maximum)
      return [undefined, `value must have a maximum value of ${spec.maximum}`];
  } else {
    if (spec.maxLength !== undefined && value.length > spec.maxLength)
      return [undefined, `value may only be ${spec.maxLength} characters long`];
    if (spec.enum && !spec.enum.includes(value))
      return [
        undefined,
        `value '${value}' does not have a value in the enumeration '${spec.enum.join(", ")}'`,
      ];
    if (spec.pattern && !spec.pattern.test(value))
      return [undefined, "value does not match the regex pattern"];
    if (spec.format) {
      const err = spec.format(value);
      if (err !== undefined) return [undefined, `invalid format - ${err}`];
    }
  }
  return [value, undefined];
}

/**
 * Checks `input` against `schema`: converted values of the known properties, defaults filled in.
 * Throws a 400 PveError naming each bad parameter.
 */
export function validate(schema: Schema, input: Record<string, unknown>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  const errors: Record<string, string> = {};
  for (const [name, raw] of Object.entries(input)) {
    if (raw === undefined) continue;
    const spec = specFor(schema, name);
    if (!spec) {
      if (schema.additionalProperties) {
        if (typeof raw === "string" || typeof raw === "number") out[name] = raw;
        else if (typeof raw === "boolean") out[name] = raw ? 1 : 0;
        continue;
      }
      errors[name] = "property is not defined in schema and the schema does not allow additional properties";
      continue;
    }
    const [value, err] = checkValue(spec, raw);
    if (err !== undefined) errors[name] = err;
    else if (value !== undefined) out[name] = value;
  }
  for (const [name, spec] of Object.entries(schema.properties)) {
    if (name in out || name in errors) continue;
    if (spec.default !== undefined) out[name] = spec.default;
    else if (!spec.optional) errors[name] = "property is missing and it is not optional";
  }
  if (Object.keys(errors).length > 0) throw paramError(errors);
  return out;
}

/** Parses `key=value,key=value` (a property string); a bare first item is stored under `defaultKey`. */
export function parsePropertyString(s: string, defaultKey?: string): Map<string, string> | string {
  const out = new Map<string, string>();
  if (s === "") return out;
  for (const [i, part] of s.split(",").entries()) {
    const eq = part.indexOf("=");
    if (eq < 0) {
      if (i === 0 && defaultKey) {
        out.set(defaultKey, part);
        continue;
      }
      return `unable to parse value of '${part}'`;
    }
    const k = part.slice(0, eq);
    if (out.has(k)) return `duplicate key in comma-separated list property: ${k}`;
    out.set(k, part.slice(eq + 1));
  }
  return out;
}

const LABEL = "[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?";
export const DNS_NAME_RE = new RegExp(`^(${LABEL}\\.)*${LABEL}$`);

export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

export function isIPv4Cidr(s: string): boolean {
  const m = /^(.+)\/(\d{1,2})$/.exec(s);
  return !!m && isIPv4(m[1]!) && Number(m[2]) <= 32;
}

export function isIPv6(s: string): boolean {
  return /^[0-9a-fA-F:]+(%\w+)?$/.test(s) && s.includes(":") && s.split("::").length <= 2;
}

export function isIP(s: string): boolean {
  return isIPv4(s) || isIPv6(s);
}

/** Control characters other than tab: refused in `env` and `entrypoint` (pve-container's check). */
// eslint-disable-next-line no-control-regex
export const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;
