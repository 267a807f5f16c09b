import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAlive } from "./cleanup.js";
import { startPostgres, type TestPostgres } from "./postgres.js";

describe("startPostgres", () => {
  let db: TestPostgres;
  beforeAll(async () => {
    db = await startPostgres();
  });
  afterAll(async () => {
    await db?.stop();
  });

  it("listens on loopback with SCRAM password auth and a random password", async () => {
    const u = new URL(db.url);
    expect(u.hostname).toBe("127.0.0.1");
    expect(u.password.length).toBeGreaterThanOrEqual(16);
    const wrong = new pg.Client({ connectionString: db.url.replace(u.password, "wrong") });
    await expect(wrong.connect()).rejects.toThrow(/password authentication failed/);
    const method = await db.query<{ m: string }>("SELECT current_setting('password_encryption') AS m");
    expect(method.rows[0]?.m).toBe("scram-sha-256");
  });

  it("creates the management tables as Sequelize does", async () => {
    const cols = await db.query<{
      table_name: string;
      column_name: string;
      data_type: string;
      is_nullable: string;
      column_default: string | null;
      character_maximum_length: number | null;
    }>(
      `SELECT table_name, column_name, data_type, is_nullable, column_default, character_maximum_length
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
    );
    const users = cols.rows.filter((c) => c.table_name === "Users");
    expect(users.map((c) => c.column_name)).toEqual([
      "uidNumber",
      "uid",
      "gidNumber",
      "homeDirectory",
      "loginShell",
      "cn",
      "sn",
      "givenName",
      "mail",
      "sshPublicKey",
      "userPassword",
      "status",
      "createdAt",
      "updatedAt",
    ]);
    const col = (t: string, c: string) => cols.rows.find((r) => r.table_name === t && r.column_name === c)!;
    expect(col("Users", "gidNumber").column_default).toBe("2001");
    expect(col("Users", "loginShell").column_default).toBe("'/bin/bash'::character varying");
    expect(col("Users", "status").column_default).toBe("'pending'::character varying");
    expect(col("Users", "status").character_maximum_length).toBe(50);
    for (const c of ["homeDirectory", "loginShell", "cn", "sn", "givenName"]) {
      expect(col("Users", c).is_nullable).toBe("NO");
      expect(col("Users", c).character_maximum_length).toBe(255);
    }
    expect(col("Users", "sshPublicKey").data_type).toBe("text");
    expect(col("Groups", "isAdmin").column_default).toBe("false");
    expect(cols.rows.filter((c) => c.table_name === "UserGroups").map((c) => c.column_name)).toEqual([
      "uidNumber",
      "gidNumber",
      "createdAt",
      "updatedAt",
    ]);
    const fks = await db.query<{ update_rule: string; delete_rule: string }>(
      "SELECT update_rule, delete_rule FROM information_schema.referential_constraints",
    );
    expect(fks.rows).toHaveLength(2);
    for (const fk of fks.rows) expect(fk).toEqual({ update_rule: "CASCADE", delete_rule: "CASCADE" });
    const uniques = await db.query<{ table_name: string; column_name: string }>(
      `SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
       JOIN information_schema.key_column_usage kcu USING (constraint_name, table_name)
       WHERE tc.constraint_type = 'UNIQUE' AND tc.table_schema = 'public' ORDER BY 1, 2`,
    );
    expect(uniques.rows).toEqual([
      { table_name: "Groups", column_name: "cn" },
      { table_name: "Users", column_name: "mail" },
      { table_name: "Users", column_name: "uid" },
    ]);
  });

  it("seeds users with argon2 and crypt hashes, the manager's groups and memberships", async () => {
    const rows = await db.query<{ uid: string; userPassword: string; uidNumber: number }>(
      'SELECT "uid", "userPassword", "uidNumber" FROM "Users" ORDER BY "uidNumber"',
    );
    expect(rows.rows.map((r) => r.userPassword.match(/^\$(argon2id|6|5|2b)\$/)?.[1])).toEqual([
      "argon2id",
      "6",
      "5",
      "2b",
    ]);
    expect(rows.rows[0]?.uidNumber).toBe(2000);
    for (const u of db.seed.users) {
      const row = rows.rows.find((r) => r.uid === u.uid)!;
      expect(row.userPassword).not.toContain(u.password);
    }
    const groups = await db.query('SELECT "gidNumber", "cn", "isAdmin" FROM "Groups" ORDER BY 1');
    expect(groups.rows.slice(0, 2)).toEqual([
      { gidNumber: 2000, cn: "sysadmins", isAdmin: true },
      { gidNumber: 2001, cn: "ldapusers", isAdmin: false },
    ]);
    // The first user is the admin; everyone is in the primary group.
    expect(db.seed.groups.find((g) => g.cn === "sysadmins")?.members).toEqual(["alice"]);
    expect(db.seed.groups.find((g) => g.cn === "ldapusers")?.members).toEqual([
      "alice",
      "bob",
      "carol",
      "dave",
    ]);
    expect(db.seed.groups.find((g) => g.cn === "devs")?.members).toEqual(["alice", "bob"]);
  });

  it("answers the seed's four queries with ? turned into a parameter", async () => {
    const one = await db.query(db.seed.queries.SQL_QUERY_ONE_USER.replace("?", "$1"), ["bob"]);
    expect(one.rows).toEqual([
      expect.objectContaining({
        username: "bob",
        uid_number: 2001,
        gid_number: 2001,
        mail: "bob@example.com",
      }),
    ]);
    const byMember = await db.query(db.seed.queries.SQL_QUERY_GROUPS_BY_MEMBER.replace("?", "$1"), ["bob"]);
    expect(byMember.rows.map((r) => r.name).sort()).toEqual(["devs", "ldapusers"]);
  });

  it("cascades deletes to memberships", async () => {
    await db.addUser({ uid: "temp", password: "x" });
    await db.query('DELETE FROM "Users" WHERE "uid" = $1', ["temp"]);
    const left = await db.query(
      'SELECT count(*)::int AS n FROM "UserGroups" ug WHERE NOT EXISTS (SELECT 1 FROM "Users" u WHERE u."uidNumber" = ug."uidNumber")',
    );
    expect(left.rows[0]?.n).toBe(0);
  });

  it("adds many users for benchmarks", async () => {
    const before = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM "Users"');
    const { uids, password } = await db.addUsers(2500);
    expect(uids).toHaveLength(2500);
    expect(password.length).toBeGreaterThan(8);
    const after = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM "Users"');
    expect(after.rows[0]!.n - before.rows[0]!.n).toBe(2500);
  });

  it("can be stopped and started to simulate a database outage", async () => {
    await db.stopServer();
    const c = new pg.Client({ connectionString: db.url });
    await expect(c.connect()).rejects.toThrow(/ECONNREFUSED/);
    await db.startServer();
    const n = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM "Groups"');
    expect(n.rows[0]?.n).toBe(3);
  });
});

describe("teardown", () => {
  it("stop() leaves no process and no data directory", async () => {
    const db = await startPostgres();
    const pids = await postmasterPids(db.port);
    expect(pids.length).toBe(1);
    const root = path.dirname(db.dataDir);
    await db.stop();
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });

  it("SIGINT to the owning process stops the server", async () => {
    const script = path.join(import.meta.dirname, "postgres.fixture.ts");
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const { port, root } = await new Promise<{ port: number; root: string }>((resolve, reject) => {
      child.stdout.on("data", (b: Buffer) => {
        const m = /PORT (\d+) ROOT (\S+)/.exec(b.toString());
        if (m) resolve({ port: Number(m[1]), root: m[2]! });
      });
      child.once("exit", () => reject(new Error("fixture exited early")));
    });
    const pids = await postmasterPids(port);
    expect(pids.length).toBe(1);
    child.kill("SIGINT");
    await new Promise((r) => child.once("exit", r));
    expect(pids.filter(isAlive)).toEqual([]);
    expect(existsSync(root)).toBe(false);
  });
});

/** The postmaster listening on a port, found through /proc (no extra tools needed). */
async function postmasterPids(port: number): Promise<number[]> {
  const { readdirSync, readFileSync } = await import("node:fs");
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (path.basename(cmd[0] ?? "") === "postgres" && cmd.includes(String(port))) out.push(Number(d));
    } catch {
      // process went away
    }
  }
  return out;
}
