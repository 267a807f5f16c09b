// Pure parts of the gateway stand-in: filter routing, hash checks, placeholders, env defaults.
import { describe, expect, it } from "vitest";
import { hashPassword } from "../testenv/password-hashes.js";
import { baseDnFromName, ConfigError, domainFromBaseDn, loadConfig } from "./config.js";
import { md5Crypt, verifyPassword } from "./crypt.js";
import { toPgPlaceholders } from "./directory.js";
import { routeFilter } from "./routing.js";

describe("routeFilter", () => {
  it.each([
    ["(uid=alice)", { kind: "oneUser", uid: "alice" }],
    [
      "(&(uid=alice)(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))",
      { kind: "oneUser", uid: "alice" },
    ],
    ["(uid=al*)", { kind: "none" }],
    ["(uid=*)", { kind: "allUsers" }],
    ["(mail=alice@example.com)", { kind: "none" }],
    ["(&(objectClass=posixAccount)(uidNumber=10001))", { kind: "allUsers" }],
    ["(&(memberUid=alice)(objectClass=posixGroup))", { kind: "groupsByMember", uid: "alice" }],
    ["(objectClass=posixGroup)", { kind: "allGroups" }],
    ["(|(objectclass=groupOfNames)(objectclass=group))", { kind: "allGroups" }],
    ["(uid=a\\2ab)", { kind: "oneUser", uid: "a*b" }],
  ])("%s", (filter, route) => {
    expect(routeFilter(filter)).toEqual(route);
  });
});

describe("verifyPassword", () => {
  it.each(["argon2id", "sha512crypt", "sha256crypt", "bcrypt"] as const)(
    "accepts %s hashes",
    async (kind) => {
      const hash = await hashPassword(kind, "pässword");
      expect(await verifyPassword("pässword", hash)).toBe(true);
      expect(await verifyPassword("password", hash)).toBe(false);
    },
  );

  it("accepts $2y$ bcrypt and $1$ md5-crypt", async () => {
    const b = (await hashPassword("bcrypt", "pw")).replace(/^\$2b\$/, "$2y$");
    expect(await verifyPassword("pw", b)).toBe(true);
    // `openssl passwd -1 -salt abcdefgh secret`
    expect(md5Crypt("secret", "$1$abcdefgh$")).toBe("$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1");
    expect(await verifyPassword("secret", "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1")).toBe(true);
  });

  it("refuses plain text, {SSHA}, empty and malformed values", async () => {
    expect(await verifyPassword("pw", "pw")).toBe(false);
    expect(await verifyPassword("pw", await hashPassword("ssha", "pw"))).toBe(false);
    expect(await verifyPassword("pw", null)).toBe(false);
    expect(await verifyPassword("pw", "$6$broken")).toBe(false);
    expect(await verifyPassword("pw", "$argon2id$nonsense")).toBe(false);
  });
});

describe("toPgPlaceholders", () => {
  it("numbers ? outside quotes", () => {
    expect(toPgPlaceholders(`SELECT '?' AS "a?b" FROM t WHERE x = ? AND y = ?`)).toBe(
      `SELECT '?' AS "a?b" FROM t WHERE x = $1 AND y = $2`,
    );
  });
});

describe("loadConfig", () => {
  const base = { DIRECTORY_BACKEND: "sql", AUTH_BACKENDS: "sql", SQL_URI: "postgres://u:p@127.0.0.1/db" };
  const queries = {
    SQL_QUERY_ALL_USERS: "a",
    SQL_QUERY_ONE_USER: "b",
    SQL_QUERY_ALL_GROUPS: "c",
    SQL_QUERY_GROUPS_BY_MEMBER: "d",
  };
  it("has the real gateway's defaults", () => {
    const c = loadConfig({ ...base, ...queries });
    expect(c).toMatchObject({
      commonName: "localhost",
      baseDn: "dc=localhost",
      port: 636,
      bindIp: "0.0.0.0",
      requireAuthForSearch: true,
      logLevel: "info",
      sqlSsl: undefined,
    });
    expect(loadConfig({ ...base, ...queries, LDAP_UNENCRYPTED: "true" }).port).toBe(389);
    expect(loadConfig({ ...base, ...queries, SQL_SSL: "0" }).sqlSsl).toBe(false);
    expect(loadConfig({ ...base, ...queries, REQUIRE_AUTH_FOR_SEARCH: "no" }).requireAuthForSearch).toBe(
      true,
    );
  });

  it("refuses missing required variables and notification without URL", () => {
    expect(() => loadConfig({ ...queries })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base })).toThrow(/SQL_QUERY_ALL_USERS/);
    expect(() => loadConfig({ ...base, ...queries, AUTH_BACKENDS: "sql,notification" })).toThrow(
      /NOTIFICATION_URL/,
    );
  });

  it("derives DNs and domains", () => {
    expect(baseDnFromName("ldap.example.com")).toBe("dc=ldap,dc=example,dc=com");
    expect(domainFromBaseDn("ou=people, dc=example,dc=com")).toBe("example.com");
  });
});
