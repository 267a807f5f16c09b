// DELETE /nodes/{node}/storage/{storage}/content/{volume} as pve-storage's Content.pm has it: an imgdel
// task, Datastore.Allocate on the storage, a volid or a name relative to the storage, `delay`, and the
// existing faults on this call and on its task.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import { call, createCt, IMAGE, ok, pullImage, runTask, TEST_CATALOG, waitTask } from "./helpers.js";

let sim: PveSimulator;
let vmid = 700;

/** The path of a volume as clients send it: one segment, `/` escaped. */
const contentPath = (volume: string, storage = "local", node = "pve1") =>
  `/nodes/${node}/storage/${storage}/content/${encodeURIComponent(volume)}`;

async function listed(storage = "local"): Promise<string[]> {
  const content = (await ok(sim, "GET", `/nodes/pve1/storage/${storage}/content`)) as { volid: string }[];
  return content.map((v) => v.volid);
}

async function taskLog(upid: string): Promise<string[]> {
  const lines = (await ok(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`)) as {
    t: string;
  }[];
  return lines.map((l) => l.t);
}

beforeAll(async () => {
  sim = await PveSimulator.start({ nodes: ["pve1", "pve2"], speed: 0.01, catalog: TEST_CATALOG });
});
afterAll(() => sim?.stop());
beforeEach(() => {
  sim.setSpeed(0.01);
  sim.faults.clear();
});

describe("deleting a volume", () => {
  it("is an imgdel task on the storage, its UPID the answer; the listing drops the volume when the task ends", async () => {
    const volid = await pullImage(sim, "pve1", "7.0.0");
    sim.setSpeed(0.3);
    const upid = (await ok(sim, "DELETE", contentPath(volid))) as string;
    expect(upid).toMatch(/^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:imgdel:local:root@pam!pve-sim:$/);
    expect(await listed()).toContain(volid);
    const st = await waitTask(sim, upid);
    expect(st).toMatchObject({ status: "stopped", exitstatus: "OK", type: "imgdel", id: "local" });
    expect(await taskLog(upid)).toEqual([`Removed volume '${volid}'`, "TASK OK"]);
    expect(await listed()).not.toContain(volid);
  });

  it("a second pull of the same reference then succeeds", async () => {
    const volid = await pullImage(sim, "pve1", "7.1.0");
    const again = await call(sim, "POST", "/nodes/pve1/storage/local/oci-registry-pull", {
      reference: `${IMAGE}:7.1.0`,
    });
    expect(again.reason).toMatch(/^refusing to override existing file/);
    expect((await runTask(sim, "DELETE", contentPath(volid)))["exitstatus"]).toBe("OK");
    expect(await pullImage(sim, "pve1", "7.1.0")).toBe(volid);
    expect(await listed()).toContain(volid);
  });

  it("takes a name relative to the storage; a volid of another storage is a 400", async () => {
    const volid = await pullImage(sim, "pve1", "7.2.0");
    expect((await runTask(sim, "DELETE", contentPath("vztmpl/ldap-gateway_7.2.0.tar")))["exitstatus"]).toBe(
      "OK",
    );
    expect(await listed()).not.toContain(volid);
    const other = await call(sim, "DELETE", contentPath("local:vztmpl/x.tar", "local-lvm"));
    expect(other.status).toBe(400);
    expect(other.body.errors).toEqual({ volume: "storage ID mismatch (local != local-lvm)" });
  });

  it("an unknown file ends WARNINGS: 1 naming it; an unparsable name or an unknown storage fails at once", async () => {
    const st = await runTask(sim, "DELETE", contentPath("local:vztmpl/nothing_1.tar"));
    expect(st["exitstatus"]).toBe("WARNINGS: 1");
    expect(await taskLog(String(st["upid"]))).toEqual([
      "WARN: disk image '/var/lib/vz/template/cache/nothing_1.tar' does not exist",
      "Removed volume 'local:vztmpl/nothing_1.tar'",
      "TASK WARNINGS: 1",
    ]);
    for (const [path, reason] of [
      [contentPath("local:vztmpl/nothing"), "unable to parse directory volume name 'vztmpl/nothing'"],
      [contentPath("local-lvm:foo", "local-lvm"), "unable to parse lvm volume name 'foo'"],
      [contentPath("nosuch:vztmpl/x.tar", "nosuch"), "storage 'nosuch' does not exist"],
    ] as const) {
      const r = await call(sim, "DELETE", path);
      expect([r.status, r.reason], path).toEqual([500, reason]);
    }
  });

  it("needs Datastore.Allocate on the storage, also for a template: the privileges of a pull are not enough", async () => {
    const puller = sim.addToken({
      id: "puller@pve!pull",
      privileges: {
        "/storage/local": ["Datastore.AllocateTemplate", "Datastore.AllocateSpace", "Datastore.Audit"],
        "/nodes/pve1": ["Sys.AccessNetwork", "Sys.Audit"],
      },
    });
    const auth = { authorization: puller.authorization };
    const pull = await runTask(
      sim,
      "POST",
      "/nodes/pve1/storage/local/oci-registry-pull",
      { reference: `${IMAGE}:7.3.0` },
      auth,
    );
    expect(pull["exitstatus"]).toBe("OK");
    const volid = "local:vztmpl/ldap-gateway_7.3.0.tar";
    const r = await call(sim, "DELETE", contentPath(volid), {}, auth);
    expect([r.status, r.reason]).toEqual([
      403,
      "Permission check failed (/storage/local, Datastore.Allocate)",
    ]);
    expect(await listed()).toContain(volid);

    const deleter = sim.addToken({
      id: "deleter@pve!del",
      privileges: { "/storage/local": ["Datastore.Allocate"], "/nodes/pve1": ["Sys.Audit"] },
    });
    const st = await runTask(sim, "DELETE", contentPath(volid), {}, { authorization: deleter.authorization });
    expect(st).toMatchObject({ exitstatus: "OK", user: "deleter@pve", tokenid: "del" });
    expect(await listed()).not.toContain(volid);
  });

  it("a template a container was created from can be deleted, and the container still starts", async () => {
    const volid = await pullImage(sim, "pve1", "7.4.0");
    const id = ++vmid;
    expect((await createCt(sim, "pve1", id, volid))["exitstatus"]).toBe("OK");
    expect((await runTask(sim, "DELETE", contentPath(volid)))["exitstatus"]).toBe("OK");
    expect(await listed()).not.toContain(volid);
    expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`))["exitstatus"]).toBe("OK");
    expect(sim.container(id)?.status).toBe("running");
    await runTask(sim, "DELETE", `/nodes/pve1/lxc/${id}`, { force: 1 });
  });
});

describe("delay", () => {
  it("a task that ended within it answers null; a failed one fails with its exit status", async () => {
    const volid = await pullImage(sim, "pve1", "7.5.0");
    sim.faults.failNextTask({ type: "imgdel", message: "unlink failed - Device or resource busy" });
    const failed = await call(sim, "DELETE", contentPath(volid), { delay: 1 });
    expect([failed.status, failed.reason]).toEqual([500, "unlink failed - Device or resource busy"]);
    expect(await listed()).toContain(volid);
    const done = await call(sim, "DELETE", contentPath(volid), { delay: 1 });
    expect([done.status, done.body.data]).toEqual([200, null]);
    expect(await listed()).not.toContain(volid);
    // A file already gone is a warning, not an error: null again.
    expect((await call(sim, "DELETE", contentPath(volid), { delay: 1 })).body).toEqual({ data: null });
  });

  it("a task still running after it answers its UPID; outside 1..30 is a 400", async () => {
    const volid = await pullImage(sim, "pve1", "7.6.0");
    sim.setSpeed(2); // the removal takes 2 s
    const started = Date.now();
    const upid = (await ok(sim, "DELETE", contentPath(volid), { delay: 1 })) as string;
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(upid).toMatch(/:imgdel:local:/);
    expect(sim.task(upid)?.status).toBe("running");
    expect((await sim.waitTask(upid)).exitstatus).toBe("OK");
    for (const [delay, error] of [
      [0, "value must have a minimum value of 1"],
      [31, "value must have a maximum value of 30"],
    ] as const) {
      const r = await call(sim, "DELETE", contentPath("local:vztmpl/x.tar"), { delay });
      expect([r.status, r.body.errors]).toEqual([400, { delay: error }]);
    }
  });
});

describe("faults", () => {
  it("a dropped answer: the volume is removed all the same, and a repeated delete ends WARNINGS: 1", async () => {
    const volid = await pullImage(sim, "pve1", "7.7.0");
    sim.faults.dropResponses({ method: "DELETE", path: "/nodes/pve1/storage/local/content/*" });
    sim.requestLog.clear();
    await expect(call(sim, "DELETE", contentPath(volid))).rejects.toThrow();
    await sim.idle();
    expect(await listed()).not.toContain(volid);
    const [lost] = sim.requestLog.find("DELETE", /^\/nodes\/pve1\/storage\/local\/content\//);
    expect(lost).toMatchObject({
      status: 0,
      fault: "drop",
      path: `/nodes/pve1/storage/local/content/${volid}`,
    });
    expect((await runTask(sim, "DELETE", contentPath(volid)))["exitstatus"]).toBe("WARNINGS: 1");
  });

  it("fail-task imgdel: the task fails with the message and the volume stays listed", async () => {
    const volid = await pullImage(sim, "pve1", "7.8.0");
    sim.faults.failNextTask({ type: "imgdel", message: "cannot remove protected volume" });
    const st = await runTask(sim, "DELETE", contentPath(volid));
    expect(st["exitstatus"]).toBe("cannot remove protected volume");
    expect(await taskLog(String(st["upid"]))).toEqual(["TASK ERROR: cannot remove protected volume"]);
    expect(await listed()).toContain(volid);
    expect((await runTask(sim, "DELETE", contentPath(volid)))["exitstatus"]).toBe("OK");
  });
});
