// /access/domains in the simulator: parameters, defaults, validation, digest and messages of the
// reference (no LDAP server needed here; the sync is in realm-sync.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, ok, SEED_REALM, type Params } from "./helpers.js";
import { PveSimulator } from "./simulator.js";

let sim: PveSimulator;

beforeAll(async () => {
  // The realm routes are part of every simulator (registered in simulator.ts).
  sim = await PveSimulator.start({ speed: 0 });
});
afterAll(() => sim?.stop());

describe("/access/domains", () => {
  it("lists the built-in realms without authentication", async () => {
    const r = await call(sim, "GET", "/access/domains", {}, { authorization: null });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual([
      { realm: "pam", type: "pam", comment: "Linux PAM standard authentication" },
      { realm: "pve", type: "pve", comment: "Proxmox VE authentication server" },
    ]);
  });

  it("creates an LDAP realm with the seed's settings; reads it back with a digest and without defaults", async () => {
    expect(await ok(sim, "POST", "/access/domains", { ...SEED_REALM, password: "not-shown" })).toBeNull();
    const cfg = (await ok(sim, "GET", "/access/domains/ldap")) as Record<string, unknown>;
    expect(cfg).toEqual({
      type: "ldap",
      base_dn: "dc=example,dc=com",
      user_attr: "uid",
      default: 1,
      server1: "ldap1",
      server2: "ldap2",
      mode: "ldaps",
      verify: 0,
      sync_attributes: "email=mail",
      "sync-defaults-options": "scope=both",
      digest: expect.stringMatching(/^[0-9a-f]{40}$/),
    });
    const list = (await ok(sim, "GET", "/access/domains")) as { realm: string; default?: number }[];
    expect(list.find((r) => r.realm === "ldap")).toEqual({ realm: "ldap", type: "ldap", default: 1 });
  });

  it("refuses an existing realm, built-in ones included", async () => {
    for (const realm of ["ldap", "pam"]) {
      const r = await call(sim, "POST", "/access/domains", { ...SEED_REALM, realm });
      expect(r.status).toBe(500);
      expect(r.reason).toBe(`add auth server failed: domain '${realm}' already exists`);
      expect(r.body.message).toBe(`add auth server failed: domain '${realm}' already exists\n`);
    }
  });

  it("validates parameters with PVE's per-parameter messages", async () => {
    const r = await call(sim, "POST", "/access/domains", {
      realm: "x".repeat(33),
      type: "ldap",
      mode: "ldapx",
      port: 70000,
      verify: "maybe",
      server1: "not a host",
      base_dn: "example.com",
      user_classes: "inet-org person!",
    });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({
      realm: "value may only be 32 characters long",
      mode: "value 'ldapx' does not have a value in the enumeration 'ldap, ldaps, ldap+starttls'",
      port: "value must have a maximum value of 65535",
      verify: "type check ('boolean') failed - got 'maybe'",
      server1: "invalid format - value does not look like a valid address: not a host",
      base_dn: "value does not match the regex pattern",
      user_classes: "invalid format - value 'person!' does not look like a simple ldap attribute name",
    });
    const bad = await call(sim, "POST", "/access/domains", { ...SEED_REALM, realm: "1bad" });
    expect(bad.body.errors).toEqual({ realm: "invalid format - value does not look like a valid realm" });
    const unknown = await call(sim, "POST", "/access/domains", { ...SEED_REALM, realm: "r3", bogus: 1 });
    expect(unknown.body.errors).toEqual({
      bogus: "property is not defined in schema and the schema does not allow additional properties",
    });
  });

  it("setting default clears the flag on every other realm", async () => {
    await ok(sim, "POST", "/access/domains", { ...SEED_REALM, realm: "ldap-b", default: 1 });
    const list = (await ok(sim, "GET", "/access/domains")) as { realm: string; default?: number }[];
    expect(list.filter((r) => r.default).map((r) => r.realm)).toEqual(["ldap-b"]);
    await ok(sim, "PUT", "/access/domains/ldap", { default: 1 });
    const again = (await ok(sim, "GET", "/access/domains")) as { realm: string; default?: number }[];
    expect(again.filter((r) => r.default).map((r) => r.realm)).toEqual(["ldap"]);
  });

  it("updates with digest checks, delete of optional keys, and refuses type", async () => {
    const { digest } = (await ok(sim, "GET", "/access/domains/ldap-b")) as { digest: string };
    await ok(sim, "PUT", "/access/domains/ldap-b", { comment: "second", digest, delete: "server2" });
    const cfg = (await ok(sim, "GET", "/access/domains/ldap-b")) as Record<string, unknown>;
    expect(cfg["comment"]).toBe("second");
    expect(cfg).not.toHaveProperty("server2");
    const stale = await call(sim, "PUT", "/access/domains/ldap-b", { comment: "x", digest });
    expect(stale.status).toBe(500);
    expect(stale.reason).toBe(
      "update auth server failed: detected modified configuration - file changed by other user? Try again.",
    );
    const withType = await call(sim, "PUT", "/access/domains/ldap-b", { type: "ldap" });
    expect(withType.status).toBe(400);
    expect(withType.body.errors).toHaveProperty("type");
    const both = await call(sim, "PUT", "/access/domains/ldap-b", { comment: "y", delete: "comment" });
    expect(both.body.errors).toEqual({ delete: "cannot set and delete 'comment' at the same time" });
    const req = await call(sim, "PUT", "/access/domains/ldap-b", { delete: "server1" });
    expect(req.reason).toBe("update auth server failed: cannot delete required option 'server1'");
  });

  it("deletes realms, not built-in ones", async () => {
    expect(await ok(sim, "DELETE", "/access/domains/ldap-b")).toBeNull();
    expect((await call(sim, "GET", "/access/domains/ldap-b")).reason).toBe("domain 'ldap-b' does not exist");
    expect((await call(sim, "DELETE", "/access/domains/ldap-b")).reason).toBe(
      "delete auth server failed: authentication domain 'ldap-b' does not exist",
    );
    expect((await call(sim, "DELETE", "/access/domains/pam")).status).toBe(500);
  });

  it("needs Realm.Allocate on /access/realm to change realms", async () => {
    const token = sim.addToken({ id: "op@pve!realm", privileges: { "/vms": ["VM.Audit"] } });
    const r = await call(
      sim,
      "POST",
      "/access/domains",
      { ...SEED_REALM, realm: "r9" },
      { authorization: token.authorization },
    );
    expect(r.status).toBe(403);
    expect(r.reason).toBe("Permission check failed (/access/realm, Realm.Allocate)");
  });

  it("refuses a sync without a scope in the call or in the realm's sync-defaults-options", async () => {
    await ok(sim, "POST", "/access/domains", {
      ...SEED_REALM,
      realm: "noscope",
      "sync-defaults-options": "enable-new=1",
    });
    const r = await call(sim, "POST", "/access/domains/noscope/sync", {});
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({
      scope: "Not passed as parameter and not defined in realm default sync options.",
    });
    const bad = await call(sim, "POST", "/access/domains/noscope/sync", { scope: "all" });
    expect(bad.status).toBe(400);
    const token = sim.addToken({
      id: "op@pve!sync",
      privileges: { "/access/realm/noscope": ["Realm.AllocateUser"] },
    });
    const denied = await call(
      sim,
      "POST",
      "/access/domains/noscope/sync",
      { scope: "users" },
      { authorization: token.authorization },
    );
    expect(denied.reason).toBe("Permission check failed (/access/groups, User.Modify)");
  });
});

describe("facts: realms (reference: More facts read from the sources)", () => {
  const create = (realm: string, extra: Params = {}) =>
    call(sim, "POST", "/access/domains", { ...SEED_REALM, realm, default: 0, ...extra });
  const read = async (realm: string) =>
    (await ok(sim, "GET", `/access/domains/${realm}`)) as Record<string, unknown>;

  it("GET re-prints property strings with sorted keys (sync-defaults-options)", async () => {
    const written = "scope=both,enable-new=1,remove-vanished=acl;entry;properties";
    expect((await create("sorted", { "sync-defaults-options": written })).status).toBe(200);
    expect((await read("sorted"))["sync-defaults-options"]).toBe(
      "enable-new=1,remove-vanished=acl;entry;properties,scope=both",
    );
    await ok(sim, "PUT", "/access/domains/sorted", { "sync-defaults-options": "scope=users,enable-new=yes" });
    expect((await read("sorted"))["sync-defaults-options"]).toBe("enable-new=1,scope=users");
    // The deprecated full/purge are stored as remove-vanished.
    await ok(sim, "PUT", "/access/domains/sorted", { "sync-defaults-options": "scope=both,purge=1,full=1" });
    expect((await read("sorted"))["sync-defaults-options"]).toBe(
      "remove-vanished=entry;properties;acl,scope=both",
    );
  });

  it("a PUT with nothing to change is HTTP 500 no options specified", async () => {
    await create("unchanged");
    const { digest } = (await read("unchanged")) as { digest: string };
    for (const params of [{}, { digest }, { "check-connection": 0 }]) {
      const r = await call(sim, "PUT", "/access/domains/unchanged", params);
      expect([r.status, r.reason]).toEqual([500, "update auth server failed: no options specified"]);
    }
    // A new bind password alone is a change.
    expect((await call(sim, "PUT", "/access/domains/unchanged", { password: "s3cret" })).status).toBe(200);
  });

  it.each(["server1", "user_attr", "base_dn"])(
    "missing %s on create is HTTP 500 add auth server failed: missing value for required option",
    async (option) => {
      const r = await create(`miss-${option.replace("_", "")}`, { [option]: undefined });
      expect(r.status).toBe(500);
      expect(r.reason).toBe(`add auth server failed: missing value for required option '${option}'`);
      expect(r.body.errors).toBeUndefined();
    },
  );

  it("every realm write error carries its prefix (add, update, delete auth server failed)", async () => {
    await create("prefixed");
    const cases: [string, string, Params, string][] = [
      [
        "POST",
        "/access/domains",
        { ...SEED_REALM, realm: "prefixed" },
        "add auth server failed: domain 'prefixed' already exists",
      ],
      [
        "PUT",
        "/access/domains/nope",
        { comment: "x" },
        "update auth server failed: domain 'nope' does not exist",
      ],
      [
        "PUT",
        "/access/domains/prefixed",
        { comment: "x", digest: "0".repeat(40) },
        "update auth server failed: detected modified configuration - file changed by other user? Try again.",
      ],
      [
        "DELETE",
        "/access/domains/nope",
        {},
        "delete auth server failed: authentication domain 'nope' does not exist",
      ],
    ];
    for (const [method, path, params, reason] of cases) {
      const r = await call(sim, method, path, params);
      expect([r.status, r.reason, r.body.message]).toEqual([500, reason, `${reason}\n`]);
    }
  });

  it("syncing an unknown realm is HTTP 400 with errors.realm", async () => {
    const r = await call(sim, "POST", "/access/domains/nope/sync", { scope: "users" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ realm: "Realm does not exist." });
  });

  it("realm names: at least 2 characters, first a letter, at most 32", async () => {
    const invalid = "invalid format - value does not look like a valid realm";
    const bad: [string, string][] = [
      ["a", invalid],
      ["1x", invalid],
      ["b".repeat(33), "value may only be 32 characters long"],
    ];
    for (const [realm, error] of bad) {
      expect((await create(realm)).body.errors).toEqual({ realm: error });
      for (const [method, path, params] of [
        ["GET", `/access/domains/${realm}`, {}],
        ["PUT", `/access/domains/${realm}`, { comment: "x" }],
        ["DELETE", `/access/domains/${realm}`, {}],
        ["POST", `/access/domains/${realm}/sync`, { scope: "users" }],
      ] as const) {
        const r = await call(sim, method, path, params);
        expect([r.status, r.body.errors]).toEqual([400, { realm: error }]);
      }
    }
    for (const realm of ["ab", `a${"1".repeat(31)}`]) {
      expect((await create(realm)).status).toBe(200);
      expect((await call(sim, "DELETE", `/access/domains/${realm}`)).status).toBe(200);
    }
  });
});
