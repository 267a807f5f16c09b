// The gateway stand-in against the real PostgreSQL: the contract of
// shared/reference/ldap-gateway.md, quirks included.
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import tls from "node:tls";
import { InvalidCredentialsError, InsufficientAccessError } from "ldapts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { queriesWithMembers } from "../testenv/management-schema.js";
import { freePort } from "../testenv/ports.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";
import { gatewayBundle } from "./bundle.js";
import { spawnGateway, startGateway, waitForTls, type RunningGateway, type SpawnOptions } from "./harness.js";
import { certFiles } from "./tls.js";
import { ldapClient, ldapsearch } from "./ldap-tools.js";

let db: TestPostgres;
const running: RunningGateway[] = [];
const dirs: string[] = [];

function seedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    DIRECTORY_BACKEND: "sql",
    AUTH_BACKENDS: "sql",
    LDAP_COMMON_NAME: "ldap1",
    LDAP_BASE_DN: db.seed.baseDn,
    SQL_URI: db.url,
    REQUIRE_AUTH_FOR_SEARCH: "false",
    BIND_IP: "127.0.0.1",
    ...db.seed.queries,
    ...extra,
  };
}

async function gateway(extra: Record<string, string> = {}): Promise<RunningGateway> {
  const gw = await startGateway(seedEnv({ PORT: String(await freePort()), ...extra }));
  running.push(gw);
  return gw;
}

beforeAll(async () => {
  // Build the bundle while the database starts.
  [db] = await Promise.all([startPostgres(), gatewayBundle()]);
}, 120_000);

afterAll(async () => {
  await Promise.all(running.map((g) => g.kill()));
  await db?.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const user = (uid: string) => db.seed.users.find((u) => u.uid === uid)!;
const dnOf = (uid: string) => `uid=${uid},${db.seed.baseDn}`;

/** A spawned gateway whose output is collected, for the tests of how it starts (or does not). */
async function spawnWatched(env: Record<string, string>, opts: SpawnOptions = {}) {
  const proc = await spawnGateway(env, opts);
  let out = "";
  proc.stdout?.on("data", (b: Buffer) => (out += b.toString()));
  proc.stderr?.on("data", (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((r) => proc.once("exit", r));
  return { proc, exited, output: () => out };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await sleep(20);
  }
}

async function servedCert(host: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, rejectUnauthorized: false }, () => {
      resolve(new X509Certificate(s.getPeerCertificate(true).raw));
      s.end();
    });
    s.on("error", reject);
  });
}

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "gateway-test-"));
  dirs.push(dir);
  return dir;
}

describe("configuration through the environment", () => {
  it.each(["LDAP_BASE_DN", "DIRECTORY_BACKEND", "AUTH_BACKENDS"])(
    "starts the interactive setup without %s and no .env: prints a prompt, hangs while stdin is open, exits 0 once it closes",
    async (name) => {
      const port = await freePort();
      const env = seedEnv({ PORT: String(port) });
      delete env[name];
      const gw = await spawnWatched(env);
      await until(() => /Server hostname \[[^\]]*\]: $/.test(gw.output()), 10_000);
      await sleep(1000);
      expect(gw.proc.exitCode).toBeNull();
      // A prompt instead of a listener.
      await expect(waitForTls("127.0.0.1", port, 200)).rejects.toThrow(/no LDAPS listener/);
      gw.proc.stdin!.end();
      expect(await gw.exited).toBe(0);
    },
  );

  it("reads the variables from a .env in its working directory", async () => {
    const cwd = tempDir();
    writeFileSync(
      path.join(cwd, ".env"),
      `# as the setup writes it\nLDAP_BASE_DN=${db.seed.baseDn}\nDIRECTORY_BACKEND=sql\nAUTH_BACKENDS=sql\n`,
    );
    const env = seedEnv({ PORT: String(await freePort()) });
    for (const name of ["LDAP_BASE_DN", "DIRECTORY_BACKEND", "AUTH_BACKENDS"]) delete env[name];
    const gw = await startGateway(env, { cwd });
    running.push(gw);
    const c = ldapClient(gw.url);
    expect((await c.search(db.seed.baseDn, { filter: "(uid=alice)" })).searchEntries).toHaveLength(1);
    await c.unbind();
  });

  it("exits 1 without SQL_URI, with the real gateway's message that does not name the variable", async () => {
    const env = seedEnv({ PORT: String(await freePort()) });
    delete env.SQL_URI;
    const gw = await spawnWatched(env);
    expect(await gw.exited).toBe(1);
    expect(gw.output()).toContain('The "url" argument must be of type string');
    expect(gw.output()).not.toContain("SQL_URI");
  });

  it("exits 1 naming a missing query variable (the stand-in requires all four)", async () => {
    const env = seedEnv({ PORT: String(await freePort()) });
    delete env.SQL_QUERY_ALL_USERS;
    const gw = await spawnWatched(env);
    expect(await gw.exited).toBe(1);
    expect(gw.output()).toContain("SQL_QUERY_ALL_USERS");
  });

  it("defaults to port 636 with a self-signed cert for LDAP_COMMON_NAME", async () => {
    const gw = await startGateway(seedEnv({ LDAP_COMMON_NAME: "ldap.example.org", BIND_IP: "127.14.0.2" }));
    running.push(gw);
    expect(gw.port).toBe(636);
    const cert = await servedCert("127.14.0.2", 636);
    expect(cert.subject).toBe("CN=ldap.example.org");
    expect(cert.subjectAltName).toBe("DNS:ldap.example.org");
    expect(cert.issuer).toBe(cert.subject);
    const c = ldapClient("ldaps://127.14.0.2:636");
    const dse = await c.search("", { scope: "base", attributes: ["namingContexts"] });
    expect(dse.searchEntries[0]?.namingContexts).toBe(db.seed.baseDn);
    await c.unbind();
  });

  it("turns database TLS off only for SQL_SSL=false, not for SQL_SSL=0", async () => {
    // The test database has no TLS: with TLS on, every query fails and searches come back empty.
    const off = await gateway({ SQL_SSL: "false" });
    const zero = await gateway({ SQL_SSL: "0" });
    const found = async (gw: RunningGateway): Promise<number> => {
      const c = ldapClient(gw.url);
      const n = (await c.search(db.seed.baseDn, { filter: "(uid=alice)" })).searchEntries.length;
      await c.unbind();
      return n;
    };
    expect(await found(off)).toBe(1);
    expect(await found(zero)).toBe(0);
  });
});

describe("start-up and certificate", () => {
  it("keeps its self-signed certificate in ./cert of its working directory and reuses it on the next start", async () => {
    const cwd = tempDir();
    const env = seedEnv({ PORT: String(await freePort()) });
    const first = await startGateway(env, { cwd });
    const files = certFiles(cwd);
    const kept = new X509Certificate(readFileSync(files.cert));
    expect((await servedCert("127.0.0.1", first.port)).fingerprint256).toBe(kept.fingerprint256);
    expect(readFileSync(files.key, "utf8")).toContain("PRIVATE KEY");
    await first.kill();
    const second = await startGateway(env, { cwd });
    running.push(second);
    expect((await servedCert("127.0.0.1", second.port)).fingerprint256).toBe(kept.fingerprint256);
    // Another working directory (another container) makes its own.
    const other = await gateway();
    expect((await servedCert("127.0.0.1", other.port)).fingerprint256).not.toBe(kept.fingerprint256);
  });

  it(
    "answers LDAPS 2-3 s after a first start that makes the certificate and about 1 s after a later start, unless scaled down",
    { timeout: 60_000 },
    async () => {
      const cwd = tempDir();
      const env = seedEnv({ PORT: String(await freePort()) });
      const first = await startGateway(env, { cwd, startupScale: 1 });
      await first.kill();
      const later = await startGateway(env, { cwd, startupScale: 1 });
      await later.kill();
      const scaled = await startGateway(env, { cwd: tempDir(), startupScale: 0.2 });
      await scaled.kill();
      console.log(
        `first LDAPS answer: ${first.startMs} ms (certificate made), ${later.startMs} ms (kept), ` +
          `${scaled.startMs} ms (made, scale 0.2); real gateway: 1.7-3.4 s and 0.8-1.3 s`,
      );
      // Lower bounds: the pacing; upper bounds leave room for a loaded machine.
      expect(first.startMs).toBeGreaterThanOrEqual(2400);
      expect(first.startMs).toBeLessThan(5000);
      expect(later.startMs).toBeGreaterThanOrEqual(950);
      expect(later.startMs).toBeLessThan(2500);
      expect(scaled.startMs).toBeLessThan(2400);
    },
  );
});

describe("directory contract with the seed's queries", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  it("answers ldapsearch over LDAPS with the database's users", async () => {
    const r = await ldapsearch(gw.url, ["-b", db.seed.baseDn, "(objectClass=posixAccount)", "uid"]);
    expect(r.code).toBe(0);
    expect(r.dns.sort()).toEqual(db.seed.users.map((u) => dnOf(u.uid)).sort());
  });

  it("returns the root DSE of main: objectClass top, namingContexts, supportedLDAPVersion, no defaultNamingContext", async () => {
    const c = ldapClient(gw.url);
    const { searchEntries } = await c.search("", { scope: "base" });
    expect(searchEntries).toEqual([
      { dn: "", objectClass: "top", namingContexts: db.seed.baseDn, supportedLDAPVersion: "3" },
    ]);
    await c.unbind();
  });

  it("sends a search under another base DN to the root-DSE handler: scope base gives the root DSE, other scopes nothing", async () => {
    const c = ldapClient(gw.url);
    const base = await c.search("ou=nowhere,dc=other", { scope: "base", filter: "(uid=bob)" });
    expect(base.searchEntries).toEqual([
      { dn: "", objectClass: "top", namingContexts: db.seed.baseDn, supportedLDAPVersion: "3" },
    ]);
    for (const scope of ["one", "sub"] as const) {
      expect((await c.search("ou=nowhere,dc=other", { scope, filter: "(uid=bob)" })).searchEntries).toEqual(
        [],
      );
      expect((await c.search("", { scope, filter: "(objectClass=*)" })).searchEntries).toEqual([]);
    }
    await c.unbind();
  });

  it("lists all users, then all groups, for (objectClass=*), (objectClass=top), an empty filter and a base-scope read of an entry's DN", async () => {
    const users = db.seed.users.map((u) => dnOf(u.uid)).sort();
    const groups = db.seed.groups.map((g) => `cn=${g.cn},${db.seed.baseDn}`).sort();
    const usersThenGroups = (dns: string[]): void => {
      expect(dns.slice(0, users.length).sort()).toEqual(users);
      expect(dns.slice(users.length).sort()).toEqual(groups);
    };
    const c = ldapClient(gw.url);
    for (const filter of ["(objectClass=*)", "(objectClass=top)"]) {
      usersThenGroups((await c.search(db.seed.baseDn, { filter })).searchEntries.map((e) => e.dn));
    }
    const read = await c.search(dnOf("alice"), { scope: "base" });
    usersThenGroups(read.searchEntries.map((e) => e.dn));
    await c.unbind();
    // OpenLDAP's client sends an empty filter string as (objectclass=*).
    const empty = await ldapsearch(gw.url, ["-b", db.seed.baseDn, ""]);
    expect(empty.code).toBe(0);
    usersThenGroups(empty.dns);
  });

  it("filters group searches by cn= and gidNumber=, so that SSSD's getgrnam and getgrgid get the one group", async () => {
    const c = ldapClient(gw.url);
    const cns = async (filter: string, attributes?: string[]): Promise<string[]> =>
      (await c.search(db.seed.baseDn, { filter, ...(attributes ? { attributes } : {}) })).searchEntries.map(
        (e) => String(e.cn),
      );
    expect(await cns("(cn=devs)")).toEqual(["devs"]);
    expect(await cns("(&(objectClass=posixGroup)(cn=devs))")).toEqual(["devs"]);
    expect(await cns("(gidNumber=2001)")).toEqual(["ldapusers"]);
    const sssd = ["cn", "gidNumber", "memberUid", "objectClass"];
    expect(
      await cns("(&(cn=devs)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))", sssd),
    ).toEqual(["devs"]);
    expect(
      await cns("(&(gidNumber=2000)(objectClass=posixGroup)(cn=*)(&(gidNumber=*)(!(gidNumber=0))))", sssd),
    ).toEqual(["sysadmins"]);
    expect(await cns("(cn=nosuchgroup)")).toEqual([]);
    await c.unbind();
  });

  it("routes by the requested attributes: only cn, or gidNumber or memberUid, means groups", async () => {
    const c = ldapClient(gw.url);
    const dns = async (filter: string, attributes: string[]): Promise<string[]> =>
      (await c.search(db.seed.baseDn, { filter, attributes })).searchEntries.map((e) => e.dn).sort();
    const groups = db.seed.groups.map((g) => `cn=${g.cn},${db.seed.baseDn}`).sort();
    expect(await dns("(mail=alice@example.com)", ["gidNumber"])).toEqual(groups);
    expect(await dns("(mail=alice@example.com)", ["memberUid"])).toEqual(groups);
    expect(await dns("(objectClass=*)", ["cn"])).toEqual(groups);
    // User filters come first.
    expect(await dns("(uid=alice)", ["gidNumber"])).toEqual([dnOf("alice")]);
    await c.unbind();
  });

  it("finds one user by (uid=x) with the flat layout, object classes and defaults", async () => {
    const c = ldapClient(gw.url);
    const { searchEntries } = await c.search(db.seed.baseDn, { filter: "(uid=alice)" });
    const a = user("alice");
    expect(searchEntries).toEqual([
      {
        dn: dnOf("alice"),
        objectClass: ["top", "posixAccount", "inetOrgPerson"],
        uid: "alice",
        uidNumber: String(a.uidNumber),
        gidNumber: "2001",
        cn: a.cn,
        mail: a.mail,
        homeDirectory: "/home/alice",
        loginShell: "/bin/bash",
        givenName: "Alice",
        sn: "Liddell",
        gecos: a.cn,
      },
    ]);
    await c.unbind();
  });

  it("fills defaults for mail, home directory and cn when the row lacks them", async () => {
    await db.query(`UPDATE "Users" SET "mail" = NULL, "homeDirectory" = '', "cn" = '' WHERE "uid" = 'carol'`);
    try {
      const c = ldapClient(gw.url);
      const { searchEntries } = await c.search(db.seed.baseDn, { filter: "(uid=carol)" });
      expect(searchEntries[0]).toMatchObject({
        mail: "carol@example.com",
        homeDirectory: "/home/carol",
        cn: "Carol Danvers",
      });
      await c.unbind();
    } finally {
      await db.query(
        `UPDATE "Users" SET "mail" = 'carol@example.com', "homeDirectory" = '/home/carol', "cn" = 'Carol Danvers' WHERE "uid" = 'carol'`,
      );
    }
  });

  it("routes by the filter's text instead of evaluating it", async () => {
    const c = ldapClient(gw.url);
    const dns = async (filter: string): Promise<string[]> =>
      (await c.search(db.seed.baseDn, { filter })).searchEntries.map((e) => e.dn);
    expect(await dns("(uid=al*)")).toEqual([]);
    expect(await dns("(mail=alice@example.com)")).toEqual([]);
    // A lookup by uid number returns every user.
    expect(await dns("(&(objectClass=posixAccount)(uidNumber=2001))")).toHaveLength(db.seed.users.length);
    // Base and scope are ignored under the base DN.
    expect(
      (await c.search(`ou=nowhere,${db.seed.baseDn}`, { scope: "base", filter: "(uid=bob)" })).searchEntries,
    ).toHaveLength(1);
    await c.unbind();
  });

  it("answers memberUid lookups through SQL_QUERY_GROUPS_BY_MEMBER, but groups carry no members", async () => {
    const c = ldapClient(gw.url);
    const byMember = await c.search(db.seed.baseDn, { filter: "(&(objectClass=posixGroup)(memberUid=bob))" });
    expect(byMember.searchEntries.map((e) => e.dn).sort()).toEqual(
      [`cn=devs,${db.seed.baseDn}`, `cn=ldapusers,${db.seed.baseDn}`].sort(),
    );
    const groups = await c.search(db.seed.baseDn, { filter: "(objectClass=posixGroup)" });
    expect(groups.searchEntries).toHaveLength(3);
    for (const g of groups.searchEntries) {
      expect(g.objectClass).toBe("posixGroup");
      expect(g).not.toHaveProperty("memberUid");
      expect(g).not.toHaveProperty("member");
    }
    await c.unbind();
  });

  it("always sends the fixed attribute set and drops requested names with upper case", async () => {
    const c = ldapClient(gw.url);
    const mixed = await c.search(db.seed.baseDn, { filter: "(uid=bob)", attributes: ["givenName", "cn"] });
    const e = mixed.searchEntries[0]!;
    // ldapts lists requested-but-missing attributes as empty arrays.
    expect(e.givenName).toEqual([]);
    expect(e.cn).toBe("Bob Builder");
    for (const a of ["objectClass", "uidNumber", "gidNumber", "loginShell", "homeDirectory", "sn", "mail"]) {
      expect(e).toHaveProperty(a);
    }
    expect(e).not.toHaveProperty("uid");
    const lower = await c.search(db.seed.baseDn, { filter: "(uid=bob)", attributes: ["givenname"] });
    expect(lower.searchEntries[0]?.givenName).toBe("Bob");
    await c.unbind();
  });

  it("matches Proxmox's sync filters loosely and ignores the paged-results control", async () => {
    const c = ldapClient(gw.url);
    const users = await c.search(db.seed.baseDn, {
      filter:
        "(&(|(uid=*)(enable=*)(expire=*)(firstname=*)(lastname=*)(email=*)(comment=*)(keys=*)(mail=*))(|(objectclass=inetorgperson)(objectclass=posixaccount)(objectclass=person)(objectclass=user)))",
      attributes: ["uid", "mail", "memberOf"],
      paged: { pageSize: 2 },
    });
    expect(users.searchEntries.map((e) => e.uid).sort()).toEqual(db.seed.users.map((u) => u.uid).sort());
    const groups = await c.search(db.seed.baseDn, {
      filter:
        "(|(objectclass=groupOfNames)(objectclass=group)(objectclass=univentionGroup)(objectclass=ipausergroup))",
      attributes: ["member", "uniqueMember"],
    });
    expect(groups.searchEntries.map((e) => e.objectClass)).toEqual([
      "posixGroup",
      "posixGroup",
      "posixGroup",
    ]);
    await c.unbind();
  });

  it("fails a full listing with operationsError after partial results when a row has a NULL id number", async () => {
    await db.addUser({ uid: "nullgid", password: "x", gidNumber: null });
    try {
      const r = await ldapsearch(gw.url, ["-b", db.seed.baseDn, "(objectClass=posixAccount)", "uid"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/Operations error/);
      // Entries before the bad row (the newest) arrive, then the error.
      expect(r.dns.sort()).toEqual(db.seed.users.map((u) => dnOf(u.uid)).sort());
    } finally {
      await db.query(`DELETE FROM "Users" WHERE "uid" = 'nullgid'`);
    }
  });
});

describe("group members from member_uids / members columns", () => {
  it("adds memberUid and member when the group query returns them (COALESCE/FILTER form)", async () => {
    await db.query(
      `INSERT INTO "Groups" ("gidNumber", "cn", "createdAt", "updatedAt") VALUES (2099, 'empty', now(), now())`,
    );
    try {
      const gw = await gateway(queriesWithMembers(db.seed.baseDn));
      const c = ldapClient(gw.url);
      const { searchEntries } = await c.search(db.seed.baseDn, { filter: "(objectClass=posixGroup)" });
      const devs = searchEntries.find((e) => e.cn === "devs")!;
      expect(devs.memberUid).toEqual(["alice", "bob"]);
      expect(devs.member).toEqual([dnOf("alice"), dnOf("bob")]);
      const empty = searchEntries.find((e) => e.cn === "empty")!;
      expect(empty).not.toHaveProperty("memberUid");
      const byMember = await c.search(db.seed.baseDn, { filter: "(memberUid=bob)" });
      expect(byMember.searchEntries.map((e) => e.cn).sort()).toEqual(["devs", "ldapusers"]);
      await c.unbind();

      // A plain LEFT JOIN gives an empty group the literal member "null".
      const plain = await gateway({
        SQL_QUERY_ALL_GROUPS:
          'SELECT g."cn" AS name, g."gidNumber" AS gid_number, array_agg(u."uid") AS member_uids FROM "Groups" g ' +
          'LEFT JOIN "UserGroups" ug ON g."gidNumber" = ug."gidNumber" LEFT JOIN "Users" u ON ug."uidNumber" = u."uidNumber" ' +
          'GROUP BY g."cn", g."gidNumber"',
      });
      const c2 = ldapClient(plain.url);
      const res = await c2.search(db.seed.baseDn, { filter: "(objectClass=posixGroup)" });
      expect(res.searchEntries.find((e) => e.cn === "empty")?.memberUid).toBe("null");
      await c2.unbind();
    } finally {
      await db.query(`DELETE FROM "Groups" WHERE "gidNumber" = 2099`);
    }
  });
});

describe("binds", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await gateway();
  });

  it.each(["alice", "bob", "carol", "dave"])(
    "accepts the right password and refuses a wrong one (%s)",
    async (uid) => {
      const c = ldapClient(gw.url);
      await c.bind(dnOf(uid), user(uid).password);
      await expect(c.bind(dnOf(uid), `${user(uid).password}x`)).rejects.toBeInstanceOf(
        InvalidCredentialsError,
      );
      await c.unbind();
    },
  );

  it("refuses plain-text, {SSHA}, $1$ and $2y$ passwords even when they match", async () => {
    await db.addUser({ uid: "plainpw", password: "secret-1", hashKind: "plain" });
    await db.addUser({ uid: "sshapw", password: "secret-2", hashKind: "ssha" });
    await db.addUser({ uid: "md5pw", password: "secret-3", hashKind: "plain" });
    await db.addUser({ uid: "bcrypt2y", password: "secret-4", hashKind: "bcrypt" });
    // `openssl passwd -1 -salt abcdefgh secret-3`
    await db.query(
      `UPDATE "Users" SET "userPassword" = '$1$abcdefgh$v6IibNq/kngzpFpM6VYGZ0' WHERE "uid" = 'md5pw'`,
    );
    // The same bcrypt hash under PHP's prefix.
    await db.query(
      `UPDATE "Users" SET "userPassword" = regexp_replace("userPassword", '^\\$2[ab]\\$', '$2y$') WHERE "uid" = 'bcrypt2y'`,
    );
    try {
      const stored = await db.query<{ userPassword: string }>(
        `SELECT "userPassword" FROM "Users" WHERE "uid" = 'bcrypt2y'`,
      );
      expect(stored.rows[0]?.userPassword).toMatch(/^\$2y\$/);
      const c = ldapClient(gw.url);
      await expect(c.bind(dnOf("plainpw"), "secret-1")).rejects.toBeInstanceOf(InvalidCredentialsError);
      await expect(c.bind(dnOf("sshapw"), "secret-2")).rejects.toBeInstanceOf(InvalidCredentialsError);
      await expect(c.bind(dnOf("md5pw"), "secret-3")).rejects.toBeInstanceOf(InvalidCredentialsError);
      await expect(c.bind(dnOf("bcrypt2y"), "secret-4")).rejects.toBeInstanceOf(InvalidCredentialsError);
      await c.unbind();
    } finally {
      await db.query(`DELETE FROM "Users" WHERE "uid" IN ('plainpw', 'sshapw', 'md5pw', 'bcrypt2y')`);
    }
  });

  it("logs a failed bind at error level, and no disconnect", async () => {
    const gw = await gateway();
    const c = ldapClient(gw.url);
    await expect(c.bind(dnOf("alice"), "wrong")).rejects.toBeInstanceOf(InvalidCredentialsError);
    await c.unbind();
    await until(
      () => /ERROR LDAP Client connection error: \{"error":"Invalid credentials"\}/.test(gw.logs()),
      5000,
    );
    await sleep(300); // the disconnect has happened by now
    expect(gw.logs()).not.toMatch(/disconnect/i);
    expect(gw.logs()).not.toContain(user("alice").password);
  });

  it("refuses unknown users under the base DN", async () => {
    const c = ldapClient(gw.url);
    await expect(c.bind(dnOf("nobody"), "x")).rejects.toBeInstanceOf(InvalidCredentialsError);
    await c.unbind();
  });

  it("accepts any DN outside the base DN with any password, which even passes REQUIRE_AUTH_FOR_SEARCH", async () => {
    const strict = await gateway({ REQUIRE_AUTH_FOR_SEARCH: "true" });
    const c = ldapClient(strict.url);
    await expect(c.search(db.seed.baseDn, { filter: "(uid=alice)" })).rejects.toBeInstanceOf(
      InsufficientAccessError,
    );
    await c.bind("cn=admin,dc=elsewhere", "anything");
    const { searchEntries } = await c.search(db.seed.baseDn, { filter: "(uid=alice)" });
    expect(searchEntries).toHaveLength(1);
    await c.unbind();
  });

  it("treats REQUIRE_AUTH_FOR_SEARCH as true unless it is exactly 'false'", async () => {
    const env = { PORT: String(await freePort()) };
    const gwDefault = await startGateway({ ...seedEnv(env), REQUIRE_AUTH_FOR_SEARCH: "" });
    running.push(gwDefault);
    const c = ldapClient(gwDefault.url);
    await expect(c.search(db.seed.baseDn, { filter: "(uid=alice)" })).rejects.toBeInstanceOf(
      InsufficientAccessError,
    );
    await c.bind(dnOf("alice"), user("alice").password);
    expect((await c.search(db.seed.baseDn, { filter: "(uid=alice)" })).searchEntries).toHaveLength(1);
    await c.unbind();
  });
});

describe("notification backend", () => {
  let server: http.Server;
  let mode: "approve" | "reject" | "error" | "silent" = "approve";
  const received: { username: string; actions: unknown }[] = [];
  let url = "";
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        received.push(JSON.parse(body) as { username: string; actions: unknown });
        if (mode === "silent") return; // never answer
        if (mode === "error") return void res.writeHead(500).end('{"action":"approve"}');
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ action: mode }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/send-notification`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("approves only on 200 with action approve, after the password is right, and has no timeout", async () => {
    const gw = await gateway({ AUTH_BACKENDS: "sql,notification", NOTIFICATION_URL: url });
    const c = ldapClient(gw.url);
    mode = "approve";
    await c.bind(dnOf("alice"), user("alice").password);
    expect(received.at(-1)).toMatchObject({
      username: "alice",
      title: expect.any(String),
      body: expect.any(String),
    });
    mode = "reject";
    await expect(c.bind(dnOf("alice"), user("alice").password)).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );
    mode = "error";
    await expect(c.bind(dnOf("alice"), user("alice").password)).rejects.toBeInstanceOf(
      InvalidCredentialsError,
    );
    const before = received.length;
    await expect(c.bind(dnOf("alice"), "wrong")).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(received.length).toBe(before); // no push for a wrong password
    await c.unbind();
    mode = "silent";
    const slow = ldapClient(gw.url, 2000);
    await expect(slow.bind(dnOf("alice"), user("alice").password)).rejects.toThrow(/timed out/i);
    await slow.unbind().catch(() => undefined);
  });
});

describe("when the database misbehaves", () => {
  it("answers searches with 0 entries and binds with 49 while the database is down, and recovers", async () => {
    const gw = await gateway();
    await db.stopServer();
    try {
      const c = ldapClient(gw.url);
      const res = await c.search(db.seed.baseDn, { filter: "(uid=alice)" });
      expect(res.searchEntries).toEqual([]);
      await expect(c.bind(dnOf("alice"), user("alice").password)).rejects.toBeInstanceOf(
        InvalidCredentialsError,
      );
      // The root DSE never touches the database.
      expect((await c.search("", { scope: "base" })).searchEntries[0]?.namingContexts).toBe(db.seed.baseDn);
      await c.unbind();
    } finally {
      await db.startServer();
    }
    const c = ldapClient(gw.url);
    expect((await c.search(db.seed.baseDn, { filter: "(uid=alice)" })).searchEntries).toHaveLength(1);
    await c.bind(dnOf("alice"), user("alice").password);
    await c.unbind();
  });

  it("hangs searches when the database accepts connections but never answers", async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    const port = (silent.address() as net.AddressInfo).port;
    try {
      const gw = await gateway({ SQL_URI: `postgres://manager:x@127.0.0.1:${port}/manager` });
      const c = ldapClient(gw.url, 3000);
      await expect(c.search(db.seed.baseDn, { filter: "(uid=alice)" })).rejects.toThrow(/timed out/i);
      await c.unbind().catch(() => undefined);
      // The root DSE still answers.
      const c2 = ldapClient(gw.url, 3000);
      expect((await c2.search("", { scope: "base" })).searchEntries).toHaveLength(1);
      await c2.unbind();
    } finally {
      silent.close();
    }
  });
});

describe("SIGTERM", () => {
  afterEach(() => undefined);

  it("stops accepting but exits only after the last client disconnects", async () => {
    const gw = await gateway();
    const idle = ldapClient(gw.url);
    await idle.search("", { scope: "base" });
    gw.proc.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 1500));
    expect(gw.proc.exitCode).toBeNull();
    // No new connections.
    const fresh = ldapClient(gw.url, 1000);
    await expect(fresh.search("", { scope: "base" })).rejects.toThrow();
    await idle.unbind();
    expect(await gw.exited).toBe(0);
  });

  it("exits with status 1 on a second signal", async () => {
    const gw = await gateway();
    const idle = ldapClient(gw.url);
    await idle.search("", { scope: "base" });
    gw.proc.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 500));
    expect(gw.proc.exitCode).toBeNull();
    gw.proc.kill("SIGTERM");
    expect(await gw.exited).toBe(1);
    await idle.unbind().catch(() => undefined);
  });
});

describe("scale", () => {
  it("lists 1,000 more users in one reply", async () => {
    const gw = await gateway();
    const { uids } = await db.addUsers(1000);
    try {
      const c = ldapClient(gw.url, 15_000);
      await c.search(db.seed.baseDn, { filter: "(uid=alice)" }); // warm the pool
      const t0 = Date.now();
      const { searchEntries } = await c.search(db.seed.baseDn, { filter: "(objectClass=posixAccount)" });
      const ms = Date.now() - t0;
      console.log(
        `full listing of ${searchEntries.length} users: ${ms} ms (real gateway: about 60 ms for 1,000)`,
      );
      expect(searchEntries).toHaveLength(db.seed.users.length + 1000);
      await c.unbind();
    } finally {
      await db.query(`DELETE FROM "Users" WHERE "uid" = ANY($1)`, [uids]);
    }
  });
});
