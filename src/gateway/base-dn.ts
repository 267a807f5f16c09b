// LDAP_BASE_DN and the realm's base_dn, from the site's internal domain, as
// the manager derives it: one dc= per label.
import { DNS_LABEL_PATTERN } from "../api/schema-kit.js";

export class DomainError extends Error {
  override name = "DomainError";
}

const LABEL = new RegExp(DNS_LABEL_PATTERN);

export function baseDnFromDomain(domain: string): string {
  // DNS names are case-insensitive and may be written fully qualified.
  const name = domain.trim().toLowerCase().replace(/\.$/, "");
  if (name === "") throw new DomainError("domain is empty: expected a name such as example.com");
  if (name.length > 253) throw new DomainError(`domain is longer than 253 characters`);
  return name
    .split(".")
    .map((label) => `dc=${checkLabel(label, domain)}`)
    .join(",");
}

function checkLabel(label: string, domain: string): string {
  if (label === "")
    throw new DomainError(`domain '${domain}' has an empty label (two dots in a row, or a leading dot)`);
  if (label.length > 63)
    throw new DomainError(`label '${label}' of domain '${domain}' is longer than 63 characters`);
  if (!LABEL.test(label)) {
    const bad = [...label].find((c) => !/[a-z0-9-]/.test(c));
    throw new DomainError(
      bad === undefined
        ? `label '${label}' of domain '${domain}' must not start or end with a hyphen`
        : `domain '${domain}' contains the invalid character '${bad}' (letters, digits, hyphens and dots only)`,
    );
  }
  return label;
}

/** The base DN of a pair: the explicit one, else derived from the domain. */
export function resolveBaseDn(spec: { baseDN?: string; domain?: string }): string {
  if (spec.baseDN) return spec.baseDN;
  if (spec.domain === undefined) throw new DomainError("set spec.domain or spec.baseDN");
  return baseDnFromDomain(spec.domain);
}
