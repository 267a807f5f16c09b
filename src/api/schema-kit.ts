// Building blocks for the LdapPair schema. The schema is written once, with
// TypeBox, and serves three readers: TypeScript (Static types), the operator's
// own validation (src/api/validate.ts) and the CRD (src/api/crd.ts).
import { Type, type TString, type SchemaOptions } from "@sinclair/typebox";

/** A Kubernetes CEL validation rule, as `x-kubernetes-validations` holds it. */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

export interface KubeOptions extends SchemaOptions {
  "x-kubernetes-validations"?: CelRule[];
  "x-kubernetes-list-type"?: "atomic" | "set" | "map";
  "x-kubernetes-list-map-keys"?: string[];
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

/** A string restricted to a fixed set: an OpenAPI `enum`, not TypeBox's anyOf (not structural). */
export function StringEnum<const T extends readonly string[]>(values: T, options: KubeOptions = {}) {
  return Type.Unsafe<T[number]>({ type: "string", enum: [...values], ...options });
}

/** The longest delay a Node.js timer honours; a longer one fires after 1 ms. */
export const NODE_TIMER_MAX_MS = 2 ** 31 - 1;
const hoursMinutesSeconds = (ms: number) =>
  `${Math.floor(ms / 3_600_000)}h${Math.floor(ms / 60_000) % 60}m${(ms % 60_000) / 1000}s`;
/** NODE_TIMER_MAX_MS as a duration: 596h31m23.647s. */
export const NODE_TIMER_MAX = hoursMinutesSeconds(NODE_TIMER_MAX_MS);

// One component of a duration, with its integer digits bounded per unit so
// that no accepted value overflows Go's time.Duration (int64 nanoseconds,
// about 292 years) when the API server's CEL parses it: four components of at
// most about 10^9 s each stay below 2^63 ns. Without the bound the API server
// would answer a huge value with a CEL evaluation error instead of the message.
const durationPart = (digits: number, unit: string) => `[0-9]{1,${digits}}(\\.[0-9]{1,9})?${unit}`;

/** A duration as Kubernetes writes them (metav1.Duration): "30s", "5m", "1h30m", "1.5h". */
export const DURATION_PATTERN = `^(${[
  durationPart(12, "ms"),
  durationPart(9, "s"),
  durationPart(7, "m"),
  durationPart(5, "h"),
].join("|")}){1,4}$`;

export interface DurationOptions extends KubeOptions {
  /** A bound below Node's timer limit, for a field where a longer value is clearly a mistake. */
  max?: { value: string; why: string };
}

/**
 * A duration with an upper bound: every duration here ends up as a timer, and
 * a timer longer than NODE_TIMER_MAX fires at once. The rule skips values the
 * pattern refuses (the pattern reports those), so it never evaluates a
 * malformed duration.
 */
export function Duration({ max, ...options }: DurationOptions = {}): TString {
  const bound = max?.value ?? NODE_TIMER_MAX;
  const message = max
    ? `must be at most ${max.value}: ${max.why}`
    : `must be at most ${NODE_TIMER_MAX} (2^31-1 ms, about 24.8 days), the longest delay a Node.js timer can wait`;
  return Type.String({
    pattern: DURATION_PATTERN,
    maxLength: 32,
    ...options,
    "x-kubernetes-validations": [
      ...(options["x-kubernetes-validations"] ?? []),
      { rule: `!self.matches(r'${DURATION_PATTERN}') || duration(self) <= duration('${bound}')`, message },
    ],
  });
}

/** A DNS label (RFC 1123): what Proxmox accepts as a hostname or node name. */
export const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/** A DNS subdomain (RFC 1123), what Kubernetes requires of most object names, Secrets' among them. */
export const DNS_SUBDOMAIN_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/** What Kubernetes accepts as a key of a Secret's data. */
export const SECRET_KEY_PATTERN = "^[-._a-zA-Z0-9]+$";

/** The name of a Secret in the LdapPair's namespace. */
export function SecretName(description = "Name of the Secret.") {
  return Type.String({ minLength: 1, maxLength: 253, pattern: DNS_SUBDOMAIN_PATTERN, description });
}

/** A key within a Secret; Kubernetes also refuses `.`, `..` and a leading `..`. */
export function SecretKey(defaultKey: string, description = "Key within the Secret.") {
  return Type.String({
    minLength: 1,
    maxLength: 253,
    pattern: SECRET_KEY_PATTERN,
    default: defaultKey,
    description,
    "x-kubernetes-validations": [
      {
        rule: "self != '.' && !self.startsWith('..')",
        message: "a Secret key cannot be '.' or start with '..'",
      },
    ],
  });
}

/** A reference to a key of a Secret in the LdapPair's namespace. */
export function SecretKeyRef(defaultKey: string, description: string) {
  return Type.Object({ name: SecretName(), key: SecretKey(defaultKey) }, { description });
}
