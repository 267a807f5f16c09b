// The read-back normalisation against the simulator, which stores and prints
// values as Proxmox does: what the operator wrote reads back in another form,
// and the comparison must still say "nothing to PUT"; real drift must still
// give the PUT that repairs it, after which the comparison is quiet again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../../src/proxmox/client.js";
import {
  configUpdate,
  nodeDnsUpdate,
  realmCreateParams,
  realmUpdate,
  runbookRealm,
  type RealmSettings,
} from "../../src/proxmox/normalize.js";
import { mergeTags, operatorTags, tagsEqual } from "../../src/proxmox/tags.js";
import type { LdapRealmCreate } from "../../src/proxmox/types.js";
import { DEBIAN, TEST_STORAGES } from "../pve-sim/helpers.js";
import { PveSimulator } from "../pve-sim/simulator.js";
import { clientFor } from "./support.js";

let sim: PveSimulator;
let client: ProxmoxClient;

beforeAll(async () => {
  sim = await PveSimulator.start({ nodes: ["pve1"], speed: 0, storages: TEST_STORAGES });
  client = clientFor(sim);
});
afterAll(async () => {
  client?.close();
  await sim?.stop();
});

describe("realm read-back", () => {
  const desired: RealmSettings = {
    ...runbookRealm({
      baseDn: "dc=example,dc=com",
      servers: ["ldap1", "ldap2"],
      default: true,
      verifyCertificate: false,
      emailAttribute: "mail",
      syncScope: "both",
      syncNames: true,
      comment: "managed by LdapPair ldap-operator/site-a",
    }),
    // Several keys, written unsorted: Proxmox prints them back sorted.
    "sync-defaults-options": "scope=both,enable-new=1,remove-vanished=acl;entry;properties",
  };

  it("needs no PUT after a create, and one PUT that repairs drift, then none", async () => {
    await client.createRealm(realmCreateParams("ldap", desired) as unknown as LdapRealmCreate);
    const created = await client.realm("ldap");
    expect(created["sync-defaults-options"]).not.toBe(desired["sync-defaults-options"]);
    expect(realmUpdate(desired, created)).toBeUndefined();

    // An administrator edits the realm by hand.
    await client.updateRealm("ldap", { set: { server2: "ldap3", port: 1636, verify: true } });
    const drifted = await client.realm("ldap");
    const repair = realmUpdate(desired, drifted);
    expect(repair).toEqual({ set: { server2: "ldap2", verify: "0" }, delete: ["port"] });
    await client.updateRealm("ldap", { ...repair!, digest: drifted.digest } as never);
    expect(realmUpdate(desired, await client.realm("ldap"))).toBeUndefined();
  });
});

describe("node DNS read-back", () => {
  it("needs no PUT after Proxmox renumbered, de-duplicated and cut what was written", async () => {
    const written = {
      search: "example.com other.example.com",
      dns1: "10.0.0.53",
      dns2: "10.0.0.53",
      dns3: "1.1.1.1",
    };
    await client.updateNodeDns("pve1", written);
    const readBack = await client.nodeDns("pve1");
    expect(readBack).toMatchObject({ search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" });
    expect(nodeDnsUpdate(written, readBack)).toBeUndefined();

    await client.updateNodeDns("pve1", { search: "example.com", dns1: "1.1.1.1" });
    const repair = nodeDnsUpdate(written, await client.nodeDns("pve1"));
    expect(repair).toEqual({ search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" });
    await client.updateNodeDns("pve1", { ...repair!, search: repair!.search! });
    expect(nodeDnsUpdate(written, await client.nodeDns("pve1"))).toBeUndefined();
  });
});

describe("container config read-back", () => {
  const uid = "3f2b8c1e-9a4d-4e7b-8f00-1c2d3e4f5a6b";
  const ours = { owner: uid, server: "ldap1", configHash: "0123456789abcdef" };

  it("needs no PUT after a create, and one PUT that repairs drift, then none", async () => {
    const desired = {
      hostname: "ldap1",
      memory: 512,
      cores: 1,
      onboot: true,
      nameserver: ["10.0.0.53", "1.1.1.1"],
      env: ["LDAP_COMMON_NAME=ldap1", "DIRECTORY_BACKEND=sql"],
      tags: mergeTags("Web,backup", ours),
      description: "managed by LdapPair ldap-operator/site-a",
    };
    const upid = await client.createContainer("pve1", {
      vmid: 301,
      ostemplate: DEBIAN,
      storage: "local-lvm",
      net0: "name=eth0,bridge=vmbr0,ip=dhcp",
      hostname: desired.hostname,
      memory: desired.memory,
      cores: desired.cores,
      onboot: desired.onboot,
      nameserver: desired.nameserver.join(" "),
      // Written in another order than the desired list, tags unsorted and in mixed case.
      env: [...desired.env].reverse().join("\0"),
      tags: `Web,${mergeTags(undefined, ours).replaceAll(";", " ")},backup`,
      description: desired.description,
    });
    expect((await client.waitForTask(upid)).exitstatus).toBe("OK");

    const created = await client.containerConfig("pve1", 301);
    expect(tagsEqual(created.tags, desired.tags)).toBe(true);
    expect(operatorTags(created.tags)).toEqual(ours);
    expect(configUpdate(desired, created)).toBeUndefined();

    // Someone changes memory and a tag, and drops the nameserver.
    await client.updateContainerConfig("pve1", 301, {
      set: { memory: 1024, tags: "web;backup" },
      delete: ["nameserver"],
    });
    const drifted = await client.containerConfig("pve1", 301);
    const repair = configUpdate(desired, drifted);
    expect(repair?.delete).toEqual([]);
    expect(Object.keys(repair?.set ?? {}).sort()).toEqual(["memory", "nameserver", "tags"]);
    await client.updateContainerConfig("pve1", 301, { ...repair!, digest: drifted.digest } as never);
    expect(configUpdate(desired, await client.containerConfig("pve1", 301))).toBeUndefined();
  });
});
