// A throwaway PostgreSQL for the tests: the machine's own server binaries, a
// fresh data directory, a free loopback port, SCRAM password authentication
// on TCP and a random password, with the management database's tables and a
// known seed.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { isAlive, killQuietly, registerCleanup, sleepSync } from "./cleanup.js";
import { MANAGEMENT_SCHEMA, SEED_GROUPS, SEED_QUERIES } from "./management-schema.js";
import { hashPassword, type HashKind } from "./password-hashes.js";
import { freePort } from "./ports.js";

export interface SeedUser {
  uid: string;
  uidNumber: number;
  gidNumber: number;
  cn: string;
  givenName: string;
  sn: string;
  mail: string;
  homeDirectory: string;
  /** The plain password; the database holds only its hash. */
  password: string;
  hashKind: HashKind;
  /** Names of the groups the user belongs to through "UserGroups". */
  groups: string[];
}

export interface Seed {
  /** The internal domain the seed's users live in, and its base DN. */
  domain: string;
  baseDn: string;
  users: SeedUser[];
  groups: { gidNumber: number; cn: string; isAdmin: boolean; members: string[] }[];
  queries: typeof SEED_QUERIES;
}

export interface NewUser {
  uid: string;
  password: string;
  hashKind?: HashKind;
  /** Null reproduces a row the gateway cannot list. */
  gidNumber?: number | null;
  groups?: number[];
}

export interface TestPostgres {
  /** postgres://user:password@127.0.0.1:port/database */
  url: string;
  host: string;
  port: number;
  /** The cluster's data directory (inside a temporary directory removed by stop()). */
  dataDir: string;
  database: string;
  user: string;
  seed: Seed;
  /** Runs a statement as the database owner. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Adds one user (next uidNumber, joins its primary group 2001 unless told otherwise). */
  addUser(user: NewUser): Promise<{ uidNumber: number }>;
  /**
   * Adds n users `benchNNNNN` sharing one argon2 hash (hashing each would take
   * minutes), members of ldapusers. Returns their shared password.
   */
  addUsers(n: number): Promise<{ password: string; uids: string[] }>;
  /** Stops the server but keeps the data: the database is "down". */
  stopServer(): Promise<void>;
  /** Starts it again on the same port. */
  startServer(): Promise<void>;
  /** Stops the server and removes its data. Idempotent. */
  stop(): Promise<void>;
}

const DB_NAME = "manager";
const DB_USER = "manager";

/** Finds initdb and postgres: PATH first, then Debian's versioned directories (newest first). */
export function findPostgresBinaries(): { initdb: string; postgres: string } {
  const candidates: string[] = [];
  for (const dir of (process.env.PATH ?? "").split(":")) if (dir) candidates.push(dir);
  const debianRoot = "/usr/lib/postgresql";
  if (existsSync(debianRoot)) {
    const versions = readdirSync(debianRoot)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) candidates.push(path.join(debianRoot, v, "bin"));
  }
  for (const dir of candidates) {
    const initdb = path.join(dir, "initdb");
    const postgres = path.join(dir, "postgres");
    if (existsSync(initdb) && existsSync(postgres)) return { initdb, postgres };
  }
  throw new Error(
    "PostgreSQL server binaries (initdb, postgres) not found in PATH or /usr/lib/postgresql/*/bin; " +
      "install them, e.g. `apt-get install postgresql` on Debian",
  );
}

interface RunAs {
  uid: number;
  gid: number;
  /** Prefix that drops privileges and ties the child's life to ours. */
  prefix: string[];
}

/**
 * initdb refuses to run as root, so as root the server runs as `postgres`
 * (or `nobody`). setpriv execs in place (the pid we hold is the postmaster)
 * and its parent-death signal stops the server even if this process is
 * SIGKILLed; SIGQUIT is PostgreSQL's immediate shutdown.
 */
function runAs(): RunAs {
  const deathSig = ["--pdeathsig", "SIGQUIT"];
  if (process.getuid?.() !== 0) {
    return {
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      prefix: ["setpriv", ...deathSig, "--"],
    };
  }
  for (const name of ["postgres", "nobody"]) {
    const res = spawnSync("id", ["-u", name], { encoding: "utf8" });
    if (res.status !== 0) continue;
    const gid = spawnSync("id", ["-g", name], { encoding: "utf8" });
    return {
      uid: Number(res.stdout.trim()),
      gid: Number(gid.stdout.trim()),
      prefix: [
        "setpriv",
        `--reuid=${name}`,
        `--regid=${gid.stdout.trim()}`,
        "--clear-groups",
        ...deathSig,
        "--",
      ],
    };
  }
  throw new Error("running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL");
}

export async function startPostgres(): Promise<TestPostgres> {
  const bins = findPostgresBinaries();
  const who = runAs();
  const root = mkdtempSync(path.join(os.tmpdir(), "ldappair-pg-"));
  const dataDir = path.join(root, "data");
  const sockDir = path.join(root, "sock");
  const pwFile = path.join(root, "pwfile");
  const password = randomBytes(18).toString("base64url");
  const port = await freePort();
  let child: ChildProcess | undefined;
  let log = "";
  let removed = false;

  const unregister = registerCleanup(() => {
    // Synchronous last resort (exit/signal): immediate shutdown, then remove.
    // Only a server still running: the pid of one that exited may be reused.
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      killQuietly(child.pid, "SIGQUIT");
      for (let i = 0; i < 50 && isAlive(child.pid); i++) sleepSync(20);
      killQuietly(child.pid, "SIGKILL");
    }
    rmSync(root, { recursive: true, force: true });
  });

  const fail = (msg: string): Error => new Error(`${msg}\n--- postgres log (tail) ---\n${log.slice(-3000)}`);

  try {
    mkdirSync(sockDir);
    writeFileSync(pwFile, `${password}\n`, { mode: 0o600 });
    for (const p of [root, sockDir, pwFile]) chownSync(p, who.uid, who.gid);

    const [cmd, ...pre] = who.prefix;
    const init = spawnSync(
      cmd!,
      [
        ...pre,
        bins.initdb,
        "-D",
        dataDir,
        "-U",
        DB_USER,
        `--pwfile=${pwFile}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
        "--no-instructions",
      ],
      { encoding: "utf8" },
    );
    rmSync(pwFile, { force: true });
    if (init.status !== 0) {
      log = `${init.stdout}${init.stderr}`;
      throw fail(`initdb failed (exit ${init.status ?? init.signal})`);
    }

    const startServer = async (): Promise<void> => {
      if (child && child.exitCode === null && child.signalCode === null) return;
      log = "";
      const proc = spawn(
        cmd!,
        [
          ...pre,
          bins.postgres,
          "-D",
          dataDir,
          "-p",
          String(port),
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          `unix_socket_directories=${sockDir}`,
          // Throwaway data: durability only costs time.
          "-c",
          "fsync=off",
          "-c",
          "synchronous_commit=off",
          "-c",
          "full_page_writes=off",
        ],
        { stdio: ["ignore", "pipe", "pipe"] },
      );
      child = proc;
      const append = (b: Buffer): void => {
        log = (log + b.toString()).slice(-20000);
      };
      proc.stdout?.on("data", append);
      proc.stderr?.on("data", append);
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (proc.exitCode !== null || proc.signalCode !== null) throw fail("postgres exited during startup");
        const c = new pg.Client({ host: "127.0.0.1", port, user: DB_USER, password, database: "postgres" });
        c.on("error", () => undefined);
        try {
          await c.connect();
          await c.end();
          return;
        } catch {
          await c.end().catch(() => undefined);
          if (Date.now() > deadline) throw fail("postgres did not accept connections within 30 s");
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };

    const stopServer = async (): Promise<void> => {
      const proc = child;
      if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGINT"); // fast shutdown: disconnects clients, no waiting
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    };

    await startServer();

    const admin = new pg.Client({ host: "127.0.0.1", port, user: DB_USER, password, database: "postgres" });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${DB_NAME}`);
    await admin.end();

    const pool = new pg.Pool({ host: "127.0.0.1", port, user: DB_USER, password, database: DB_NAME, max: 4 });
    // A stopped server makes idle pooled clients error; that is expected here.
    pool.on("error", () => undefined);
    await pool.query(MANAGEMENT_SCHEMA);

    const query = <R extends pg.QueryResultRow>(
      sql: string,
      params?: unknown[],
    ): Promise<pg.QueryResult<R>> => pool.query<R>(sql, params);

    for (const g of SEED_GROUPS) {
      await query(
        'INSERT INTO "Groups" ("gidNumber", "cn", "isAdmin", "createdAt", "updatedAt") VALUES ($1, $2, $3, now(), now())',
        [g.gidNumber, g.cn, g.isAdmin],
      );
    }

    // Mirrors the manager: uidNumber = max + 1 (2000 when empty), a new user
    // joins its primary group, and the very first user also joins 2000.
    const insertUser = async (u: {
      uid: string;
      cn: string;
      givenName: string;
      sn: string;
      mail: string | null;
      hash: string;
      gidNumber: number | null;
      groups?: number[];
    }): Promise<number> => {
      const res = await query<{ uidNumber: number; first: boolean }>(
        `INSERT INTO "Users" ("uidNumber", "uid", "gidNumber", "homeDirectory", "cn", "sn", "givenName", "mail",
           "userPassword", "status", "createdAt", "updatedAt")
         SELECT COALESCE(MAX("uidNumber") + 1, 2000), $1, $2, $3, $4, $5, $6, $7, $8, 'active', now(), now() FROM "Users"
         RETURNING "uidNumber", ("uidNumber" = 2000) AS first`,
        [u.uid, u.gidNumber, `/home/${u.uid}`, u.cn, u.sn, u.givenName, u.mail, u.hash],
      );
      const row = res.rows[0]!;
      const groups = new Set(u.groups ?? (u.gidNumber === null ? [] : [u.gidNumber]));
      if (row.first) groups.add(2000);
      for (const gid of groups) {
        await query(
          'INSERT INTO "UserGroups" ("uidNumber", "gidNumber", "createdAt", "updatedAt") VALUES ($1, $2, now(), now())',
          [row.uidNumber, gid],
        );
      }
      return row.uidNumber;
    };

    const domain = "example.com";
    const baseDn = "dc=example,dc=com";
    const people: { uid: string; givenName: string; sn: string; hashKind: HashKind; extra: number[] }[] = [
      { uid: "alice", givenName: "Alice", sn: "Liddell", hashKind: "argon2id", extra: [2002] },
      { uid: "bob", givenName: "Bob", sn: "Builder", hashKind: "sha512crypt", extra: [2002] },
      { uid: "carol", givenName: "Carol", sn: "Danvers", hashKind: "sha256crypt", extra: [] },
      { uid: "dave", givenName: "Dave", sn: "Lister", hashKind: "bcrypt", extra: [] },
    ];
    const users: SeedUser[] = [];
    for (const p of people) {
      const plain = randomBytes(12).toString("base64url");
      const cn = `${p.givenName} ${p.sn}`;
      const mail = `${p.uid}@${domain}`;
      const uidNumber = await insertUser({
        uid: p.uid,
        cn,
        givenName: p.givenName,
        sn: p.sn,
        mail,
        hash: await hashPassword(p.hashKind, plain),
        gidNumber: 2001,
        groups: [2001, ...p.extra],
      });
      users.push({
        uid: p.uid,
        uidNumber,
        gidNumber: 2001,
        cn,
        givenName: p.givenName,
        sn: p.sn,
        mail,
        homeDirectory: `/home/${p.uid}`,
        password: plain,
        hashKind: p.hashKind,
        groups: [],
      });
    }
    const memberships = await query<{ uid: string; cn: string }>(
      'SELECT u."uid", g."cn" FROM "UserGroups" ug JOIN "Users" u ON u."uidNumber" = ug."uidNumber" JOIN "Groups" g ON g."gidNumber" = ug."gidNumber" ORDER BY g."gidNumber", u."uidNumber"',
    );
    for (const m of memberships.rows) users.find((u) => u.uid === m.uid)?.groups.push(m.cn);
    const seed: Seed = {
      domain,
      baseDn,
      users,
      groups: SEED_GROUPS.map((g) => ({
        ...g,
        members: memberships.rows.filter((m) => m.cn === g.cn).map((m) => m.uid),
      })),
      queries: SEED_QUERIES,
    };

    let benchHash: { password: string; hash: string } | undefined;
    let benchCount = 0;

    const result: TestPostgres = {
      url: `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`,
      host: "127.0.0.1",
      port,
      dataDir,
      database: DB_NAME,
      user: DB_USER,
      seed,
      query,
      async addUser(u) {
        const gidNumber = u.gidNumber === undefined ? 2001 : u.gidNumber;
        const uidNumber = await insertUser({
          uid: u.uid,
          cn: u.uid,
          givenName: u.uid,
          sn: u.uid,
          mail: `${u.uid}@${domain}`,
          hash: await hashPassword(u.hashKind ?? "argon2id", u.password),
          gidNumber,
          ...(u.groups ? { groups: u.groups } : {}),
        });
        return { uidNumber };
      },
      async addUsers(n) {
        if (!benchHash) {
          const plain = randomBytes(12).toString("base64url");
          benchHash = { password: plain, hash: await hashPassword("argon2id", plain) };
        }
        const start = benchCount;
        benchCount += n;
        const uids: string[] = [];
        // One statement per batch: thousands of round trips would dominate.
        for (let off = 0; off < n; off += 5000) {
          const count = Math.min(5000, n - off);
          const res = await query<{ uid: string }>(
            `WITH base AS (SELECT COALESCE(MAX("uidNumber"), 1999) AS m FROM "Users"),
             ins AS (
               INSERT INTO "Users" ("uidNumber", "uid", "gidNumber", "homeDirectory", "cn", "sn", "givenName", "mail",
                 "userPassword", "status", "createdAt", "updatedAt")
               SELECT base.m + i, 'bench' || lpad((${start + off} + i)::text, 6, '0'), 2001,
                 '/home/bench' || lpad((${start + off} + i)::text, 6, '0'),
                 'Bench User ' || (${start + off} + i), 'User', 'Bench',
                 'bench' || lpad((${start + off} + i)::text, 6, '0') || '@${domain}', $1, 'active', now(), now()
               FROM base, generate_series(1, $2::int) AS i
               RETURNING "uidNumber", "uid")
             , grp AS (INSERT INTO "UserGroups" ("uidNumber", "gidNumber", "createdAt", "updatedAt")
               SELECT "uidNumber", 2001, now(), now() FROM ins)
             SELECT "uid" FROM ins ORDER BY "uidNumber"`,
            [benchHash.hash, count],
          );
          uids.push(...res.rows.map((r) => r.uid));
        }
        return { password: benchHash.password, uids };
      },
      stopServer,
      startServer,
      async stop() {
        if (removed) return;
        removed = true;
        await pool.end().catch(() => undefined);
        await stopServer();
        rmSync(root, { recursive: true, force: true });
        unregister();
      },
    };
    return result;
  } catch (err) {
    if (child?.pid !== undefined) {
      killQuietly(child.pid, "SIGQUIT");
      await new Promise((r) => setTimeout(r, 200));
      killQuietly(child.pid, "SIGKILL");
    }
    rmSync(root, { recursive: true, force: true });
    unregister();
    throw err;
  }
}
