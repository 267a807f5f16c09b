import { Redactor } from "../../src/observability/redact.js";
import { describe, expect, it } from "vitest";
import { buildHash, configHash, serverBuild } from "../../src/gateway/config-hash.js";
import { renderGatewayEnv } from "../../src/gateway/env.js";
import { parseTags } from "../../src/proxmox/tags.js";
import { isPinnedTag, restartFilename } from "../../src/proxmox/oci.js";
import {
  desiredPair,
  rebasedServer,
  realmManagerOf,
  realmMarker,
  realmOrigin,
  type DesiredResult,
} from "../../src/reconcile/desired.js";
import type { DesiredPair } from "../../src/reconcile/model.js";
import { secretsWithUri } from "../support/secrets.js";
import { specWith } from "../support/spec.js";

const URI = "postgres://manager:s3cr3t@db.example.com:5432/manager";
const META = { namespace: "ldap", name: "site-a", uid: "3f2b8c1e-9a4d-4e7b-8f00-1c2d3e4f5a6b" };

function pairOf(overrides: Record<string, unknown> = {}, uri = URI): DesiredPair {
  const result = desiredPair(specWith(overrides), META, secretsWithUri(uri));
  if (!result.ok) throw new Error(result.problem.message);
  return result.pair;
}

describe("desiredPair", () => {
  it("renders both servers: create call, env, hashes and tags of the runbook's container", () => {
    const spec = specWith();
    const [one, two] = pairOf().servers;
    const build = serverBuild(spec, "ldap1", secretsWithUri(URI));
    expect(one).toMatchObject({
      name: "ldap1",
      node: "pve1",
      image: "ghcr.io/mieweb/ldap-gateway:1.4.0",
      configHash: configHash(build),
      buildHash: buildHash(build),
      imageVolume: "local:vztmpl/ldap-gateway_1.4.0.tar",
      pull: { storage: "local", reference: "ghcr.io/mieweb/ldap-gateway:1.4.0" },
    });
    expect(one!.env).toEqual(renderGatewayEnv(spec, "ldap1", secretsWithUri(URI)));
    expect(one!.create).toEqual({
      ostemplate: "local:vztmpl/ldap-gateway_1.4.0.tar",
      hostname: "ldap1",
      cores: 1,
      memory: 512,
      swap: 512,
      onboot: true,
      description: `ldap1 of LdapPair ldap/site-a (uid ${META.uid}), managed by ldappair-operator`,
      net0: "name=eth0,bridge=vmbr0,ip=dhcp",
      rootfs: "local-lvm:4",
      unprivileged: true,
      tags: expect.any(String),
    });
    expect(parseTags(String(one!.create.tags))).toEqual({
      owners: [META.uid],
      servers: ["ldap1"],
      configHashes: [one!.configHash],
      buildHashes: [one!.buildHash],
      foreign: [],
    });
    expect(one!.inPlace).toEqual({
      cores: 1,
      memory: 512,
      swap: 512,
      onboot: true,
      description: one!.create.description,
    });
    expect(two!.name).toBe("ldap2");
    expect(two!.configHash).not.toBe(one!.configHash); // LDAP_COMMON_NAME differs
    expect(two!.buildHash).toBe(one!.buildHash); // same node, same image
    expect(one!.address).toBeUndefined();
  });

  it("places each server on its node, with a static address and gateway when given", () => {
    const [one, two] = pairOf({
      servers: [
        { name: "ldap1", node: "pve1", network: { ipv4: "10.0.0.5/24", gateway: "10.0.0.1" } },
        { name: "ldap2", node: "pve2", network: { ipv4: "10.0.0.6/24" } },
      ],
      resources: { memoryMiB: 1024, diskGiB: 8, startOnBoot: false },
    }).servers;
    expect(one!.create.net0).toBe("name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1");
    expect(two!.create.net0).toBe("name=eth0,bridge=vmbr0,ip=10.0.0.6/24");
    expect([one!.address, two!.address]).toEqual(["10.0.0.5", "10.0.0.6"]);
    expect([one!.node, two!.node]).toEqual(["pve1", "pve2"]);
    expect(one!.create).toMatchObject({ memory: 1024, rootfs: "local-lvm:8", onboot: false });
    expect(one!.buildHash).not.toBe(two!.buildHash);
  });

  it("renders the runbook's realm table, names added with syncNames, synced on spec.proxmox.node", () => {
    expect(pairOf().realm).toEqual({
      name: "ldap",
      syncNode: "pve1",
      settings: {
        base_dn: "dc=example,dc=com",
        user_attr: "uid",
        server1: "ldap1",
        server2: "ldap2",
        mode: "ldaps",
        port: undefined,
        verify: false,
        default: true,
        tfa: undefined,
        sync_attributes: "email=mail",
        "sync-defaults-options": "scope=both",
      },
    });
    expect(pairOf({ realm: { syncNames: true } }).realm!.settings.sync_attributes).toBe(
      "email=mail,firstname=givenname,lastname=sn",
    );
    expect(pairOf({ realm: { manage: false } }).realm).toBeUndefined();
  });

  it.each([
    [{ nameserver: "10.0.0.2" }, ["pve1"], "example.com"],
    [{ nameserver: "10.0.0.2", searchDomain: "Corp.Example.com." }, ["pve1"], "corp.example.com"],
    [{ nameserver: "10.0.0.2", nodes: ["pve3"] }, ["pve3"], "example.com"],
  ])("node DNS %j -> nodes %j, search %s", (nodeDns, nodes, search) => {
    expect(pairOf({ nodeDns }).nodeDns).toEqual({ nameserver: "10.0.0.2", nodes, search });
  });

  it("defaults the DNS nodes to the servers' nodes and the sync node, each once", () => {
    const pair = pairOf({
      nodeDns: { nameserver: "10.0.0.2" },
      servers: [
        { name: "ldap1", node: "pve2" },
        { name: "ldap2", node: "pve3" },
      ],
    });
    expect(pair.nodeDns!.nodes).toEqual(["pve2", "pve3", "pve1"]);
    expect(pairOf().nodeDns).toBeUndefined();
  });

  it.each([
    [
      "a URI that is not postgres://",
      "mysql://u:s3cr3t@db/x",
      "SqlUriMalformed",
      /key "uri" of Secret ldap\/manager-db is not a postgres:\/\/ or postgresql:\/\/ URI with a host/,
    ],
    [
      "a bare word",
      "s3cr3t",
      "SqlUriMalformed",
      /such as postgres:\/\/user@db\.example\.com:5432\/database \(the password after the user and a colon\)$/,
    ],
    [
      "a URI with a newline inside",
      "postgres://u:s3cr3t@db/x\nmore",
      "EnvValueInvalid",
      /SQL_URI contains a newline/,
    ],
  ])("refuses %s, without its value", (_what, uri, reason, message) => {
    const result: DesiredResult = desiredPair(specWith(), META, secretsWithUri(uri));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problem).toMatchObject({ reason, transient: false });
    expect(result.problem.message).toMatch(message);
    expect(result.problem.message).not.toContain("s3cr3t");
    // Nothing in it looks like a password to the redactor, so status and events show it whole.
    expect(new Redactor().redactText(result.problem.message)).toBe(result.problem.message);
  });
});

describe("a restart on request (rollout.restartedAt)", () => {
  const STAMP = "2026-12-02T08:00:00Z";
  it.each([
    ["a version", "ghcr.io/mieweb/ldap-gateway:1.4.0", true],
    ["a v-version", "ghcr.io/mieweb/ldap-gateway:v2", true],
    ["a pre-release", "ghcr.io/mieweb/ldap-gateway:1.5.0-rc.1", true],
    ["a commit", "ghcr.io/mieweb/ldap-gateway:3f2b8c1", true],
    ["a sha- tag", "ghcr.io/mieweb/ldap-gateway:sha-3f2b8c1e9a4d", true],
    ["latest", "ghcr.io/mieweb/ldap-gateway:latest", false],
    ["a branch", "ghcr.io/mieweb/ldap-gateway:dev", false],
    ["a registry port, latest", "registry.local:5000/ldap-gateway:latest", false],
    ["a registry port, a version", "registry.local:5000/ldap-gateway:1.4.0", true],
  ])("%s is pinned: %s -> %s", (_what, reference, pinned) => {
    expect(isPinnedTag(reference)).toBe(pinned);
  });

  it("pulls a mutable tag again under a name of its own: Proxmox refuses to overwrite a pulled file", () => {
    const latest = "ghcr.io/mieweb/ldap-gateway:latest";
    const before = pairOf({ image: latest }).servers[0]!;
    const after = pairOf({ image: latest, rollout: { restartedAt: STAMP } }).servers[0]!;
    expect(before.imageVolume).toBe("local:vztmpl/ldap-gateway_latest.tar");
    expect(after.imageVolume).toBe("local:vztmpl/ldap-gateway_latest-r20261202T080000Z.tar");
    expect(after.create.ostemplate).toBe(after.imageVolume);
    expect(after.pull).toEqual({ storage: "local", reference: latest });
    expect(restartFilename(latest, "2026-12-02T08:00:00.5+02:00")).toBe(
      "ldap-gateway_latest-r20261202T08000050200",
    );
    expect(after.buildHash).not.toBe(before.buildHash);
  });

  it("keeps the one volume of a pinned tag: the same image whenever it is pulled", () => {
    const after = pairOf({ rollout: { restartedAt: STAMP } }).servers[0]!;
    expect(after.imageVolume).toBe("local:vztmpl/ldap-gateway_1.4.0.tar");
    expect(after.buildHash).not.toBe(pairOf().servers[0]!.buildHash);
  });
});

describe("rebasedServer: the same server on the previous image (a rollback's rebuild)", () => {
  it("is the server the spec with that image renders", () => {
    const now = pairOf({ image: "ghcr.io/mieweb/ldap-gateway:1.5.0" }).servers[0]!;
    const before = pairOf().servers[0]!;
    const { build: _b, ...rebased } = rebasedServer(now, before.image);
    const { build: _c, ...expected } = before;
    expect(rebased).toEqual(expected);
  });
});

describe("the realm's marker", () => {
  it.each(["created", "adopted"] as const)("names the pair's uid for a realm it %s", (origin) => {
    const comment = realmMarker(META, origin);
    expect(realmManagerOf(comment)).toBe(META.uid);
    expect(realmOrigin(comment)).toBe(origin);
  });

  it.each([
    [undefined, undefined],
    ["made by hand", undefined],
    [realmMarker({ ...META, uid: "AAAA-BBBB" }), "aaaa-bbbb"],
    [`note; ${realmMarker(META)}`, META.uid],
  ])("comment %j is managed by %s", (comment, uid) => {
    expect(realmManagerOf(comment)).toBe(uid);
  });
});
