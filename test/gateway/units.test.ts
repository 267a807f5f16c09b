// Pure parts of the gateway stand-in: search routing, hash checks, placeholders, configuration,
// the .env file, start-up pacing and the launch command.
import { describe, expect, it } from "vitest";
import { hashPassword } from "../testenv/password-hashes.js";
import {
  ConfigError,
  domainFromBaseDn,
  loadConfig,
  MISSING_SQL_URI_MESSAGE,
  needsInteractiveSetup,
  sqlSslSetting,
} from "./config.js";
import { verifyPassword } from "./crypt.js";
import { toPgPlaceholders } from "./directory.js";
import { parseDotEnv } from "./dotenv.js";
import { parseGatewayCommand, parseStartupScale } from "./launch.js";
import { groupWanted, routeSearch, type Route } from "./routing.js";
import { rootDseAttributes, selectAttributes } from "./search.js";
import { startupDelayMs, startupScale } from "./startup.js";

describe("routeSearch: users", () => {
  it.each<[string, string[], Route]>([
    ["(uid=alice)", [], { kind: "oneUser", uid: "alice" }],
    [
      "(&(uid=alice)(objectclass=posixAccount)(uid=*)(&(uidNumber=*)(!(uidNumber=0))))",
      [],
      { kind: "oneUser", uid: "alice" },
    ],
    ["(uid=al*)", [], { kind: "none" }],
    ["(uid=*)", [], { kind: "allUsers" }],
    ["(mail=alice@example.com)", [], { kind: "none" }],
    ["(&(objectClass=posixAccount)(uidNumber=10001))", [], { kind: "allUsers" }],
    ["(uid=a\\2ab)", [], { kind: "oneUser", uid: "a*b" }],
    // User rules come before the attribute rules.
    ["(uid=alice)", ["gidNumber"], { kind: "oneUser", uid: "alice" }],
    ["(objectClass=posixAccount)", ["cn"], { kind: "allUsers" }],
  ])("%s asking for %j", (filter, attributes, route) => {
    expect(routeSearch(filter, attributes)).toEqual(route);
  });
});

describe("routeSearch: group searches filter by cn= and gidNumber=", () => {
  it.each<[string, string[], Route]>([
    ["(&(memberUid=alice)(objectClass=posixGroup))", [], { kind: "groups", member: "alice" }],
    // SSSD's initgroups
    [
      "(&(memberuid=alice)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))",
      [],
      { kind: "groups", member: "alice" },
    ],
    ["(objectClass=posixGroup)", [], { kind: "groups" }],
    ["(|(objectclass=groupOfNames)(objectclass=group))", [], { kind: "groups" }],
    ["(cn=devs)", [], { kind: "groups", cn: "devs" }],
    ["(&(objectClass=posixGroup)(cn=devs))", [], { kind: "groups", cn: "devs" }],
    ["(gidNumber=2002)", [], { kind: "groups", gidNumber: "2002" }],
    // SSSD's getgrnam and getgrgid
    [
      "(&(cn=devs)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))",
      [],
      { kind: "groups", cn: "devs" },
    ],
    [
      "(&(gidNumber=2002)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))",
      [],
      { kind: "groups", gidNumber: "2002" },
    ],
  ])("%s", (filter, attributes, route) => {
    expect(routeSearch(filter, attributes)).toEqual(route);
  });

  it("keeps a group whose cn and gidNumber match the route, and every group when the route names neither", () => {
    expect(groupWanted({ kind: "groups", cn: "devs" }, "devs", "2002")).toBe(true);
    expect(groupWanted({ kind: "groups", cn: "devs" }, "ldapusers", "2001")).toBe(false);
    expect(groupWanted({ kind: "groups", gidNumber: "2002" }, "devs", "2002")).toBe(true);
    expect(groupWanted({ kind: "groups", gidNumber: "2002" }, "sysadmins", "2000")).toBe(false);
    expect(groupWanted({ kind: "groups", cn: "devs", gidNumber: "2000" }, "devs", "2002")).toBe(false);
    expect(groupWanted({ kind: "groups" }, "sysadmins", "2000")).toBe(true);
  });
});

describe("routeSearch: the requested attributes route to groups", () => {
  it.each<[string, string[], Route]>([
    ["(mail=x)", ["gidNumber"], { kind: "groups" }],
    ["(mail=x)", ["memberUid"], { kind: "groups" }],
    ["(objectClass=*)", ["cn"], { kind: "groups" }],
    // Only `cn` alone means groups.
    ["(objectClass=*)", ["cn", "mail"], { kind: "mixed" }],
    ["(mail=x)", ["mail"], { kind: "none" }],
  ])("%s asking for %j", (filter, attributes, route) => {
    expect(routeSearch(filter, attributes)).toEqual(route);
  });
});

describe("routeSearch: mixed searches list every user, then every group", () => {
  it.each(["(objectClass=*)", "(objectclass=*)", "(objectClass=top)", ""])("%j", (filter) => {
    expect(routeSearch(filter, [])).toEqual({ kind: "mixed" });
  });
});

describe("root DSE", () => {
  const cfg = loadConfig({
    DIRECTORY_BACKEND: "sql",
    AUTH_BACKENDS: "sql",
    LDAP_BASE_DN: "dc=example,dc=com",
    SQL_URI: "postgres://u:p@127.0.0.1/db",
    SQL_QUERY_ALL_USERS: "a",
    SQL_QUERY_ONE_USER: "b",
    SQL_QUERY_ALL_GROUPS: "c",
    SQL_QUERY_GROUPS_BY_MEMBER: "d",
  });

  it("has objectClass top, namingContexts and supportedLDAPVersion, and no defaultNamingContext (main)", () => {
    expect(rootDseAttributes(cfg)).toEqual({
      objectClass: ["top"],
      namingContexts: ["dc=example,dc=com"],
      supportedLDAPVersion: ["3"],
    });
  });

  it("sends the requested attributes, compared without case, or all of them", () => {
    const all = rootDseAttributes(cfg);
    expect(selectAttributes(all, ["namingContexts"])).toEqual([["namingContexts", ["dc=example,dc=com"]]]);
    expect(selectAttributes(all, ["namingcontexts", "defaultNamingContext"])).toHaveLength(1);
    expect(selectAttributes(all, [])).toHaveLength(3);
    expect(selectAttributes(all, ["+"])).toHaveLength(3);
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

  it("accepts bcrypt $2a$ and $2b$", async () => {
    const b = await hashPassword("bcrypt", "pw");
    expect(await verifyPassword("pw", b.replace(/^\$2[aby]\$/, "$2a$"))).toBe(true);
    expect(await verifyPassword("pw", b.replace(/^\$2[aby]\$/, "$2b$"))).toBe(true);
  });

  it("refuses $2y$ bcrypt and $1$ md5-crypt hashes even when the password matches", async () => {
    const b = (await hashPassword("bcrypt", "pw")).replace(/^\$2[ab]\$/, "$2y$");
    expect(await verifyPassword("pw", b)).toBe(false);
    // `openssl passwd -1 -salt abcdefgh secret`
    expect(await verifyPassword("secret", "$1$abcdefgh$cHJi5PXp/ki/ktXzqlk6I1")).toBe(false);
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

describe("configuration", () => {
  const base = {
    DIRECTORY_BACKEND: "sql",
    AUTH_BACKENDS: "sql",
    LDAP_BASE_DN: "dc=example,dc=com",
    SQL_URI: "postgres://u:p@127.0.0.1/db",
  };
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
      domain: "example.com",
      port: 636,
      bindIp: "0.0.0.0",
      requireAuthForSearch: true,
      logLevel: "info",
      sqlSsl: undefined,
    });
    expect(loadConfig({ ...base, ...queries, LDAP_UNENCRYPTED: "true" }).port).toBe(389);
    expect(loadConfig({ ...base, ...queries, REQUIRE_AUTH_FOR_SEARCH: "no" }).requireAuthForSearch).toBe(
      true,
    );
  });

  it.each<[string | undefined, boolean | undefined]>([
    ["false", false],
    ["0", true],
    ["FALSE", true],
    ["true", true],
    ["", undefined],
    [undefined, undefined],
  ])("SQL_SSL=%j only honours the exact value false (database TLS: %j)", (raw, ssl) => {
    expect(sqlSslSetting(raw)).toBe(ssl);
  });

  it.each<[Record<string, string>, boolean, boolean]>([
    [{ ...base }, false, false],
    [{ ...base, LDAP_BASE_DN: "" }, false, true],
    [{ DIRECTORY_BACKEND: "sql", AUTH_BACKENDS: "sql" }, false, true],
    [{ LDAP_BASE_DN: "dc=x", AUTH_BACKENDS: "sql" }, false, true],
    [{ LDAP_BASE_DN: "dc=x", DIRECTORY_BACKEND: "sql" }, false, true],
    [{}, false, true],
    // A .env keeps it from the setup, whatever it holds.
    [{}, true, false],
  ])("starts the interactive setup for %j with .env=%j: %j", (env, hasDotEnv, setup) => {
    expect(needsInteractiveSetup(env, hasDotEnv)).toBe(setup);
  });

  it("says only Node's unhelpful url message when SQL_URI is missing", () => {
    const env: Record<string, string> = { ...base, ...queries };
    delete env.SQL_URI;
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(MISSING_SQL_URI_MESSAGE);
    expect(MISSING_SQL_URI_MESSAGE).toContain('The "url" argument must be of type string');
    expect(MISSING_SQL_URI_MESSAGE).not.toContain("SQL_URI");
  });

  it("refuses missing queries and notification without URL", () => {
    expect(() => loadConfig({ ...base })).toThrow(/SQL_QUERY_ALL_USERS/);
    expect(() => loadConfig({ ...base, ...queries, AUTH_BACKENDS: "sql,notification" })).toThrow(
      /NOTIFICATION_URL/,
    );
  });

  it("derives the mail domain from the base DN", () => {
    expect(domainFromBaseDn("ou=people, dc=example,dc=com")).toBe("example.com");
  });
});

describe("parseDotEnv", () => {
  it("reads KEY=value lines with comments, export prefixes and quotes", () => {
    expect(
      parseDotEnv(
        [
          "# generated",
          "",
          "LDAP_BASE_DN=dc=example,dc=com",
          "export AUTH_BACKENDS=sql",
          `SQL_QUERY_ONE_USER="SELECT * FROM u WHERE a = '?'"`,
          "LOG_LEVEL=debug # trailing comment",
          "not a line",
        ].join("\n"),
      ),
    ).toEqual({
      LDAP_BASE_DN: "dc=example,dc=com",
      AUTH_BACKENDS: "sql",
      SQL_QUERY_ONE_USER: "SELECT * FROM u WHERE a = '?'",
      LOG_LEVEL: "debug",
    });
  });
});

describe("start-up time", () => {
  it.each<[boolean, number, number, number]>([
    // [certificate made, ms already spent, scale, ms still to wait]
    [false, 300, 1, 700],
    [true, 300, 1, 2200],
    [false, 1200, 1, 0],
    [true, 300, 0.1, 0],
    [true, 100, 0.1, 150],
    [true, 300, 0, 0],
  ])("certificate made=%j, %j ms spent, scale %j: waits %j ms", (made, spent, scale, wait) => {
    expect(startupDelayMs(made, spent, scale)).toBe(wait);
  });

  it.each<[string[], number]>([
    [[], 1],
    [["--startup-scale=0"], 0],
    [["--startup-scale", "0.25"], 0.25],
    [["--reconfig", "--startup-scale=2"], 2],
    // An appended flag wins over one already in a catalog command.
    [["--startup-scale=1", "--startup-scale=0.1"], 0.1],
  ])("argv %j gives scale %j", (argv, scale) => {
    expect(startupScale(argv)).toBe(scale);
  });

  it.each([["--startup-scale=-1"], ["--startup-scale=fast"], ["--startup-scale"], ["--startup-scale="]])(
    "refuses %j",
    (arg) => {
      expect(() => startupScale([arg])).toThrow(ConfigError);
    },
  );

  it("reads a scale from an environment variable", () => {
    expect(parseStartupScale("X", undefined)).toBeUndefined();
    expect(parseStartupScale("X", "0.5")).toBe(0.5);
    expect(() => parseStartupScale("X", "-2")).toThrow(/X must be a number >= 0/);
  });
});

describe("PVE_SIM_GATEWAY_COMMAND", () => {
  it("is an argv in JSON, unset when empty", () => {
    expect(parseGatewayCommand(undefined)).toBeUndefined();
    expect(parseGatewayCommand(" ")).toBeUndefined();
    expect(parseGatewayCommand('["node","/src/LDAPServer/server/index.js"]')).toEqual([
      "node",
      "/src/LDAPServer/server/index.js",
    ]);
  });

  it.each(["node index.js", '"node"', "[]", '["node", 1]', '["node", ""]', "{}"])("refuses %j", (raw) => {
    expect(() => parseGatewayCommand(raw)).toThrow(/PVE_SIM_GATEWAY_COMMAND/);
  });
});
