import { describe, expect, it } from "vitest";
import {
  buildHash,
  buildTag,
  canonicalJson,
  configHash,
  configTag,
  PROXMOX_TAG,
  serverBuild,
  type ServerBuild,
} from "../../src/gateway/config-hash.js";
import { secretsWithUri } from "../support/secrets.js";
import { specWith } from "../support/spec.js";

const secrets = secretsWithUri("postgres://manager:pw@db:5432/manager");
const hashOf = (overrides: Record<string, unknown> = {}, server = "ldap1", s = secrets) =>
  configHash(serverBuild(specWith(overrides), server, s));
const buildHashOf = (overrides: Record<string, unknown> = {}, server = "ldap1", s = secrets) =>
  buildHash(serverBuild(specWith(overrides), server, s));

describe("configHash", () => {
  it("is 16 lowercase hex digits, usable in a Proxmox tag", () => {
    const hash = hashOf();
    expect(hash).toMatch(/^[0-9a-f]{16}$/);
    expect(configTag(hash)).toMatch(PROXMOX_TAG);
    expect(buildHashOf()).toMatch(/^[0-9a-f]{16}$/);
    expect(buildTag(buildHashOf())).toMatch(PROXMOX_TAG);
  });

  it("is stable across runs (a pinned value) and key order", () => {
    const build = serverBuild(specWith(), "ldap1", secrets);
    const reordered = Object.fromEntries(Object.entries(build).reverse()) as typeof build;
    expect(configHash(reordered)).toBe(configHash(build));
    // Pinned: a change here restarts every server in every site; it must be deliberate.
    expect(configHash(build)).toBe(PINNED);
    // A change here rebuilds every server in every site.
    expect(buildHash(build)).toBe(PINNED_BUILD);
  });

  it("ignores the order of env entries and of spec keys", () => {
    const a = specWith({
      extraEnv: [
        { name: "A", value: "1" },
        { name: "B", value: "2" },
      ],
    });
    const b = specWith({
      extraEnv: [
        { name: "B", value: "2" },
        { name: "A", value: "1" },
      ],
    });
    expect(configHash(serverBuild(a, "ldap1", secrets))).toBe(configHash(serverBuild(b, "ldap1", secrets)));
  });

  it.each([
    ["image", { image: "ghcr.io/mieweb/ldap-gateway:1.5.0" }],
    ["domain", { domain: "example.org" }],
    ["base DN", { baseDN: "dc=other" }],
    ["notifications", { notifications: { url: "https://push.example.com/n" } }],
    ["requireAuthForSearch", { requireAuthForSearch: true }],
    ["extra env", { extraEnv: [{ name: "LOG_LEVEL", value: "debug" }] }],
    ["group members", { groupMembers: false }],
    ["disk", { resources: { diskGiB: 8 } }],
    ["node", { servers: [{ name: "ldap1", node: "pve2" }, { name: "ldap2" }] }],
    ["static address", { servers: [{ name: "ldap1", network: { ipv4: "10.0.0.5/24" } }, { name: "ldap2" }] }],
    [
      "root storage",
      {
        proxmox: {
          url: "https://pve:8006",
          node: "pve1",
          credentialsSecretRef: { name: "t" },
          rootStorage: "ceph",
        },
      },
    ],
    [
      "bridge",
      {
        proxmox: {
          url: "https://pve:8006",
          node: "pve1",
          credentialsSecretRef: { name: "t" },
          bridge: "vmbr1",
        },
      },
    ],
  ])("changes with %s", (_what, overrides) => {
    expect(hashOf(overrides)).not.toBe(hashOf());
  });

  it("changes with rollout.restartedAt, in the build hash too: a restart on request is a new container", () => {
    const restarted = { rollout: { restartedAt: "2026-12-02T08:00:00Z" } };
    expect(hashOf(restarted)).not.toBe(hashOf());
    expect(buildHashOf(restarted)).not.toBe(buildHashOf());
    expect(buildHashOf({ rollout: { restartedAt: "2026-12-02T08:00:01Z" } })).not.toBe(
      buildHashOf(restarted),
    );
  });

  it("changes with the network gateway alone", () => {
    const withGateway = (gateway?: string) => ({
      servers: [
        { name: "ldap1", network: { ipv4: "10.0.0.5/24", ...(gateway ? { gateway } : {}) } },
        { name: "ldap2" },
      ],
    });
    expect(hashOf(withGateway("10.0.0.1"))).not.toBe(hashOf(withGateway()));
  });

  it("does not change when the URI Secret was made from a file (a trailing newline)", () => {
    const uri = "postgres://manager:pw@db:5432/manager";
    expect(hashOf({}, "ldap1", secretsWithUri(`${uri}\n`))).toBe(hashOf({}, "ldap1", secretsWithUri(uri)));
  });

  it("changes with the SQL URI (a rotated password needs new containers)", () => {
    expect(hashOf({}, "ldap1", secretsWithUri("postgres://manager:new@db:5432/manager"))).not.toBe(hashOf());
  });

  it("differs between the two servers (their LDAP_COMMON_NAME)", () => {
    expect(hashOf({}, "ldap2")).not.toBe(hashOf({}, "ldap1"));
  });

  it.each([
    ["cores (changed in place)", { resources: { cores: 2 } }],
    ["memory (changed in place)", { resources: { memoryMiB: 1024 } }],
    ["swap (changed in place)", { resources: { swapMiB: 0 } }],
    ["startOnBoot (changed in place)", { resources: { startOnBoot: false } }],
    ["the realm", { realm: { name: "corp", syncInterval: "5m" } }],
    ["the rollout settings", { rollout: { strategy: "CreateThenSwap", paused: true } }],
    ["the deletion policy", { deletionPolicy: "Delete" }],
    ["node DNS", { nodeDns: { nameserver: "10.0.0.2" } }],
    [
      "the image storage",
      {
        proxmox: {
          url: "https://pve.example.com:8006",
          node: "pve1",
          credentialsSecretRef: { name: "pve-token" },
          imageStorage: "nfs",
        },
      },
    ],
    [
      "the Proxmox URL",
      { proxmox: { url: "https://other:8006", node: "pve1", credentialsSecretRef: { name: "pve-token" } } },
    ],
  ])("does not change with %s", (_what, overrides) => {
    expect(hashOf(overrides)).toBe(hashOf());
  });
});

describe("buildHash", () => {
  const proxmoxWith = (change: Record<string, unknown>) => ({
    proxmox: { url: "https://pve:8006", node: "pve1", credentialsSecretRef: { name: "t" }, ...change },
  });

  it.each([
    ["image", { image: "ghcr.io/mieweb/ldap-gateway:1.5.0" }],
    ["disk", { resources: { diskGiB: 8 } }],
    ["node", { servers: [{ name: "ldap1", node: "pve2" }, { name: "ldap2" }] }],
    ["static address", { servers: [{ name: "ldap1", network: { ipv4: "10.0.0.5/24" } }, { name: "ldap2" }] }],
    ["root storage", proxmoxWith({ rootStorage: "ceph" })],
    ["bridge", proxmoxWith({ bridge: "vmbr1" })],
  ])("changes with %s (a rebuild), and so does the config hash", (_what, overrides) => {
    expect(buildHashOf(overrides)).not.toBe(buildHashOf());
    expect(hashOf(overrides)).not.toBe(hashOf());
  });

  it.each([
    ["the domain", { domain: "example.org" }],
    ["notifications", { notifications: { url: "https://push.example.com/n" } }],
    ["extra env", { extraEnv: [{ name: "LOG_LEVEL", value: "debug" }] }],
    ["group members", { groupMembers: false }],
    ["memory", { resources: { memoryMiB: 1024 } }],
  ])("does not change with %s (a restart at most)", (_what, overrides) => {
    expect(buildHashOf(overrides)).toBe(buildHashOf());
  });

  it("does not change with the SQL URI, and is the same for both servers on one node", () => {
    expect(buildHashOf({}, "ldap1", secretsWithUri("postgres://manager:new@db:5432/manager"))).toBe(
      buildHashOf(),
    );
    expect(buildHashOf({}, "ldap2")).toBe(buildHashOf({}, "ldap1"));
  });

  it("ignores fields that are not build inputs", () => {
    const build = serverBuild(specWith(), "ldap1", secrets);
    const otherEnv: ServerBuild = { ...build, env: [["X", "1"]] };
    expect(buildHash(otherEnv)).toBe(buildHash(build));
    expect(configHash({ ...build, extra: 1 } as typeof build)).toBe(configHash(build));
  });
});

describe("canonicalJson", () => {
  it.each([
    [{ b: 1, a: { d: [3, { y: 1, x: 2 }], c: null } }, '{"a":{"c":null,"d":[3,{"x":2,"y":1}]},"b":1}'],
    [{ a: undefined, b: "x" }, '{"b":"x"}'],
    [[], "[]"],
    ["s", '"s"'],
  ])("%j -> %s", (value, json) => {
    expect(canonicalJson(value)).toBe(json);
  });
});

// Re-pinned when cores, memory and swap left the hash (they are changed in
// place, so a memory bump must not restart a directory server) and the group
// members' columns joined the default env.
const PINNED = "b1d8c2998e2a6bd3";
const PINNED_BUILD = "e52452e1ed0cf366";
