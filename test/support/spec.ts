// A minimal valid LdapPair spec, defaulted by the operator's own validation.
import type { LdapPairSpec } from "../../src/api/ldappair.js";
import { formatErrors, validateSpec } from "../../src/api/validate.js";

export const MINIMAL_SPEC = {
  domain: "example.com",
  image: "ghcr.io/mieweb/ldap-gateway:1.4.0",
  proxmox: { url: "https://pve.example.com:8006", node: "pve1", credentialsSecretRef: { name: "pve-token" } },
  database: { uriSecretRef: { name: "manager-db" } },
};

export function specWith(overrides: Record<string, unknown> = {}): LdapPairSpec {
  return defaulted({ ...structuredClone(MINIMAL_SPEC), ...overrides });
}

/** The spec as the operator's validation stores it; throws when it is invalid. */
export function defaulted(spec: unknown): LdapPairSpec {
  const result = validateSpec(spec);
  if (!result.ok) throw new Error(`invalid test spec: ${formatErrors(result.errors)}`);
  return result.value;
}
