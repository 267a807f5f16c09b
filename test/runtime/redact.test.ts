import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { REDACTED, Redactor } from "../../src/observability/redact.js";
import { blankOut } from "../../src/observability/redact-text.js";

const tokenSecret = "3f1c9a7e-55b2-4d6e-9c1a-7b0e2d4f8a61";
const dbPassword = "s3cr:et/P@ss";
const sqlUri = `postgres://manager:${encodeURIComponent(dbPassword)}@db.example.com:5432/manager`;

function capture(redactor: Redactor) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString().split("\n").filter(Boolean));
      done();
    },
  });
  const logger = createLogger({ level: "debug", stream, redactor });
  const flush = () => new Promise((r) => setImmediate(r));
  return { logger, lines, flush };
}

describe("Redactor", () => {
  it("removes registered secrets anywhere in a string", () => {
    const r = new Redactor();
    r.registerSecret(tokenSecret);
    expect(r.redactText(`token ${tokenSecret} refused`)).toBe(`token ${REDACTED} refused`);
  });

  it.each([
    [
      "SQL URI password",
      "connect postgres://u:PASS@h/db failed",
      "connect postgres://u:[REDACTED]@h/db failed",
    ],
    ["mysql URI", "mysql://root:hunter22@10.0.0.5:3306/x", "mysql://root:[REDACTED]@10.0.0.5:3306/x"],
    ["password with @ and /", "postgres://u:p@ss/w0rd@h:5432/db", "postgres://u:[REDACTED]@h:5432/db"],
    ["password with a quote", 'postgres://u:ab"cd@h/db', "postgres://u:[REDACTED]@h/db"],
    ["user without password untouched", "ldap://cn=admin@h", "ldap://cn=admin@h"],
    [
      "URI without password untouched",
      "https://pve.example.com:8006/api2/json",
      "https://pve.example.com:8006/api2/json",
    ],
    ["bearer token", "Authorization: Bearer abc.def.ghi", "Authorization: Bearer [REDACTED]"],
    ["Proxmox token header", "PVEAPIToken=root@pam!op=0b1c-22", "PVEAPIToken=root@pam!op=[REDACTED]"],
    ["password=", "password=hunter2 user=x", "password=[REDACTED] user=x"],
    ["JSON password", '{"password":"hunter2"}', '{"password":"[REDACTED]"}'],
    ["prefixed env key", "PGPASSWORD=hunter2 psql", "PGPASSWORD=[REDACTED] psql"],
    ["snake_case key", "db_password=hunter2, retry", "db_password=[REDACTED], retry"],
    ["token_secret key", "token_secret=abc-def", "token_secret=[REDACTED]"],
    ["single-quoted value with spaces", "password='a b c' user=x", "password='[REDACTED]' user=x"],
    ["double-quoted value with spaces", 'secret: "a b c" user=x', 'secret: "[REDACTED]" user=x'],
    ["api_key", "api_key=k-123", "api_key=[REDACTED]"],
    [
      "words that only start like a key untouched",
      "tokens=5 passwordless=true",
      "tokens=5 passwordless=true",
    ],
    ["API key header", "X-API-Key: k3y-abcdef", "X-API-Key: [REDACTED]"],
    ["bare authorization header", "authorization: s3cr3t-value", "authorization: [REDACTED]"],
    [
      "Proxmox token header with a space after the prefix",
      "Authorization: PVEAPIToken root@pam!op=0b1c-22aa",
      "Authorization: PVEAPIToken root@pam!op=[REDACTED]",
    ],
    [
      "Proxmox ticket cookie",
      "PVEAuthCookie=PVE:root@pam:65F0A1B2::c2lnbmF0dXJl",
      "PVEAuthCookie=[REDACTED]",
    ],
    ["cookie header", "Cookie: PVEAuthCookie=PVE:root@pam:65F0A1B2::c2ln", "Cookie: [REDACTED]"],
    ["CSRF token header", "CSRFPreventionToken: 65F0A1B2:Qk9HVVM", "CSRFPreventionToken: [REDACTED]"],
    [
      "double-encoded JSON",
      String.raw`body {\"password\":\"hunter22\"}`,
      String.raw`body {\"password\":\"[REDACTED]\"}`,
    ],
    [
      "JSON encoded three times",
      String.raw`{\\\"token\\\":\\\"abc-123\\\"}`,
      String.raw`{\\\"token\\\":\\\"[REDACTED]\\\"}`,
    ],
    [
      "Proxmox token header inside escaped JSON keeps the token id",
      String.raw`{\"Authorization\":\"PVEAPIToken=root@pam!op=0b1c-22aa\"}`,
      String.raw`{\"Authorization\":\"PVEAPIToken=root@pam!op=[REDACTED]\"}`,
    ],
  ])("pattern: %s", (_name, input, expected) => {
    expect(new Redactor().redactText(input)).toBe(expected);
  });

  it.each([
    ["set token=", "end of a string after the key"],
    ['password="a b" c', "escaped quotes inside a string"],
    ["PGPASSWORD=x1", "prefixed key"],
    ["password='a b'", "single quotes"],
  ])("keeps a JSON line valid: %s (%s)", (msg) => {
    const line = JSON.stringify({ msg, next: "v", pwd: 5, token: { name: "ref" } });
    const out = new Redactor().redactJsonLine(line);
    expect(() => JSON.parse(out)).not.toThrow();
    expect(JSON.parse(out).next).toBe("v");
    expect(out).not.toContain('"pwd":5');
  });

  it("keeps a JSON line valid when a Proxmox token header is quoted inside a string", () => {
    const line = JSON.stringify({ body: '{"Authorization":"PVEAPIToken=root@pam!op=0b1c-22aa"}', next: "v" });
    const out = new Redactor().redactJsonLine(line);
    expect(out).not.toContain("0b1c-22aa");
    expect(JSON.parse(out)).toEqual({
      body: '{"Authorization":"PVEAPIToken=root@pam!op=[REDACTED]"}',
      next: "v",
    });
  });

  it("removes the base64 form of a registered secret, as Secret .data carries it", () => {
    const r = new Redactor();
    r.registerSecret(tokenSecret);
    const encoded = Buffer.from(tokenSecret).toString("base64");
    expect(r.redactText(`data: ${encoded}`)).toBe(`data: ${REDACTED}`);
  });

  it("redacts fields named like secrets, nested and in arrays, keeps references", () => {
    const r = new Redactor();
    const out = r.redact({
      proxmox: {
        tokenId: "root@pam!op",
        tokenSecret: "abcd-efgh",
        credentialsSecretRef: { name: "pve-token" },
      },
      list: [{ password: "x1y2z3" }],
      env: { SQL_URI: "postgres://a@b/c" },
    });
    expect(out).toEqual({
      proxmox: { tokenId: "root@pam!op", tokenSecret: REDACTED, credentialsSecretRef: { name: "pve-token" } },
      list: [{ password: REDACTED }],
      env: { SQL_URI: REDACTED },
    });
  });

  it("redacts every value under a secret-looking key, whatever its shape, but never a reference", () => {
    const out = new Redactor().redact({
      password: ["hunter22", "hunter23"],
      tokenSecret: { value: "abc-def-123" },
      apiKey: 123456789,
      credentialsSecretRef: { name: "pve-token", key: "tokenSecret" },
      uriSecretRef: { name: "db", key: "uri" },
      cleared: { password: null },
    });
    expect(out).toEqual({
      password: REDACTED,
      tokenSecret: REDACTED,
      apiKey: REDACTED,
      credentialsSecretRef: { name: "pve-token", key: "tokenSecret" },
      uriSecretRef: { name: "db", key: "uri" },
      cleared: { password: null },
    });
  });

  it("turns errors into plain objects with message, stack, fields and cause redacted", () => {
    const r = new Redactor();
    r.registerSecret(tokenSecret);
    const cause = new Error(`upstream said ${tokenSecret}`);
    const err = Object.assign(new Error(`cannot reach ${sqlUri}`, { cause }), {
      config: { headers: { Authorization: `PVEAPIToken=root@pam!op=${tokenSecret}` } },
    });
    const text = JSON.stringify(r.redact({ error: err }));
    expect(text).not.toContain(tokenSecret);
    expect(text).not.toContain(encodeURIComponent(dbPassword));
    expect(text).toContain("cannot reach postgres://manager:[REDACTED]@db.example.com");
    expect(text).toContain('"stack"');
    expect(text).toContain("upstream said [REDACTED]");
  });

  it("survives cycles", () => {
    const a: Record<string, unknown> = { name: "a" };
    a.self = a;
    expect(new Redactor().redact(a)).toEqual({ name: "a", self: "[Circular]" });
  });

  it("ignores values too short to be secrets, so it cannot blank out the log", () => {
    const r = new Redactor();
    r.registerSecret("a");
    r.registerSecret("");
    expect(r.registeredCount).toBe(0);
  });
});

describe("blankOut", () => {
  it.each([
    ["no span", [], "abcdefgh"],
    ["one span", [{ start: 2, end: 4 }], `ab${REDACTED}efgh`],
    [
      "overlapping spans merge",
      [
        { start: 1, end: 4 },
        { start: 3, end: 6 },
      ],
      `a${REDACTED}gh`,
    ],
    [
      "touching spans merge",
      [
        { start: 0, end: 2 },
        { start: 2, end: 3 },
      ],
      `${REDACTED}defgh`,
    ],
    [
      "nested and unsorted spans",
      [
        { start: 5, end: 6 },
        { start: 1, end: 7 },
      ],
      `a${REDACTED}h`,
    ],
  ])("%s", (_case, spans, expected) => {
    expect(blankOut("abcdefgh", spans)).toBe(expected);
  });
});

describe("logger", () => {
  it("writes JSON lines with level, message and fields", async () => {
    const { logger, lines, flush } = capture(new Redactor());
    logger.child({ reconcileID: "r-1" }).info("reconciled", { key: "ns/a" });
    await flush();
    const record = JSON.parse(lines[0]!);
    expect(record).toMatchObject({ level: "info", msg: "reconciled", key: "ns/a", reconcileID: "r-1" });
    expect(record.time).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("respects the level", async () => {
    const r = new Redactor();
    const lines: string[] = [];
    const stream = new Writable({ write: (c: Buffer, _e, d) => (lines.push(c.toString()), d()) });
    createLogger({ level: "info", stream, redactor: r }).debug("hidden");
    await new Promise((res) => setImmediate(res));
    expect(lines).toEqual([]);
  });

  it("logs an error's cause chain, redacted, when the error itself is logged", async () => {
    const r = new Redactor();
    r.registerSecret(tokenSecret);
    const { logger, lines, flush } = capture(r);
    const root = new Error(`pve answered 401 for ${tokenSecret}`);
    logger.error(new Error("realm sync failed", { cause: new Error("login failed", { cause: root }) }));
    await flush();
    const record = JSON.parse(lines[0]!);
    expect(record.msg).toBe("realm sync failed");
    expect(record.cause.message).toBe("login failed");
    expect(record.cause.cause.message).toBe("pve answered 401 for [REDACTED]");
    expect(lines[0]).not.toContain(tokenSecret);
  });

  it("catches a secret the structural pass leaves alone (an object key) in the finished line", async () => {
    const r = new Redactor();
    r.registerSecret(tokenSecret);
    const { logger, lines, flush } = capture(r);
    // Pools keyed by their connection URI; sessions keyed by their token.
    logger.info("pools", { pools: new Map([[sqlUri, 3]]), sessions: { [tokenSecret]: "root@pam" } });
    await flush();
    expect(lines[0]).not.toContain(encodeURIComponent(dbPassword));
    expect(lines[0]).not.toContain(tokenSecret);
    expect(JSON.parse(lines[0]!).pools).toEqual({
      "postgres://manager:[REDACTED]@db.example.com:5432/manager": 3,
    });
  });

  it("never writes a secret, whichever way it is handed to the logger", async () => {
    const r = new Redactor();
    r.registerSecret(tokenSecret);
    r.registerSecret(dbPassword);
    r.registerSecret('quo"te\\slash');
    const { logger, lines, flush } = capture(r);
    const err = new Error(`login failed for ${sqlUri} with ${tokenSecret}`);
    logger.error(err);
    logger.error("request failed", err);
    logger.error("request failed", { error: err });
    logger.warn(`concatenated ${tokenSecret} and ${dbPassword}`);
    logger.info("nested", { a: { b: [{ c: `x${tokenSecret}y` }] } });
    logger.info("escaped", { v: 'quo"te\\slash' });
    logger.info("uri", { uri: "postgres://u:PASS@h/db", dsn: "postgres://u:PASS@h/db" });
    logger.info("buffer", { data: Buffer.from(tokenSecret) });
    logger.info('odd uri postgres://u:p@s"s/x@h/db and more', { next: "a@b" });
    await flush();
    expect(lines).toHaveLength(9);
    for (const line of lines) {
      expect(line).not.toContain(tokenSecret);
      expect(line).not.toContain(dbPassword);
      expect(line).not.toContain(encodeURIComponent(dbPassword));
      expect(line).not.toContain("PASS");
      expect(line).not.toMatch(/p@s|s\/x/);
      expect(line).not.toContain('quo\\"te');
      expect(() => JSON.parse(line)).not.toThrow();
    }
    expect(lines.join("\n")).toContain(REDACTED);
  });
});
