// Node DNS and /cluster/resources in the simulator, as the reference's "More facts read from the sources"
// state them: what GET reads back differs from what PUT or create wrote, and the operator must expect it.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { readResolvConf, writeResolvConf } from "./cluster.js";
import { call, createCt, DEBIAN, ok, startCreate, TEST_CATALOG, TEST_STORAGES } from "./helpers.js";
import { PveSimulator } from "./simulator.js";

let sim: PveSimulator;
let vmid = 700;

beforeAll(async () => {
  sim = await PveSimulator.start({
    nodes: ["pve1", "pve2"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: TEST_STORAGES,
  });
});
afterAll(() => sim?.stop());
beforeEach(() => sim.setSpeed(0.01));

describe("facts: node DNS", () => {
  const put = (params: Record<string, string>) => ok(sim, "PUT", "/nodes/pve1/dns", params);
  const get = () => ok(sim, "GET", "/nodes/pve1/dns");

  it("GET renumbers the nameservers: a PUT of dns1 and dns3 reads back as dns1 and dns2", async () => {
    await put({ search: "example.com", dns1: "10.0.0.1", dns3: "10.0.0.3" });
    expect(await get()).toEqual({ search: "example.com", dns1: "10.0.0.1", dns2: "10.0.0.3" });
    await put({ search: "example.com", dns2: "10.0.0.2" });
    expect(await get()).toEqual({ search: "example.com", dns1: "10.0.0.2" });
  });

  it("GET de-duplicates the nameservers: a nameserver given twice is written once", async () => {
    await put({ search: "example.com", dns1: "10.0.0.1", dns2: "10.0.0.1", dns3: "10.0.0.9" });
    expect(await get()).toEqual({ search: "example.com", dns1: "10.0.0.1", dns2: "10.0.0.9" });
    expect(sim.state.dns["pve1"]).toEqual({ search: "example.com", dns1: "10.0.0.1", dns2: "10.0.0.9" });
  });

  it("GET keeps only the first search domain (a.example.com b.example.com reads back as a.example.com)", async () => {
    await put({ search: "a.example.com b.example.com", dns1: "10.0.0.1" });
    expect(await get()).toEqual({ search: "a.example.com", dns1: "10.0.0.1" });
    // The file keeps both: the node's resolver still tries each of them.
    expect(sim.state.dns["pve1"]?.search).toBe("a.example.com b.example.com");
  });

  it.each([
    [
      { search: "x y", dns: ["1.1.1.1", undefined, "1.1.1.1"] },
      { search: "x", dns1: "1.1.1.1" },
    ],
    [
      { search: "x", dns: [undefined, undefined, "::1"] },
      { search: "x", dns1: "::1" },
    ],
    [
      { search: "", dns: ["1.1.1.1", "2.2.2.2", "3.3.3.3"] },
      { dns1: "1.1.1.1", dns2: "2.2.2.2", dns3: "3.3.3.3" },
    ],
  ])("resolv.conf written from %j reads back as %j", (input, shown) => {
    expect(readResolvConf(writeResolvConf(input.search, input.dns))).toEqual(shown);
  });
});

describe("facts: /cluster/resources", () => {
  const resources = async (type?: string) =>
    (await ok(sim, "GET", "/cluster/resources", type ? { type } : {})) as Record<string, unknown>[];
  const KEYS = [
    "id",
    "type",
    "vmid",
    "name",
    "node",
    "status",
    "tags",
    "template",
    "maxcpu",
    "maxmem",
    "mem",
    "maxdisk",
    "disk",
    "uptime",
    "lock",
  ];

  it("an LXC entry carries exactly id, type=lxc, vmid, name, node, status, tags, template (0|1), maxcpu, maxmem, mem, maxdisk, disk, uptime, lock (no cpus, swap)", async () => {
    sim.setSpeed(0.5);
    const id = ++vmid;
    const upid = await startCreate(sim, "pve2", id, {
      hostname: "web1",
      cores: 2,
      memory: 1024,
      rootfs: "local-lvm:8",
      tags: "web",
    });
    const creating = (await resources("vm")).find((r) => r["vmid"] === id)!;
    expect(Object.keys(creating).sort()).toEqual([...KEYS].sort());
    expect(creating).toEqual({
      id: `lxc/${id}`,
      type: "lxc",
      vmid: id,
      name: "web1",
      node: "pve2",
      status: "stopped",
      tags: "web",
      template: 0,
      maxcpu: 2,
      maxmem: 1024 * 1024 ** 2,
      mem: 0,
      maxdisk: expect.any(Number),
      disk: 0,
      uptime: 0,
      lock: "create",
    });
    await sim.waitTask(upid);
    const created = (await resources()).find((r) => r["id"] === `lxc/${id}`)!;
    expect(Object.keys(created).sort()).toEqual(KEYS.filter((k) => k !== "lock").sort());
    expect(created["maxdisk"]).toBe(8 * 1024 ** 3);
  });

  it("tags in /cluster/resources show the stored (normalised) form", async () => {
    const id = ++vmid;
    await createCt(sim, "pve1", id, DEBIAN, { tags: "web;Beta,alpha alpha" });
    const stored = sim.container(id)?.conf["tags"];
    expect(stored).toBe("alpha;beta;web");
    expect((await resources("vm")).find((r) => r["vmid"] === id)?.["tags"]).toBe(stored);
  });

  it("only type=vm|storage|node|sdn is accepted (others 400)", async () => {
    for (const type of ["vm", "storage", "node", "sdn"])
      expect((await call(sim, "GET", "/cluster/resources", { type })).status).toBe(200);
    for (const type of ["lxc", "qemu", "pool", "VM"]) {
      const r = await call(sim, "GET", "/cluster/resources", { type });
      expect(r.status).toBe(400);
      expect(r.body.errors).toEqual({
        type: `value '${type}' does not have a value in the enumeration 'vm, storage, node, sdn'`,
      });
    }
  });
});
