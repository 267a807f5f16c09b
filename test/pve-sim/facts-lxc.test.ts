/**
 * The container facts of "More facts read from the sources" (../shared/reference/proxmox-ve-api.md):
 * tags, container config on a running container, and stop overruling a hanging shutdown.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import {
  call,
  createCt,
  DEBIAN,
  ok,
  pullImage,
  runTask,
  TEST_CATALOG,
  TEST_STORAGES,
  ticketLogin,
} from "./helpers.js";
import { setIsHotpluggable, deleteIsHotpluggable, uniqueTags, updatePctConfig } from "./lxcformat.js";

let sim: PveSimulator;
let gatewayVolume: string;
let vmid = 700;
const next = () => ++vmid;

beforeAll(async () => {
  sim = await PveSimulator.start({
    nodes: ["pve1"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: TEST_STORAGES,
    stopGraceMs: 200,
  });
  gatewayVolume = await pullImage(sim, "pve1", "1.0.0");
});
afterAll(() => sim?.stop());

type Conf = Record<string, string | number>;
const configPath = (id: number) => `/nodes/pve1/lxc/${id}/config`;
const config = (id: number, params = {}) => ok(sim, "GET", configPath(id), params) as Promise<Conf>;
const pending = (id: number) =>
  ok(sim, "GET", `/nodes/pve1/lxc/${id}/pending`) as Promise<Record<string, unknown>[]>;
const power = (id: number, action: string, params = {}) =>
  runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/${action}`, params);

/** A Debian container (no process), started: the simplest running container. */
async function runningCt(extra = {}): Promise<number> {
  const id = next();
  expect((await createCt(sim, "pve1", id, DEBIAN, extra))["exitstatus"]).toBe("OK");
  expect((await power(id, "start"))["exitstatus"]).toBe("OK");
  return id;
}

async function restart(id: number): Promise<void> {
  expect((await power(id, "stop"))["exitstatus"]).toBe("OK");
  expect((await power(id, "start"))["exitstatus"]).toBe("OK");
}

describe("tags", () => {
  it.each([
    ["web;beta,alpha alpha", "alpha;beta;web"],
    ["Prod", "prod"],
    ["b;B;a", "a;b"],
    ["owner-abc ldappair", "ldappair;owner-abc"],
    ["x\0y", "x;y"],
  ])("get_unique_tags stores %j as %j", (input, stored) => {
    expect(uniqueTags(input)).toBe(stored);
  });

  it("pve-tag is case-insensitive; tags are stored lower-cased, de-duplicated, sorted and ;-joined in the config and /cluster/resources", async () => {
    const id = next();
    expect((await createCt(sim, "pve1", id, DEBIAN, { tags: "web;beta,alpha alpha" }))["exitstatus"]).toBe(
      "OK",
    );
    expect((await config(id))["tags"]).toBe("alpha;beta;web");

    await ok(sim, "PUT", configPath(id), { tags: "Prod,WEB web" });
    expect((await config(id))["tags"]).toBe("prod;web");
    const resources = (await ok(sim, "GET", "/cluster/resources", { type: "vm" })) as Conf[];
    expect(resources.find((r) => r["vmid"] === id)?.["tags"]).toBe("prod;web");
    const listed = (await ok(sim, "GET", "/nodes/pve1/lxc")) as Conf[];
    expect(listed.find((r) => r["vmid"] === id)?.["tags"]).toBe("prod;web");

    const bad = await call(sim, "PUT", configPath(id), { tags: "ok;b@d" });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual({ tags: "invalid format - invalid tag 'b@d'" });
  });

  it("pve-tag has no length limit: a 300-character tag is accepted and stored whole", async () => {
    const id = next();
    expect((await createCt(sim, "pve1", id, DEBIAN))["exitstatus"]).toBe("OK");
    const long = `h-${"0123456789abcdef".repeat(19)}`.slice(0, 300);
    await ok(sim, "PUT", configPath(id), { tags: `ldappair;${long}` });
    expect((await config(id))["tags"]).toBe(`${long};ldappair`);
  });
});

describe("container config: hot-plug decisions", () => {
  it.each([
    ["cores", undefined, 2, true],
    ["memory", 512, 1024, true],
    ["swap", 512, 0, true],
    ["description", undefined, "x", true],
    ["onboot", 0, 1, true],
    ["tags", "a", "a;b", true],
    ["env", "A=1", "A=2", false],
    ["entrypoint", "a", "b", false],
    ["nameserver", "1.1.1.1", "9.9.9.9", false],
    ["searchdomain", "a.example", "b.example", false],
    ["features", undefined, "nesting=1", false],
    ["net0", undefined, "name=eth0,bridge=vmbr0,ip=dhcp", true],
    [
      "net0",
      "name=eth0,bridge=vmbr0,ip=dhcp,type=veth",
      "name=eth0,bridge=vmbr1,ip=10.0.0.5/24,type=veth",
      true,
    ],
    [
      "net0",
      "name=eth0,bridge=vmbr0,ip=dhcp,type=veth",
      "name=eth0,bridge=vmbr0,ip=dhcp,mtu=1400,type=veth",
      false,
    ],
    ["net0", "name=eth0,ip=dhcp,type=veth", "name=eth0,host-managed=1,ip=dhcp,type=veth", false],
    ["mp0", undefined, "local-lvm:1,mp=/data", true],
    ["mp0", "local-lvm:vm-1-disk-1,mp=/data", "local-lvm:vm-1-disk-1,mp=/srv", false],
  ] as const)(
    "setting %s from %j to %j on a running container applies at once: %s",
    (key, old, value, hot) => {
      expect(setIsHotpluggable(key, old, value)).toBe(hot);
    },
  );

  it.each([
    ["description", true],
    ["swap", true],
    ["cpulimit", true],
    ["unused0", true],
    ["net0", true],
    ["net10", false],
    ["env", false],
    ["entrypoint", false],
    ["nameserver", false],
    ["searchdomain", false],
    ["mp0", false],
  ])("deleting %s on a running container applies at once: %s", (key, hot) => {
    expect(deleteIsHotpluggable(key)).toBe(hot);
  });

  it("a pending value equal to the current one is no change (cleanup_pending)", () => {
    const cfg = { conf: { env: "A=1" }, pending: { env: "A=2" }, pendingDelete: [] };
    const back = updatePctConfig(cfg, { set: { env: "A=1" }, delete: [], revert: [] }, true);
    expect(back).toEqual({ conf: { env: "A=1" }, pending: {}, pendingDelete: [] });
  });
});

describe("container config on a running container", () => {
  it("cores, memory, swap, description, onboot and tags apply at once", async () => {
    const id = await runningCt();
    const change = { cores: 2, memory: 1024, swap: 256, description: "ldap1", onboot: 1, tags: "ldappair" };
    await ok(sim, "PUT", configPath(id), change);
    expect(await config(id, { current: 1 })).toMatchObject(change);
    expect((await pending(id)).filter((e) => "pending" in e || "delete" in e)).toEqual([]);
  });

  it("env, entrypoint, nameserver and searchdomain go to pending and apply at the next start; GET pending shows {key, value, pending, delete}", async () => {
    const id = await runningCt({ nameserver: "1.1.1.1", searchdomain: "a.example" });
    const change = { env: "A=1", entrypoint: "/init", nameserver: "9.9.9.9", searchdomain: "b.example" };
    await ok(sim, "PUT", configPath(id), change);
    const current = await config(id, { current: 1 });
    expect(current).toMatchObject({ nameserver: "1.1.1.1", searchdomain: "a.example" });
    expect(current["env"]).toBeUndefined();
    expect(current["entrypoint"]).toBeUndefined();
    // Without `current` the config shows the pending values.
    expect(await config(id)).toMatchObject(change);
    const entries = (await pending(id)).filter((e) => Object.keys(change).includes(String(e["key"])));
    expect(entries).toEqual([
      { key: "entrypoint", pending: "/init" },
      { key: "env", pending: "A=1" },
      { key: "nameserver", value: "1.1.1.1", pending: "9.9.9.9" },
      { key: "searchdomain", value: "a.example", pending: "b.example" },
    ]);

    await restart(id);
    expect(await config(id, { current: 1 })).toMatchObject(change);
    expect((await pending(id)).filter((e) => "pending" in e || "delete" in e)).toEqual([]);
  });

  it("a network change that cannot be hot-plugged (mtu) goes to pending; one that can (ip) applies at once", async () => {
    const id = await runningCt({ net0: "name=eth0,bridge=vmbr0,ip=dhcp" });
    const before = String((await config(id))["net0"]);
    const hwaddr = /hwaddr=([^,]+)/.exec(before)![1];
    await ok(sim, "PUT", configPath(id), { net0: `name=eth0,bridge=vmbr0,hwaddr=${hwaddr},ip=10.0.0.5/24` });
    expect((await config(id, { current: 1 }))["net0"]).toContain("ip=10.0.0.5/24");

    await ok(sim, "PUT", configPath(id), {
      net0: `name=eth0,bridge=vmbr0,hwaddr=${hwaddr},ip=10.0.0.5/24,mtu=1400`,
    });
    expect((await config(id, { current: 1 }))["net0"]).not.toContain("mtu=");
    const entry = (await pending(id)).find((e) => e["key"] === "net0");
    expect(entry?.["pending"]).toContain("mtu=1400");
    await restart(id);
    expect((await config(id, { current: 1 }))["net0"]).toContain("mtu=1400");
  });

  it("a delete= of such a key is a pending delete; a delete= of description applies at once", async () => {
    const id = await runningCt({ nameserver: "1.1.1.1", description: "x" });
    await ok(sim, "PUT", configPath(id), { delete: "nameserver,description" });
    const current = await config(id, { current: 1 });
    expect(current["nameserver"]).toBe("1.1.1.1");
    expect(current["description"]).toBeUndefined();
    expect((await config(id))["nameserver"]).toBeUndefined();
    expect((await pending(id)).find((e) => e["key"] === "nameserver")).toEqual({
      key: "nameserver",
      value: "1.1.1.1",
      delete: 1,
    });
    await restart(id);
    expect((await config(id, { current: 1 }))["nameserver"]).toBeUndefined();
    expect((await pending(id)).find((e) => e["key"] === "nameserver")).toBeUndefined();
  });
});

describe("container config: errors and stored forms", () => {
  it("delete=memory (a required option) is 500 unable to delete required option 'memory'", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    const r = await call(sim, "PUT", configPath(id), { delete: "memory" });
    expect([r.status, r.reason]).toEqual([500, "unable to delete required option 'memory'"]);
    expect((await config(id))["memory"]).toBe(512);
  });

  it("delete= of an unknown key is 400 errors.delete", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    const r = await call(sim, "PUT", configPath(id), { delete: "colour" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ delete: "unknown option 'colour'" });
  });

  it("a PUT with only digest is 500 no options specified", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    const digest = String((await config(id))["digest"]);
    const r = await call(sim, "PUT", configPath(id), { digest });
    expect([r.status, r.reason]).toEqual([500, "no options specified"]);
  });

  it("a digest longer than 40 characters is 400", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    const r = await call(sim, "PUT", configPath(id), { memory: 1024, digest: "a".repeat(41) });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ digest: "value may only be 40 characters long" });
  });

  it("nameserver is stored space-separated (searchdomain too), on create and on PUT config", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN, {
      nameserver: "1.1.1.1,8.8.8.8",
      searchdomain: "a.example;b.example",
    });
    expect(await config(id)).toMatchObject({
      nameserver: "1.1.1.1 8.8.8.8",
      searchdomain: "a.example b.example",
    });
    await ok(sim, "PUT", configPath(id), { nameserver: "9.9.9.9;1.1.1.1, 8.8.4.4" });
    expect((await config(id))["nameserver"]).toBe("9.9.9.9 1.1.1.1 8.8.4.4");
  });

  it("skiplock=1 from a token is 400 Only root may use this option., checked first; root@pam may use it on a locked CT", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    // Even for a root-owned token, and before "no options specified" and the required-option check.
    for (const params of [
      { skiplock: 1 },
      { skiplock: 1, delete: "memory" },
      { skiplock: 1, memory: 1024 },
    ]) {
      const r = await call(sim, "PUT", configPath(id), params);
      expect(r.status).toBe(400);
      expect(r.body.errors).toEqual({ skiplock: "Only root may use this option." });
    }

    const root = await ticketLogin(sim, "root@pam", sim.rootPassword);
    sim.container(id)!.conf["lock"] = "backup";
    const locked = await call(sim, "PUT", configPath(id), { memory: 1024 }, root);
    expect([locked.status, locked.reason]).toEqual([500, "CT is locked (backup)"]);
    expect((await call(sim, "PUT", configPath(id), { memory: 1024, skiplock: 1 }, root)).status).toBe(200);
    expect((await config(id))["memory"]).toBe(1024);
  });
});

describe("stop and shutdown", () => {
  it("status/shutdown creates a vzshutdown task; status/stop with overrule-shutdown=1 aborts it (log: overruled vzshutdown tasks: UPID) and stops the CT", async () => {
    const id = next();
    await createCt(sim, "pve1", id, gatewayVolume);
    // A process that ignores SIGTERM, as the real gateway does while a client is connected.
    const env = String((await config(id))["env"]);
    await ok(sim, "PUT", configPath(id), { env: `${env}\0LISTENER_IGNORE_SIGTERM=1` });
    expect((await power(id, "start"))["exitstatus"]).toBe("OK");
    await sim.waitBooted(id);

    const shutdown = (await ok(sim, "POST", `/nodes/pve1/lxc/${id}/status/shutdown`, {
      timeout: 60,
    })) as string;
    expect(shutdown).toContain(`:vzshutdown:${id}:`);
    await new Promise((r) => setTimeout(r, 300));
    expect(sim.task(shutdown)?.status).toBe("running");
    expect(sim.container(id)?.status).toBe("running");

    const t0 = Date.now();
    const stop = await power(id, "stop", { "overrule-shutdown": 1 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(stop).toMatchObject({ type: "vzstop", exitstatus: "OK" });
    const log = (await ok(
      sim,
      "GET",
      `/nodes/pve1/tasks/${encodeURIComponent(String(stop["upid"]))}/log`,
    )) as {
      t: string;
    }[];
    expect(log.map((l) => l.t)).toContain(`overruled vzshutdown tasks: ${shutdown}`);
    const aborted = sim.task(shutdown);
    expect(aborted?.status).toBe("stopped");
    expect(aborted?.exitstatus).not.toBe("OK");
    expect(sim.container(id)?.status).toBe("stopped");
  });
});
