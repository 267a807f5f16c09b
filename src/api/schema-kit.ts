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

/** A duration as Kubernetes writes them (metav1.Duration): "30s", "5m", "1h30m". */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$";
export function Duration(options: KubeOptions = {}): TString {
  return Type.String({ pattern: DURATION_PATTERN, maxLength: 32, ...options });
}

/** A DNS label (RFC 1123): what Proxmox accepts as a hostname or node name. */
export const DNS_LABEL_PATTERN = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/** A reference to a key of a Secret in the LdapPair's namespace. */
export function SecretKeyRef(defaultKey: string, description: string) {
  return Type.Object(
    {
      name: Type.String({ minLength: 1, maxLength: 253, description: "Name of the Secret." }),
      key: Type.String({
        minLength: 1,
        maxLength: 253,
        pattern: "^[-._a-zA-Z0-9]+$",
        default: defaultKey,
        description: "Key within the Secret.",
      }),
    },
    { description },
  );
}
