// The gateway stand-in against the real PostgreSQL: the contract of
// shared/reference/ldap-gateway.md, quirks included.
import http from "node:http";
import net from "node:net";
import tls from "node:tls";
import { X509Certificate } from "node:crypto";
import { InvalidCredentialsError, InsufficientAccessError } from "ldapts";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { queriesWithMembers } from "../testenv/management-schema.js";
import { freePort } from "../testenv/ports.js";
import { startPostgres, type TestPostgres } from "../testenv/postgres.js";
import { gatewayBundle } from "./bundle.js";
import { spawnGateway, startGateway, type RunningGateway } from "./harness.js";
import { ldapClient, ldapsearch } from "./ldap-tools.js";

let db: TestPostgres;
const running: RunningGateway[] = [];

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
});

const user = (uid: string) => db.seed.users.find((u) => u.uid === uid)!;
const dnOf = (uid: string) => `uid=${uid},${db.seed.baseDn}`;

describe("configuration through the environment", () => {
  it.each(["DIRECTORY_BACKEND", "AUTH_BACKENDS", "SQL_URI"])(
    "exits when %s is missing, without prompting",
    async (name) => {
      const env = seedEnv({ PORT: String(await freePort()) });
      delete env[name];
      const proc = await spawnGateway(env);
      let out = "";
      proc.stderr?.on("data", (b: Buffer) => (out += b.toString()));
      // stdin stays open: the stand-in must not wait for an interactive setup.
      const code = await new Promise<number | null>((r) => proc.once("exit", r));
      expect(code).not.toBe(0);
      expect(out).toContain(name);
    },
  );

  it("defaults to port 636 and a base DN derived from LDAP_COMMON_NAME, with a self-signed cert for that name", async () => {
    const env = seedEnv({ LDAP_COMMON_NAME: "ldap.example.org", BIND_IP: "127.14.0.2" });
    delete env.LDAP_BASE_DN;
    const gw = await startGateway(env);
    running.push(gw);
    expect(gw.port).toBe(636);
    // The real gateway starts answering in 0.6-0.9 s; the stand-in should be close.
    console.log(`gateway answered LDAPS ${gw.startMs} ms after spawn`);
    expect(gw.startMs).toBeLessThan(5000);
    const cert = await new Promise<X509Certificate>((resolve, reject) => {
      const s = tls.connect({ host: "127.14.0.2", port: 636, rejectUnauthorized: false }, () => {
        resolve(new X509Certificate(s.getPeerCertificate(true).raw));
        s.end();
      });
      s.on("error", reject);
    });
    expect(cert.subject).toBe("CN=ldap.example.org");
    expect(cert.subjectAltName).toBe("DNS:ldap.example.org");
    expect(cert.issuer).toBe(cert.subject);
    const c = ldapClient("ldaps://127.14.0.2:636");
    const dse = await c.search("", { scope: "base", attributes: ["namingContexts"] });
    expect(dse.searchEntries[0]?.namingContexts).toBe("dc=ldap,dc=example,dc=org");
    await c.unbind();
  });
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

  it("returns the root DSE from configuration", async () => {
    const c = ldapClient(gw.url);
    const { searchEntries } = await c.search("", { scope: "base" });
    expect(searchEntries).toHaveLength(1);
    expect(searchEntries[0]).toMatchObject({
      dn: "",
      namingContexts: db.seed.baseDn,
      defaultNamingContext: db.seed.baseDn,
      supportedLDAPVersion: "3",
    });
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
    // Base and scope are ignored.
    expect(
      (await c.search("ou=nowhere,dc=other", { scope: "base", filter: "(uid=bob)" })).searchEntries,
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

  it("refuses plain-text and {SSHA} passwords even when they match", async () => {
    await db.addUser({ uid: "plainpw", password: "secret-1", hashKind: "plain" });
    await db.addUser({ uid: "sshapw", password: "secret-2", hashKind: "ssha" });
    await db.addUser({ uid: "md5pw", password: "secret-3", hashKind: "plain" });
    await db.query(
      `UPDATE "Users" SET "userPassword" = '$1$abcdefgh$v6IibNq/kngzpFpM6VYGZ0' WHERE "uid" = 'md5pw'`,
    );
    try {
      const c = ldapClient(gw.url);
      await expect(c.bind(dnOf("plainpw"), "secret-1")).rejects.toBeInstanceOf(InvalidCredentialsError);
      await expect(c.bind(dnOf("sshapw"), "secret-2")).rejects.toBeInstanceOf(InvalidCredentialsError);
      // `openssl passwd -1 -salt abcdefgh secret-3`
      await c.bind(dnOf("md5pw"), "secret-3");
      await c.unbind();
    } finally {
      await db.query(`DELETE FROM "Users" WHERE "uid" IN ('plainpw', 'sshapw', 'md5pw')`);
    }
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
