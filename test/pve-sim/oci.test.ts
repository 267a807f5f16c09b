import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import { call, createCt, IMAGE, ok, pullImage, runTask, TEST_CATALOG } from "./helpers.js";
import { ociFilename } from "./storage.js";

let sim: PveSimulator;
let vmid = 400;
const pullPath = "/nodes/pve1/storage/local/oci-registry-pull";

beforeAll(async () => {
  sim = await PveSimulator.start({ nodes: ["pve1", "pve2"], speed: 0.01, catalog: TEST_CATALOG });
});
afterAll(() => sim?.stop());
beforeEach(() => {
  sim.setSpeed(0.01);
  sim.faults.clear();
});

describe("oci-registry-pull", () => {
  it("the tag is mandatory and digests are refused", async () => {
    for (const reference of [
      IMAGE,
      `${IMAGE}@sha256:${"a".repeat(64)}`,
      `${IMAGE}:1.0@sha256:${"a".repeat(64)}`,
      "ghcr.io/Mieweb/x:1",
      "ghcr.io/x:",
    ]) {
      const r = await call(sim, "POST", pullPath, { reference });
      expect(r.status, reference).toBe(400);
      expect(r.body.errors).toEqual({ reference: "value does not match the regex pattern" });
    }
    const missing = await call(sim, "POST", pullPath, {});
    expect(missing.body.errors).toEqual({ reference: "property is missing and it is not optional" });
  });

  it("filename: the part after the last '/', other characters mapped to '_', plus .tar", () => {
    expect(ociFilename("ghcr.io/mieweb/ldap-gateway:1.2.3")).toBe("ldap-gateway_1.2.3.tar");
    expect(ociFilename("registry:5000/a/b:latest", "x/y/My Image:v1+2")).toBe("My_Image_v1_2.tar");
  });

  it("pulls into vztmpl (an ociregistrypull task) and lists it in the storage content", async () => {
    const upid = (await ok(sim, "POST", pullPath, { reference: `${IMAGE}:1.2.3` })) as string;
    expect(upid).toMatch(
      /^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:ociregistrypull:local:root@pam!pve-sim:$/,
    );
    expect((await sim.waitTask(upid)).exitstatus).toBe("OK");
    const content = (await ok(sim, "GET", "/nodes/pve1/storage/local/content", {
      content: "vztmpl",
    })) as Record<string, unknown>[];
    expect(content).toContainEqual(
      expect.objectContaining({
        volid: "local:vztmpl/ldap-gateway_1.2.3.tar",
        content: "vztmpl",
        format: "tar",
      }),
    );
    // `local` is not shared: pve2 does not have it.
    const other = (await ok(sim, "GET", "/nodes/pve2/storage/local/content", {
      content: "vztmpl",
    })) as unknown[];
    expect(other).toEqual([]);
  });

  it("refuses to override an existing file, at once or when two pulls race", async () => {
    await pullImage(sim, "pve1", "2.0.0");
    const again = await call(sim, "POST", pullPath, { reference: `${IMAGE}:2.0.0` });
    expect(again.status).toBe(500);
    expect(again.reason).toBe(
      "refusing to override existing file '/var/lib/vz/template/cache/ldap-gateway_2.0.0.tar'",
    );
    const named = await call(sim, "POST", pullPath, {
      reference: `${IMAGE}:9.9.9`,
      filename: "ldap-gateway_2.0.0",
    });
    expect(named.reason).toBe(
      "refusing to override existing file '/var/lib/vz/template/cache/ldap-gateway_2.0.0.tar'",
    );

    const [a, b] = (await Promise.all([
      ok(sim, "POST", pullPath, { reference: `${IMAGE}:3.0.0` }),
      ok(sim, "POST", pullPath, { reference: `${IMAGE}:3.0.0` }),
    ])) as string[];
    const results = [(await sim.waitTask(a!)).exitstatus, (await sim.waitTask(b!)).exitstatus].sort();
    expect(results).toEqual([
      "OK",
      "refusing to override existing file '/var/lib/vz/template/cache/ldap-gateway_3.0.0.tar'",
    ]);
  });

  it("an image the registry does not have fails the task", async () => {
    const st = await runTask(sim, "POST", pullPath, { reference: "ghcr.io/other/thing:1" });
    expect(st["exitstatus"]).toBe(
      "skopeo copy failed: reading manifest 1 in ghcr.io/other/thing: manifest unknown",
    );
  });

  it("needs a file-based storage with vztmpl, Datastore.AllocateTemplate and Sys.AccessNetwork", async () => {
    const lvm = await call(sim, "POST", "/nodes/pve1/storage/local-lvm/oci-registry-pull", {
      reference: `${IMAGE}:1`,
    });
    expect([lvm.status, lvm.reason]).toEqual([
      500,
      "storage 'local-lvm' does not support content type 'vztmpl'",
    ]);
    const noNet = sim.addToken({
      id: "pull@pve!a",
      privileges: { "/storage/local": ["Datastore.AllocateTemplate"] },
    });
    let r = await call(
      sim,
      "POST",
      pullPath,
      { reference: `${IMAGE}:1` },
      { authorization: noNet.authorization },
    );
    expect([r.status, r.reason]).toEqual([403, "Permission check failed (/nodes/pve1, Sys.AccessNetwork)"]);
    const noTpl = sim.addToken({
      id: "pull@pve!b",
      privileges: { "/nodes/pve1": ["Sys.AccessNetwork"], "/storage/local": ["Datastore.AllocateSpace"] },
    });
    r = await call(
      sim,
      "POST",
      pullPath,
      { reference: `${IMAGE}:1` },
      { authorization: noTpl.authorization },
    );
    expect([r.status, r.reason]).toEqual([
      403,
      "Permission check failed (/storage/local, Datastore.AllocateTemplate)",
    ]);
  });
});

describe("create from a pulled OCI volume", () => {
  it("sets entrypoint from Entrypoint+Cmd, replaces the env passed with the image's Env, adds host-managed=1", async () => {
    const vol = await pullImage(sim, "pve1", "4.0.0");
    const id = ++vmid;
    const st = await createCt(sim, "pve1", id, vol, {
      env: "SQL_URI=postgres://x\0LDAP_BASE_DN=dc=example,dc=com",
      entrypoint: "ignored",
    });
    expect(st["exitstatus"]).toBe("OK");
    const conf = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`)) as Record<string, string>;
    expect(conf["entrypoint"]).toBe("docker-entrypoint.sh node index.js");
    expect(conf["env"]).toBe(TEST_CATALOG[0]!.env!.join("\0"));
    expect(conf["net0"]).toMatch(
      /^name=eth0,bridge=vmbr0,host-managed=1,hwaddr=BC:24:11:[0-9A-F:]{8},ip=dhcp,type=veth$/,
    );
    expect(sim.container(id)?.image).toBe(`${IMAGE}:4.0.0`);
  });

  it("a volume pulled on one node cannot be used on another", async () => {
    const vol = await pullImage(sim, "pve1", "5.0.0");
    const r = await call(sim, "POST", "/nodes/pve2/lxc", {
      vmid: ++vmid,
      ostemplate: vol,
      storage: "local-lvm",
    });
    expect([r.status, r.reason]).toEqual([500, `volume '${vol}' does not exist`]);
  });
});
