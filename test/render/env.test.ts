import { describe, expect, it } from "vitest";
import {
  decodeProxmoxEnv,
  encodeProxmoxEnv,
  EnvValueError,
  gatewaySecrets,
  renderGatewayEnv,
} from "../../src/gateway/env.js";
import { renderQueries } from "../../src/gateway/queries.js";
import { secretOf, secretsWithUri } from "../support/secrets.js";
import { specWith } from "../support/spec.js";

const SQL_URI = "postgres://manager:s3cr3t-Pa55@db.example.com:5432/manager";
const secrets = secretsWithUri(SQL_URI);

describe("renderGatewayEnv", () => {
  it("is the seed's table, in its order, without notifications and group members", () => {
    const env = renderGatewayEnv(specWith({ groupMembers: false }), "ldap1", secrets);
    expect(env).toEqual([
      ["DIRECTORY_BACKEND", "sql"],
      ["LDAP_COMMON_NAME", "ldap1"],
      ["LDAP_BASE_DN", "dc=example,dc=com"],
      ["AUTH_BACKENDS", "sql"],
      ["SQL_URI", SQL_URI],
      ["SQL_QUERY_ALL_USERS", renderQueries().SQL_QUERY_ALL_USERS],
      ["SQL_QUERY_ONE_USER", renderQueries().SQL_QUERY_ONE_USER],
      ["SQL_QUERY_ALL_GROUPS", renderQueries().SQL_QUERY_ALL_GROUPS],
      ["SQL_QUERY_GROUPS_BY_MEMBER", renderQueries().SQL_QUERY_GROUPS_BY_MEMBER],
      ["REQUIRE_AUTH_FOR_SEARCH", "false"],
    ]);
  });

  it("gives groups their members by default: only SQL_QUERY_ALL_GROUPS differs from the seed's", () => {
    const seed = new Map(renderGatewayEnv(specWith({ groupMembers: false }), "ldap1", secrets));
    const env = new Map(renderGatewayEnv(specWith(), "ldap1", secrets));
    expect([...env.keys()]).toEqual([...seed.keys()]);
    const differing = [...env].filter(([name, value]) => seed.get(name) !== value).map(([name]) => name);
    expect(differing).toEqual(["SQL_QUERY_ALL_GROUPS"]);
    expect(env.get("SQL_QUERY_ALL_GROUPS")).toBe(
      renderQueries({ groupMembers: { baseDn: "dc=example,dc=com" } }).SQL_QUERY_ALL_GROUPS,
    );
    expect(env.get("SQL_QUERY_ALL_GROUPS")).toContain(`',' || 'dc=example,dc=com'`);
  });

  it("puts the explicit base DN into the members' DNs", () => {
    const env = new Map(renderGatewayEnv(specWith({ baseDN: "dc=ldap,dc=internal" }), "ldap1", secrets));
    expect(env.get("SQL_QUERY_ALL_GROUPS")).toContain(`',' || 'dc=ldap,dc=internal'`);
  });

  it("adds the notification backend and its URL when push notifications are on", () => {
    const spec = specWith({ notifications: { url: "https://push.example.com/send-notification" } });
    const env = new Map(renderGatewayEnv(spec, "ldap2", secrets));
    expect(env.get("AUTH_BACKENDS")).toBe("sql,notification");
    expect(env.get("NOTIFICATION_URL")).toBe("https://push.example.com/send-notification");
    expect([...env.keys()].indexOf("NOTIFICATION_URL")).toBe([...env.keys()].indexOf("AUTH_BACKENDS") + 1);
  });

  it.each([
    [{}, "dc=example,dc=com", "false"],
    [{ domain: "Corp.Example.org." }, "dc=corp,dc=example,dc=org", "false"],
    [{ baseDN: "dc=ldap,dc=internal" }, "dc=ldap,dc=internal", "false"],
    [{ requireAuthForSearch: true }, "dc=example,dc=com", "true"],
  ])("spec %j -> base DN %s, REQUIRE_AUTH_FOR_SEARCH=%s", (overrides, dn, auth) => {
    const env = new Map(renderGatewayEnv(specWith(overrides), "ldap1", secrets));
    expect(env.get("LDAP_BASE_DN")).toBe(dn);
    expect(env.get("REQUIRE_AUTH_FOR_SEARCH")).toBe(auth);
  });

  it("differs between the two servers only in LDAP_COMMON_NAME", () => {
    const spec = specWith({
      notifications: { url: "https://push.example.com/x" },
      extraEnv: [{ name: "LOG_LEVEL", value: "debug" }],
    });
    const one = renderGatewayEnv(spec, "ldap1", secrets);
    const two = renderGatewayEnv(spec, "ldap2", secrets);
    const differing = one.filter(([name, value], i) => two[i]?.[0] !== name || two[i]?.[1] !== value);
    expect(differing).toEqual([["LDAP_COMMON_NAME", "ldap1"]]);
    expect(two.length).toBe(one.length);
  });

  it("appends extra variables after the operator's, in spec order", () => {
    const spec = specWith({
      extraEnv: [
        { name: "SQL_SSL", value: "false" },
        { name: "LOG_LEVEL", value: "debug" },
      ],
    });
    expect(renderGatewayEnv(spec, "ldap1", secrets).slice(-2)).toEqual([
      ["SQL_SSL", "false"],
      ["LOG_LEVEL", "debug"],
    ]);
  });
});

describe("gatewaySecrets", () => {
  it.each([
    ["newline", "\n"],
    ["CR LF", "\r\n"],
  ])("reads a URI Secret made from a file (trailing %s) into an env Proxmox accepts", (_what, end) => {
    const spec = specWith({ database: { uriSecretRef: { name: "manager-db", key: "sql-uri" } } });
    const secrets = gatewaySecrets(spec, secretOf({ "sql-uri": `${SQL_URI}${end}` }));
    const env = renderGatewayEnv(spec, "ldap1", secrets);
    expect(new Map(env).get("SQL_URI")).toBe(SQL_URI);
    expect(() => encodeProxmoxEnv(env)).not.toThrow();
  });

  it("reads the key that spec.database.uriSecretRef names", () => {
    const spec = specWith({ database: { uriSecretRef: { name: "manager-db", key: "sql-uri" } } });
    expect(() => gatewaySecrets(spec, secretOf({ uri: SQL_URI }))).toThrow(/key "sql-uri" of Secret/);
  });
});

describe("encodeProxmoxEnv", () => {
  it("joins NAME=value pairs with NUL and round-trips", () => {
    const env = renderGatewayEnv(specWith(), "ldap1", secrets);
    const encoded = encodeProxmoxEnv(env);
    expect(encoded.split("\0")).toHaveLength(env.length);
    expect(encoded.startsWith("DIRECTORY_BACKEND=sql\0LDAP_COMMON_NAME=ldap1\0")).toBe(true);
    expect(decodeProxmoxEnv(encoded)).toEqual(env);
  });

  it("keeps tabs and equals signs in values", () => {
    expect(encodeProxmoxEnv([["A", "x\ty=z"]])).toBe("A=x\ty=z");
    expect(decodeProxmoxEnv("A=x\ty=z")).toEqual([["A", "x\ty=z"]]);
  });

  it.each([
    ["a newline", "line1\nline2", /contains a newline/],
    ["a carriage return", "a\rb", /contains a carriage return/],
    ["NUL", "a\0b", /control character U\+0000/],
    ["escape", "a\u001bb", /control character U\+001B/],
    ["DEL", "a\u007fb", /control character U\+007F/],
  ])("refuses %s, naming the variable and never the value", (_what, value, message) => {
    const secret = `postgres://u:${value}@db/x`;
    let error: unknown;
    try {
      encodeProxmoxEnv([
        ["DIRECTORY_BACKEND", "sql"],
        ["SQL_URI", secret],
      ]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EnvValueError);
    const err = error as EnvValueError;
    expect(err.variable).toBe("SQL_URI");
    expect(err.message).toMatch(/^environment variable SQL_URI /);
    expect(err.message).toMatch(message);
    expect(err.message).not.toContain("postgres");
    expect(err.message).not.toContain(value);
    expect(JSON.stringify(err)).not.toContain("postgres");
  });

  it.each([["1ABC"], ["A-B"], ["A=B"], [""], ["A B"]])("refuses the variable name %j", (name) => {
    expect(() => encodeProxmoxEnv([[name, "v"]])).toThrow(/has an invalid name/);
  });
});
