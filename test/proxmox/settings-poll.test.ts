import { describe, expect, it } from "vitest";
import type { ProxmoxClient } from "../../src/proxmox/client.js";
import { ProxmoxError } from "../../src/proxmox/errors.js";
import { InventoryRegistry } from "../../src/proxmox/inventory.js";
import {
  changedSettings,
  concernsSettings,
  distinctKeys,
  dnsFingerprint,
  realmFingerprint,
} from "../../src/proxmox/settings-poll.js";
import type { NodeDns, RealmConfig } from "../../src/proxmox/types.js";
import { InventoryWatches } from "../../src/reconcile/watch.js";
import { FakeClock } from "../runtime/helpers/fakeclock.js";

const realm = (over: Partial<RealmConfig> = {}): RealmConfig => ({
  type: "ldap",
  digest: "d1",
  server1: "ldap1",
  base_dn: "dc=example,dc=com",
  ...over,
});

describe("realmFingerprint", () => {
  it.each([
    ["the same realm", realm(), realm(), false],
    [
      "options in another order",
      realm(),
      { base_dn: "dc=example,dc=com", digest: "d1", type: "ldap", server1: "ldap1" },
      false,
    ],
    ["a number read back as a string", realm({ port: 636 }), realm({ port: "636" }), false],
    ["an option changed by hand", realm(), realm({ server1: "ldap9", digest: "d2" }), true],
    ["an option removed", realm({ comment: "x" }), realm(), true],
    ["only the digest moved (a write of the same values)", realm(), realm({ digest: "d2" }), true],
    ["the realm deleted", realm(), undefined, true],
  ] as const)("%s: changed %s", (_, a, b, changed) => {
    expect(realmFingerprint(a) !== realmFingerprint(b)).toBe(changed);
  });
});

describe("dnsFingerprint", () => {
  const dns = (d: NodeDns) => d;
  it.each([
    [
      "the same",
      dns({ search: "example.com", dns1: "10.0.0.53" }),
      dns({ search: "example.com", dns1: "10.0.0.53" }),
      false,
    ],
    [
      "a search domain in another case",
      dns({ search: "Example.COM", dns1: "10.0.0.53" }),
      dns({ search: "example.com", dns1: "10.0.0.53" }),
      false,
    ],
    [
      "renumbered nameservers",
      dns({ search: "a", dns1: "1.1.1.1", dns3: "8.8.8.8" }),
      dns({ search: "a", dns1: "1.1.1.1", dns2: "8.8.8.8" }),
      false,
    ],
    [
      "dns1 changed by hand",
      dns({ search: "a", dns1: "10.0.0.53" }),
      dns({ search: "a", dns1: "192.0.2.53" }),
      true,
    ],
    [
      "the search domain changed",
      dns({ search: "a", dns1: "10.0.0.53" }),
      dns({ search: "b", dns1: "10.0.0.53" }),
      true,
    ],
    [
      "nameservers swapped",
      dns({ search: "a", dns1: "1.1.1.1", dns2: "2.2.2.2" }),
      dns({ search: "a", dns1: "2.2.2.2", dns2: "1.1.1.1" }),
      true,
    ],
  ] as const)("%s: changed %s", (_, a, b, changed) => {
    expect(dnsFingerprint(a) !== dnsFingerprint(b)).toBe(changed);
  });
});

describe("changedSettings", () => {
  const m = (o: Record<string, string>) => new Map(Object.entries(o));
  it.each([
    ["nothing read before (first poll)", {}, { "realm:ldap": "a" }, []],
    ["the same readings", { "realm:ldap": "a", "dns:pve1": "x" }, { "realm:ldap": "a", "dns:pve1": "x" }, []],
    [
      "one realm changed",
      { "realm:ldap": "a", "dns:pve1": "x" },
      { "realm:ldap": "b", "dns:pve1": "x" },
      ["realm:ldap"],
    ],
    [
      "a node's DNS changed",
      { "dns:pve1": "x", "dns:pve2": "y" },
      { "dns:pve1": "x", "dns:pve2": "z" },
      ["dns:pve2"],
    ],
    ["a read that failed (left out) is no change", { "realm:ldap": "a" }, {}, []],
    ["a key first watched now", { "dns:pve1": "x" }, { "dns:pve1": "x", "dns:pve2": "y" }, []],
  ] as const)("%s", (_, before, after, changed) => {
    expect([...changedSettings(m(before), m(after))].sort()).toEqual(changed);
  });
});

describe("which pairs a change concerns", () => {
  const pairs = {
    a: { realm: "ldap", dnsNodes: ["pve1", "pve2"] },
    b: { realm: "corp", dnsNodes: [] },
    c: { dnsNodes: ["pve2"] },
  };
  it("reads each realm and node once, however many pairs share it", () => {
    expect(distinctKeys(Object.values(pairs))).toEqual(["dns:pve1", "dns:pve2", "realm:corp", "realm:ldap"]);
  });
  it.each([
    [["realm:ldap"], ["a"]],
    [["realm:corp"], ["b"]],
    [["dns:pve2"], ["a", "c"]],
    [["dns:pve3"], []],
  ])("%j enqueues %j", (changed, enqueued) => {
    const hit = Object.entries(pairs).filter(([, i]) => concernsSettings(new Set(changed), i));
    expect(hit.map(([k]) => k)).toEqual(enqueued);
  });
});

/** A client that answers the reads the watches make, and counts them. */
function fakeClient() {
  const calls: string[] = [];
  const state = {
    realms: new Map<string, RealmConfig>([["ldap", realm()]]),
    dns: new Map<string, NodeDns>([
      ["pve1", { search: "example.com", dns1: "10.0.0.53" }],
      ["pve2", { search: "example.com", dns1: "10.0.0.53" }],
    ]),
  };
  const client = {
    endpoint: "https://pve.example:8006",
    tokenId: "op@pve!t",
    clusterResources: () => (calls.push("resources"), Promise.resolve([])),
    realm: (name: string) => {
      calls.push(`realm ${name}`);
      const r = state.realms.get(name);
      if (r) return Promise.resolve({ ...r });
      return Promise.reject(
        new ProxmoxError({ message: "no such realm", status: 500, reason: "does-not-exist" } as never),
      );
    },
    nodeDns: (node: string) => (calls.push(`dns ${node}`), Promise.resolve({ ...state.dns.get(node) })),
  } as unknown as ProxmoxClient;
  return { client, calls, state };
}

const settle = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

describe("InventoryWatches: the realm and node DNS beside the poll", () => {
  function setup() {
    const clock = new FakeClock();
    const registry = new InventoryRegistry({ clock, intervalMs: 10_000 });
    const watches = new InventoryWatches(registry, { now: () => clock.now() });
    const enqueued: string[] = [];
    watches.setEnqueue((k) => enqueued.push(k));
    const fake = fakeClient();
    const tick = async (ms: number) => {
      clock.advance(ms);
      await settle();
    };
    return { watches, enqueued, tick, ...fake };
  }

  it("reads each distinct realm and node once per interval for any number of pairs", async () => {
    const { watches, tick, calls, client } = setup();
    for (let i = 0; i < 20; i++)
      watches.watch(`ns/p${i}`, client, {
        uid: `u${i}`,
        servers: [],
        realm: "ldap",
        dnsNodes: ["pve1", "pve2"],
      });
    await tick(0);
    expect(calls.sort()).toEqual(["dns pve1", "dns pve2", "realm ldap", "resources"]);
    calls.length = 0;
    await tick(10_000);
    expect(calls).toHaveLength(4);
    watches.close();
  });

  it("enqueues only the pairs whose realm or node DNS changed since the last poll", async () => {
    const { watches, enqueued, tick, client, state } = setup();
    watches.watch("ns/a", client, { uid: "a", servers: [], realm: "ldap", dnsNodes: ["pve1"] });
    watches.watch("ns/b", client, { uid: "b", servers: [], dnsNodes: ["pve2"] });
    watches.watch("ns/c", client, { uid: "c", servers: [], realm: "corp" });
    await tick(0);
    await tick(10_000);
    expect(enqueued).toEqual([]);

    state.realms.set("ldap", realm({ server1: "ldap9", digest: "d2" }));
    await tick(10_000);
    expect(enqueued).toEqual(["ns/a"]);

    state.dns.set("pve2", { search: "elsewhere.org", dns1: "192.0.2.53" });
    await tick(10_000);
    expect(enqueued).toEqual(["ns/a", "ns/b"]);

    // A realm that appears where there was none is a change too.
    state.realms.set("corp", realm({ digest: "d3" }));
    await tick(10_000);
    expect(enqueued).toEqual(["ns/a", "ns/b", "ns/c"]);

    await tick(10_000);
    expect(enqueued).toHaveLength(3);
    watches.close();
  });
});
