import { describe, expect, it } from "vitest";
import { baseDnFromDomain, DomainError, resolveBaseDn } from "../../src/gateway/base-dn.js";

describe("baseDnFromDomain", () => {
  it.each([
    ["example.com", "dc=example,dc=com"],
    ["Example.COM", "dc=example,dc=com"],
    ["example.com.", "dc=example,dc=com"],
    ["site-a.corp.example.org", "dc=site-a,dc=corp,dc=example,dc=org"],
    ["localdomain", "dc=localdomain"],
    ["internal.", "dc=internal"],
    ["  example.com ", "dc=example,dc=com"],
    ["10.example", "dc=10,dc=example"],
  ])("%j -> %s", (domain, dn) => {
    expect(baseDnFromDomain(domain)).toBe(dn);
  });

  it.each([
    ["", /domain is empty/],
    [".", /domain is empty/],
    ["example..com", /'example\.\.com' has an empty label/],
    [".example.com", /has an empty label/],
    ["example.com..", /has an empty label/],
    ["exa_mple.com", /invalid character '_'/],
    ["example.com/x", /invalid character '\/'/],
    ["ex ample.com", /invalid character ' '/],
    ["-example.com", /must not start or end with a hyphen/],
    ["example-.com", /must not start or end with a hyphen/],
    [`${"a".repeat(64)}.com`, /longer than 63 characters/],
    [`${"a.".repeat(127)}com`, /longer than 253 characters/],
    ["dc=example,dc=com", /invalid character '='/],
  ])("%j is refused", (domain, message) => {
    expect(() => baseDnFromDomain(domain)).toThrow(DomainError);
    expect(() => baseDnFromDomain(domain)).toThrow(message);
  });

  it("prefers an explicit base DN", () => {
    expect(resolveBaseDn({ domain: "example.com", baseDN: "ou=people,dc=corp" })).toBe("ou=people,dc=corp");
    expect(resolveBaseDn({ domain: "example.com" })).toBe("dc=example,dc=com");
    expect(() => resolveBaseDn({})).toThrow(/spec.domain or spec.baseDN/);
  });
});
