// /access/domains in the simulator: parameters, defaults, validation, digest and messages of the
// reference (no LDAP server needed here; the sync is in realm-sync.test.ts).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, ok, SEED_REALM } from "./helpers.js";
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
      expect(r.reason).toBe(`domain '${realm}' already exists`);
      expect(r.body.message).toBe(`domain '${realm}' already exists\n`);
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
      user_attr: "property is missing and it is not optional",
    });
    const missing = await call(sim, "POST", "/access/domains", { realm: "r2", type: "ldap" });
    expect(missing.body.errors).toEqual({
      server1: "property is missing and it is not optional",
      base_dn: "property is missing and it is not optional",
      user_attr: "property is missing and it is not optional",
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
    expect(stale.reason).toBe("detected modified configuration - file changed by other user? Try again.");
    const withType = await call(sim, "PUT", "/access/domains/ldap-b", { type: "ldap" });
    expect(withType.status).toBe(400);
    expect(withType.body.errors).toHaveProperty("type");
    const both = await call(sim, "PUT", "/access/domains/ldap-b", { comment: "y", delete: "comment" });
    expect(both.body.errors).toEqual({ delete: "cannot set and delete 'comment' at the same time" });
    const req = await call(sim, "PUT", "/access/domains/ldap-b", { delete: "server1" });
    expect(req.reason).toBe("cannot delete required option 'server1'");
    const none = await call(sim, "PUT", "/access/domains/nope", { comment: "x" });
    expect(none.reason).toBe("domain 'nope' does not exist");
  });

  it("deletes realms, not built-in ones", async () => {
    expect(await ok(sim, "DELETE", "/access/domains/ldap-b")).toBeNull();
    expect((await call(sim, "GET", "/access/domains/ldap-b")).reason).toBe("domain 'ldap-b' does not exist");
    expect((await call(sim, "DELETE", "/access/domains/ldap-b")).reason).toBe(
      "domain 'ldap-b' does not exist",
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
