import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import { call, createCt, DEBIAN, ok, runTask, TEST_CATALOG, TEST_STORAGES, ticketLogin } from "./helpers.js";

let sim: PveSimulator;
let vmid = 200;
const next = () => ++vmid;

beforeAll(async () => {
  sim = await PveSimulator.start({
    nodes: ["pve1", "pve2"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: TEST_STORAGES,
    pools: ["ldap"],
  });
});
afterAll(() => sim?.stop());
beforeEach(() => {
  sim.setSpeed(0.01);
  sim.faults.clear();
});

const config = (node: string, id: number, params = {}) =>
  ok(sim, "GET", `/nodes/${node}/lxc/${id}/config`, params) as Promise<Record<string, string | number>>;

describe("create: parameter checks", () => {
  it("vmid and ostemplate are required", async () => {
    const r = await call(sim, "POST", "/nodes/pve1/lxc", {});
    expect(r.status).toBe(400);
    expect(r.body.errors).toMatchObject({
      vmid: "property is missing and it is not optional",
      ostemplate: "property is missing and it is not optional",
    });
  });

  it("refuses malformed vmid, net0, rootfs, tags, hostname and unknown keys", async () => {
    const r = await call(sim, "POST", "/nodes/pve1/lxc", {
      vmid: 99,
      ostemplate: DEBIAN,
      net0: "bridge=vmbr0,ip=10.0.0.5",
      rootfs: ":4",
      tags: "ok;Bad b@d",
      hostname: "-ldap1",
      colour: "blue",
    });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({
      vmid: "value must have a minimum value of 100",
      net0: "invalid format - format error\nname: property is missing and it is not optional",
      rootfs: "invalid format - format error\nvolume: invalid format - unable to parse volume ID ':4'",
      tags: "invalid format - invalid tag 'b@d'",
      hostname: "invalid format - value does not look like a valid DNS name",
      colour: "property is not defined in schema and the schema does not allow additional properties",
    });
    const ip = await call(sim, "POST", "/nodes/pve1/lxc", {
      vmid: next(),
      ostemplate: DEBIAN,
      net0: "name=eth0,ip=10.0.0.5",
    });
    expect(ip.body.errors.net0).toBe(
      "invalid format - format error\nip: invalid format - value does not look like a valid IPv4 network configuration",
    );
  });

  it("env: NUL-separated NAME=value; control characters refused naming env (tab allowed)", async () => {
    const bad = await call(sim, "POST", "/nodes/pve1/lxc", {
      vmid: next(),
      ostemplate: DEBIAN,
      env: "A=1\0B=two\nlines",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.errors).toEqual({ env: "invalid format - value contains control characters" });
    const ep = await call(sim, "POST", "/nodes/pve1/lxc", {
      vmid: next(),
      ostemplate: DEBIAN,
      entrypoint: "sh -c 'a\rb'",
    });
    expect(ep.body.errors).toEqual({ entrypoint: "invalid format - value contains control characters" });
    const id = next();
    expect((await createCt(sim, "pve1", id, DEBIAN, { env: "A=1\0B=tab\there" }))["exitstatus"]).toBe("OK");
    expect((await config("pve1", id))["env"]).toBe("A=1\0B=tab\there");
  });

  it("the rootfs storage must exist and hold container directories; the template must exist", async () => {
    let r = await call(sim, "POST", "/nodes/pve1/lxc", { vmid: next(), ostemplate: DEBIAN });
    expect(r.status).toBe(500);
    expect(r.reason).toBe("storage 'local' does not support container directories");
    r = await call(sim, "POST", "/nodes/pve1/lxc", { vmid: next(), ostemplate: DEBIAN, rootfs: "nope:8" });
    expect(r.body.message).toBe("storage 'nope' does not exist\n");
    r = await call(sim, "POST", "/nodes/pve1/lxc", {
      vmid: next(),
      ostemplate: "local:vztmpl/none.tar",
      storage: "local-lvm",
    });
    expect(r.body.message).toBe("volume 'local:vztmpl/none.tar' does not exist\n");
  });
});

describe("create: result", () => {
  it("returns a vzcreate UPID naming the node and the caller; the config has the defaults", async () => {
    const id = next();
    const upid = (await ok(sim, "POST", "/nodes/pve2/lxc", {
      vmid: id,
      ostemplate: DEBIAN,
      storage: "local-lvm",
      hostname: "ldap1",
      net0: "name=eth0,bridge=vmbr0,ip=10.0.0.5/24,gw=10.0.0.1",
      tags: "ldappair;owner-abc",
      features: "nesting=1",
      onboot: 1,
    })) as string;
    expect(upid).toMatch(
      new RegExp(`^UPID:pve2:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:vzcreate:${id}:root@pam!pve-sim:$`),
    );
    expect((await sim.waitTask(upid)).exitstatus).toBe("OK");
    const conf = await config("pve2", id);
    expect(conf).toMatchObject({
      hostname: "ldap1",
      memory: 512,
      swap: 512,
      unprivileged: 1,
      onboot: 1,
      features: "nesting=1",
      tags: "ldappair;owner-abc",
      rootfs: `local-lvm:vm-${id}-disk-0,size=4G`,
      ostype: "debian",
    });
    expect(conf["net0"]).toMatch(
      /^name=eth0,bridge=vmbr0,gw=10\.0\.0\.1,hwaddr=BC:24:11:[0-9A-F:]{8},ip=10\.0\.0\.5\/24,type=veth$/,
    );
    expect(conf["digest"]).toMatch(/^[0-9a-f]{40}$/);
    expect(conf["lock"]).toBeUndefined();
    const content = (await ok(sim, "GET", "/nodes/pve2/storage/local-lvm/content")) as {
      volid: string;
      vmid?: number;
    }[];
    expect(content).toContainEqual(
      expect.objectContaining({ volid: `local-lvm:vm-${id}-disk-0`, vmid: id, content: "rootdir" }),
    );
  });

  it("a vmid in use anywhere in the cluster fails at once: CT N already exists on node 'X'", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    for (const node of ["pve1", "pve2"]) {
      const r = await call(sim, "POST", `/nodes/${node}/lxc`, {
        vmid: id,
        ostemplate: DEBIAN,
        storage: "local-lvm",
      });
      expect(r.status).toBe(500);
      expect(r.reason).toBe(`CT ${id} already exists on node 'pve1'`);
    }
  });

  it("lock: create while the task runs refuses config changes, start and destroy; the lock goes at the end", async () => {
    sim.setSpeed(0.2); // create: 600 ms
    const id = next();
    const upid = (await ok(sim, "POST", "/nodes/pve1/lxc", {
      vmid: id,
      ostemplate: DEBIAN,
      storage: "local-lvm",
    })) as string;
    expect((await config("pve1", id))["lock"]).toBe("create");
    const list = (await ok(sim, "GET", "/nodes/pve1/lxc")) as Record<string, unknown>[];
    expect(list.find((c) => c["vmid"] === id)).toMatchObject({ lock: "create", status: "stopped" });
    for (const [method, path, params] of [
      ["PUT", `/nodes/pve1/lxc/${id}/config`, { memory: 1024 }],
      ["POST", `/nodes/pve1/lxc/${id}/status/start`, {}],
      ["DELETE", `/nodes/pve1/lxc/${id}`, {}],
    ] as const) {
      const r = await call(sim, method, path, params);
      expect(r.status).toBe(500);
      expect(r.reason).toBe("CT is locked (create)");
    }
    expect((await sim.waitTask(upid)).exitstatus).toBe("OK");
    expect((await config("pve1", id))["lock"]).toBeUndefined();
  });

  it("a failed creation removes the config again", async () => {
    const id = next();
    sim.faults.failNextTask({ type: "vzcreate", message: "unable to create CT - out of space" });
    const st = await createCt(sim, "pve1", id, DEBIAN);
    expect(st["exitstatus"]).toBe("unable to create CT - out of space");
    const r = await call(sim, "GET", `/nodes/pve1/lxc/${id}/config`);
    expect(r.status).toBe(500);
    expect(r.reason).toBe(`Configuration file 'nodes/pve1/lxc/${id}.conf' does not exist`);
  });

  it("start=1 starts the container after creation", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN, { start: true });
    await sim.idle();
    expect(
      ((await ok(sim, "GET", `/nodes/pve1/lxc/${id}/status/current`)) as Record<string, unknown>)["status"],
    ).toBe("running");
  });
});

describe("nextid and resources", () => {
  it("nextid is the lowest free id and reserves nothing: two creators race for it", async () => {
    const a = (await ok(sim, "GET", "/cluster/nextid")) as number;
    const b = (await ok(sim, "GET", "/cluster/nextid")) as number;
    expect(typeof a).toBe("number");
    expect(a).toBe(b);
    expect(sim.state.containers[String(a)]).toBeUndefined();
    const [r1, r2] = await Promise.all([
      call(sim, "POST", "/nodes/pve1/lxc", { vmid: a, ostemplate: DEBIAN, storage: "local-lvm" }),
      call(sim, "POST", "/nodes/pve2/lxc", { vmid: b, ostemplate: DEBIAN, storage: "local-lvm" }),
    ]);
    const statuses = [r1.status, r2.status].sort();
    expect(statuses).toEqual([200, 500]);
    const loser = r1.status === 500 ? r1 : r2;
    expect(loser.reason).toMatch(new RegExp(`^CT ${a} already exists on node 'pve[12]'$`));
    await sim.idle();
  });

  it("nextid?vmid=N echoes N as a string when free and refuses it when used", async () => {
    expect(await ok(sim, "GET", "/cluster/nextid", { vmid: 98765 })).toBe("98765");
    const used = Number(Object.keys(sim.state.containers)[0]);
    const r = await call(sim, "GET", "/cluster/nextid", { vmid: used });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ vmid: `VM ${used} already exists` });
  });

  it("/cluster/resources?type=vm lists every container of every node in one call", async () => {
    const a = next();
    const b = next();
    await createCt(sim, "pve1", a, DEBIAN, { tags: "x" });
    await createCt(sim, "pve2", b, DEBIAN);
    const res = (await ok(sim, "GET", "/cluster/resources", { type: "vm" })) as Record<string, unknown>[];
    expect(res.every((r) => r["type"] === "lxc")).toBe(true);
    expect(res.find((r) => r["vmid"] === a)).toMatchObject({
      id: `lxc/${a}`,
      node: "pve1",
      status: "stopped",
      name: `ct${a}`,
      tags: "x",
    });
    expect(res.find((r) => r["vmid"] === b)).toMatchObject({ id: `lxc/${b}`, node: "pve2" });
    const onPve1 = (await ok(sim, "GET", "/nodes/pve1/lxc")) as Record<string, unknown>[];
    expect(onPve1.some((r) => r["vmid"] === b)).toBe(false);
    const bad = await call(sim, "GET", "/cluster/resources", { type: "vms" });
    expect(bad.body.errors).toEqual({
      type: "value 'vms' does not have a value in the enumeration 'vm, storage, node, sdn'",
    });
  });

  it("GET /nodes/{node}/lxc gives vmid, status, name, cpus, maxmem, maxdisk, uptime, type, tags", async () => {
    const a = next();
    await createCt(sim, "pve2", a, DEBIAN, { cores: 2, memory: 1024, tags: "b;a", rootfs: "local-lvm:8" });
    const list = (await ok(sim, "GET", "/nodes/pve2/lxc")) as Record<string, unknown>[];
    expect(list.find((c) => c["vmid"] === a)).toMatchObject({
      vmid: a,
      type: "lxc",
      status: "stopped",
      name: `ct${a}`,
      cpus: 2,
      maxmem: 1024 * 1024 * 1024,
      maxdisk: 8 * 1024 ** 3,
      uptime: 0,
      tags: "a;b",
    });
    expect((await config("pve2", a))["rootfs"]).toBe(`local-lvm:vm-${a}-disk-0,size=8G`);
  });

  it("a token sees in listings only the guests it has VM.Audit on", async () => {
    const a = next();
    await createCt(sim, "pve1", a, DEBIAN);
    const t = sim.addToken({ id: "one@pve!t", privileges: { [`/vms/${a}`]: ["VM.Audit"] } });
    const res = (await ok(
      sim,
      "GET",
      "/cluster/resources",
      { type: "vm" },
      { authorization: t.authorization },
    )) as Record<string, unknown>[];
    expect(res.map((r) => r["vmid"])).toEqual([a]);
  });
});

describe("config", () => {
  it("GET on a container of another node or none: Configuration file ... does not exist", async () => {
    const id = next();
    await createCt(sim, "pve2", id, DEBIAN);
    const r = await call(sim, "GET", `/nodes/pve1/lxc/${id}/config`);
    expect(r.status).toBe(500);
    expect(r.reason).toBe(`Configuration file 'nodes/pve1/lxc/${id}.conf' does not exist`);
  });

  it("PUT sets keys, deletes keys, and refuses a stale digest", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN, { description: "x", cores: 2 });
    const before = await config("pve1", id);
    expect(
      await ok(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, {
        memory: 1024,
        delete: "description,cores",
        digest: String(before["digest"]),
      }),
    ).toBeNull();
    const after = await config("pve1", id);
    expect(after).toMatchObject({ memory: 1024 });
    expect(after["description"]).toBeUndefined();
    expect(after["cores"]).toBeUndefined();
    expect(after["digest"]).not.toBe(before["digest"]);
    const stale = await call(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, {
      memory: 2048,
      digest: String(before["digest"]),
    });
    expect(stale.status).toBe(500);
    expect(stale.reason).toBe("detected modified configuration - file changed by other user? Try again.");
    expect((await config("pve1", id))["memory"]).toBe(1024);
  });

  it("each key needs its VM.Config privilege", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    const t = sim.addToken({ id: "cfg@pve!t", privileges: { "/vms": ["VM.Audit", "VM.Config.Options"] } });
    expect(
      (
        await call(
          sim,
          "PUT",
          `/nodes/pve1/lxc/${id}/config`,
          { description: "ok" },
          { authorization: t.authorization },
        )
      ).status,
    ).toBe(200);
    const r = await call(
      sim,
      "PUT",
      `/nodes/pve1/lxc/${id}/config`,
      { memory: 256 },
      { authorization: t.authorization },
    );
    expect(r.status).toBe(403);
    expect(r.reason).toBe(`Permission check failed (/vms/${id}, VM.Config.Memory)`);
  });
});

describe("root-only options", () => {
  const creatorPrivs = {
    "/vms": [
      "VM.Allocate",
      "VM.Audit",
      "VM.Config.Options",
      "VM.Config.Network",
      "VM.Config.Disk",
      "VM.Config.Memory",
      "VM.PowerMgmt",
    ],
    "/storage": ["Datastore.AllocateSpace", "Datastore.Audit"],
  };

  it("a token may set nesting, but no other feature, even a root-owned token", async () => {
    const t = sim.addToken({ id: "op@pve!t", privileges: creatorPrivs });
    const okId = next();
    expect((await createCt(sim, "pve1", okId, DEBIAN, { features: "nesting=1" }))["exitstatus"]).toBe("OK");
    for (const authorization of [t.authorization, `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`]) {
      const r = await call(
        sim,
        "POST",
        "/nodes/pve1/lxc",
        { vmid: next(), ostemplate: DEBIAN, storage: "local-lvm", features: "nesting=1,keyctl=1" },
        { authorization },
      );
      expect(r.status).toBe(403);
      expect(r.reason).toBe(
        "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)",
      );
    }
    const put = await call(sim, "PUT", `/nodes/pve1/lxc/${okId}/config`, { features: "fuse=1" });
    expect(put.status).toBe(403);
  });

  it("privileged containers, bind mounts, hookscript and devices are root-only", async () => {
    const cases: [Record<string, string | number>, string][] = [
      [{ unprivileged: 0 }, "creating privileged containers is only allowed for root@pam"],
      [{ mp0: "/srv/data,mp=/data" }, "Only root can pass arbitrary filesystem paths."],
      [{ hookscript: "local:snippets/hook.sh" }, "changing the hookscript is only allowed for root@pam"],
      [{ dev0: "/dev/fuse" }, "configuring device passthrough is only allowed for root@pam"],
    ];
    for (const [extra, what] of cases) {
      const r = await call(sim, "POST", "/nodes/pve1/lxc", {
        vmid: next(),
        ostemplate: DEBIAN,
        storage: "local-lvm",
        ...extra,
      });
      expect(r.status).toBe(403);
      expect(r.reason).toBe(`Permission check failed (${what})`);
    }
  });

  it("root@pam with a ticket may set them", async () => {
    const root = await ticketLogin(sim, "root@pam", sim.rootPassword);
    const id = next();
    const upid = (await ok(
      sim,
      "POST",
      "/nodes/pve1/lxc",
      { vmid: id, ostemplate: DEBIAN, storage: "local-lvm", features: "nesting=1,keyctl=1" },
      root,
    )) as string;
    expect(upid).toContain(`:vzcreate:${id}:root@pam:`);
    expect((await sim.waitTask(upid)).exitstatus).toBe("OK");
  });

  it("creating needs VM.Allocate on the guest or its pool, and Datastore.AllocateSpace on the storage", async () => {
    const id = next();
    const t = sim.addToken({
      id: "pool@pve!t",
      privileges: {
        "/pool/ldap": ["VM.Allocate"],
        "/vms": ["VM.Config.Network"],
        "/storage/local": ["Datastore.Audit"],
      },
    });
    const r = await call(
      sim,
      "POST",
      "/nodes/pve1/lxc",
      { vmid: id, ostemplate: DEBIAN, storage: "local-lvm", pool: "ldap" },
      { authorization: t.authorization },
    );
    expect(r.status).toBe(403);
    expect(r.reason).toBe("Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)");
    const nopool = await call(
      sim,
      "POST",
      "/nodes/pve1/lxc",
      { vmid: id, ostemplate: DEBIAN, storage: "local-lvm" },
      { authorization: t.authorization },
    );
    expect(nopool.reason).toBe(`Permission check failed (/vms/${id}, VM.Allocate)`);

    // Privileges on the pool cover its members.
    const member = sim.addToken({
      id: "pool@pve!member",
      privileges: {
        "/pool/ldap": ["VM.Allocate", "VM.Audit", "VM.Config.Network"],
        "/storage": ["Datastore.AllocateSpace"],
      },
    });
    const params = {
      vmid: id,
      ostemplate: DEBIAN,
      storage: "local-lvm",
      pool: "ldap",
      net0: "name=eth0,ip=dhcp",
    };
    expect(
      (await call(sim, "POST", "/nodes/pve1/lxc", params, { authorization: member.authorization })).status,
    ).toBe(200);
    await sim.idle();
    expect(
      (await call(sim, "GET", `/nodes/pve1/lxc/${id}/config`, {}, { authorization: member.authorization }))
        .status,
    ).toBe(200);
    const mem = await call(
      sim,
      "PUT",
      `/nodes/pve1/lxc/${id}/config`,
      { memory: 256 },
      { authorization: member.authorization },
    );
    expect(mem.reason).toBe(`Permission check failed (/vms/${id}, VM.Config.Memory)`);
  });
});

describe("power and destroy", () => {
  it("start, stop and shutdown with their immediate errors", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    const base = `/nodes/pve1/lxc/${id}/status`;
    let r = await call(sim, "POST", `${base}/stop`);
    expect([r.status, r.reason]).toEqual([500, `CT ${id} not running`]);
    r = await call(sim, "POST", `${base}/shutdown`);
    expect([r.status, r.reason]).toEqual([500, `CT ${id} not running`]);
    r = await call(sim, "GET", `/nodes/pve1/lxc/${id}/interfaces`);
    expect([r.status, r.reason]).toEqual([500, `CT ${id} not running`]);

    const start = await runTask(sim, "POST", `${base}/start`);
    expect(start).toMatchObject({ type: "vzstart", id: String(id), exitstatus: "OK" });
    r = await call(sim, "POST", `${base}/start`);
    expect([r.status, r.reason]).toEqual([500, `CT ${id} already running`]);
    const cur = (await ok(sim, "GET", `${base}/current`)) as Record<string, unknown>;
    expect(cur).toMatchObject({ vmid: id, status: "running", name: `ct${id}` });

    expect((await runTask(sim, "POST", `${base}/shutdown`, { timeout: 5 }))["exitstatus"]).toBe("OK");
    expect(((await ok(sim, "GET", `${base}/current`)) as Record<string, unknown>)["status"]).toBe("stopped");
    await runTask(sim, "POST", `${base}/start`);
    expect((await runTask(sim, "POST", `${base}/stop`, { "overrule-shutdown": 1 }))["type"]).toBe("vzstop");
    expect(sim.container(id)?.status).toBe("stopped");
  });

  it("two starts racing: the second task fails with already running", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    sim.setSpeed(0.2); // start: 300 ms, so both requests arrive while the CT is still stopped
    const [a, b] = await Promise.all([
      ok(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`),
      ok(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`),
    ]);
    const results = [
      (await sim.waitTask(a as string)).exitstatus,
      (await sim.waitTask(b as string)).exitstatus,
    ];
    expect(results).toEqual(["OK", `CT ${id} already running`]);
  });

  it("DELETE refuses a running CT without force, a protected one; force stops it first; purge accepted", async () => {
    const id = next();
    await createCt(sim, "pve1", id, DEBIAN);
    await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`);
    let r = await call(sim, "DELETE", `/nodes/pve1/lxc/${id}`);
    expect([r.status, r.reason]).toEqual([500, `unable to destroy CT ${id} - container is running`]);
    const st = await runTask(sim, "DELETE", `/nodes/pve1/lxc/${id}`, {
      force: 1,
      purge: 1,
      "destroy-unreferenced-disks": 1,
    });
    expect(st).toMatchObject({ type: "vzdestroy", exitstatus: "OK" });
    expect(sim.container(id)).toBeUndefined();
    const content = (await ok(sim, "GET", "/nodes/pve1/storage/local-lvm/content")) as { vmid?: number }[];
    expect(content.some((v) => v.vmid === id)).toBe(false);

    const p = next();
    await createCt(sim, "pve1", p, DEBIAN, { protection: 1 });
    r = await call(sim, "DELETE", `/nodes/pve1/lxc/${p}`);
    expect([r.status, r.reason]).toEqual([500, `can't remove CT ${p} - protection mode enabled`]);
  });
});
