import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PveSimulator } from "./simulator.js";
import { call, ok, TEST_CATALOG, ticketLogin } from "./helpers.js";

let sim: PveSimulator;
beforeAll(async () => {
  sim = await PveSimulator.start({ nodes: ["pve1", "pve2"], speed: 0, catalog: TEST_CATALOG });
});
afterAll(() => sim?.stop());

describe("transport", () => {
  it("serves /api2/json with {data} bodies over HTTPS with its own certificate", async () => {
    const r = await call(sim, "GET", "/version");
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ data: { version: "9.1.1", release: "9.1", repoid: expect.any(String) } });
    expect(r.headers["content-type"]).toMatch(/^application\/json/);
    expect(sim.fingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
  });

  it("answers 501 for a path it does not know", async () => {
    const r = await call(sim, "GET", "/nodes/pve1/qemu-nonsense");
    expect(r.status).toBe(501);
    expect(r.reason).toBe("Method 'GET /api2/json/nodes/pve1/qemu-nonsense' not implemented");
  });

  it("lists the configured nodes", async () => {
    const nodes = (await ok(sim, "GET", "/nodes")) as { node: string; status: string }[];
    expect(nodes.map((n) => n.node)).toEqual(["pve1", "pve2"]);
  });

  it("refuses a node that is not in the cluster", async () => {
    const r = await call(sim, "GET", "/nodes/pve9/lxc");
    expect(r.status).toBe(500);
    expect(r.body.message).toBe("no such cluster node 'pve9'\n");
  });
});

describe("authentication", () => {
  it("401 No ticket without credentials", async () => {
    const r = await call(sim, "GET", "/nodes/pve1/lxc", {}, { authorization: null });
    expect(r.status).toBe(401);
    expect(r.reason).toBe("No ticket");
  });

  it("401 for a wrong token secret or an unknown token", async () => {
    for (const authorization of [
      `PVEAPIToken=${sim.tokenId}=wrong`,
      `PVEAPIToken=nobody@pve!x=${sim.tokenSecret}`,
      "PVEAPIToken=garbage",
    ]) {
      const r = await call(sim, "GET", "/nodes/pve1/lxc", {}, { authorization });
      expect(r.status).toBe(401);
      expect(r.reason).toBe("authentication failure");
    }
  });

  it("delays a failed authentication by 3 s (scaled by speed)", async () => {
    sim.setSpeed(0.1);
    try {
      const t0 = Date.now();
      const r = await call(sim, "GET", "/version", {}, { authorization: `PVEAPIToken=${sim.tokenId}=wrong` });
      expect(r.status).toBe(401);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    } finally {
      sim.setSpeed(0);
    }
  });

  it("accepts a space instead of '=' after the PVEAPIToken prefix", async () => {
    const r = await call(
      sim,
      "GET",
      "/nodes/pve1/lxc",
      {},
      { authorization: `PVEAPIToken ${sim.tokenId}=${sim.tokenSecret}` },
    );
    expect(r.status).toBe(200);
  });

  it("a ticket of another user gets that user's privileges, and root-only checks still refuse it", async () => {
    sim.addUser("admin@pve", "pw1", {
      "/": ["VM.Allocate", "VM.Config.Options", "Datastore.AllocateSpace", "Datastore.Audit"],
    });
    const admin = await ticketLogin(sim, "admin@pve", "pw1");
    const r = await call(
      sim,
      "POST",
      "/nodes/pve1/lxc",
      { vmid: 170, ostemplate: "local:vztmpl/x.tar", storage: "local-lvm", hookscript: "local:snippets/h" },
      admin,
    );
    expect([r.status, r.reason]).toEqual([
      403,
      "Permission check failed (changing the hookscript is only allowed for root@pam)",
    ]);
  });

  it("ticket login: cookie for reads, CSRFPreventionToken required for writes", async () => {
    const bad = await call(
      sim,
      "POST",
      "/access/ticket",
      { username: "root@pam", password: "nope" },
      { authorization: null },
    );
    expect(bad.status).toBe(401);
    expect(bad.reason).toBe("authentication failure");

    const t = (await ok(
      sim,
      "POST",
      "/access/ticket",
      { username: "root", realm: "pam", password: sim.rootPassword },
      { authorization: null },
    )) as Record<string, string>;
    expect(t["username"]).toBe("root@pam");
    expect(t["ticket"]).toMatch(/^PVE:root@pam:/);
    const cookie = `PVEAuthCookie=${encodeURIComponent(t["ticket"]!)}`;
    const read = await call(
      sim,
      "GET",
      "/nodes/pve1/dns",
      {},
      { authorization: null, headers: { Cookie: cookie } },
    );
    expect(read.status).toBe(200);

    const noCsrf = await call(
      sim,
      "PUT",
      "/nodes/pve1/dns",
      { search: "example.com" },
      { authorization: null, headers: { Cookie: cookie } },
    );
    expect(noCsrf.status).toBe(401);
    expect(noCsrf.reason).toBe("Permission denied - invalid csrf token");

    const write = await call(
      sim,
      "PUT",
      "/nodes/pve1/dns",
      { search: "example.com", dns1: "127.0.0.53" },
      { authorization: null, headers: { Cookie: cookie, CSRFPreventionToken: t["CSRFPreventionToken"]! } },
    );
    expect(write.status).toBe(200);
  });
});

describe("privileges", () => {
  it("403 names the path and the missing privilege", async () => {
    const t = sim.addToken({ id: "audit@pve!ro", privileges: { "/vms": ["VM.Audit"] } });
    const r = await call(
      sim,
      "POST",
      "/nodes/pve1/lxc",
      { vmid: 150, ostemplate: "local:vztmpl/x.tar" },
      { authorization: t.authorization },
    );
    expect(r.status).toBe(403);
    expect(r.reason).toBe("Permission check failed (/vms/150, VM.Allocate)");
    expect(r.body.message).toBe("Permission check failed (/vms/150, VM.Allocate)\n");
  });

  it("an ACL entry covers paths below it unless propagate is off", async () => {
    const t = sim.addToken({
      id: "dns@pve!a",
      acl: [
        { path: "/nodes", privs: ["Sys.Audit"] },
        { path: "/vms", privs: ["VM.Audit"], propagate: false },
      ],
    });
    expect((await call(sim, "GET", "/nodes/pve2/dns", {}, { authorization: t.authorization })).status).toBe(
      200,
    );
    const put = await call(
      sim,
      "PUT",
      "/nodes/pve2/dns",
      { search: "x.org" },
      { authorization: t.authorization },
    );
    expect(put.status).toBe(403);
    expect(put.reason).toBe("Permission check failed (/nodes/pve2, Sys.Modify)");
  });
});

describe("storage", () => {
  it("lists the node's storages with their content types", async () => {
    const list = (await ok(sim, "GET", "/nodes/pve1/storage")) as Record<string, unknown>[];
    expect(list.map((s) => [s["storage"], s["type"], s["content"]])).toEqual([
      ["local", "dir", "iso,vztmpl,backup"],
      ["local-lvm", "lvmthin", "rootdir,images"],
    ]);
    const tpl = (await ok(sim, "GET", "/nodes/pve1/storage", { content: "vztmpl" })) as Record<
      string,
      unknown
    >[];
    expect(tpl.map((s) => s["storage"])).toEqual(["local"]);
    const r = await call(sim, "GET", "/nodes/pve1/storage/nope/content");
    expect([r.status, r.reason]).toEqual([500, "storage 'nope' does not exist"]);
  });
});

describe("parameters", () => {
  it("400 Parameter verification failed with an error per parameter", async () => {
    const r = await call(sim, "PUT", "/nodes/pve1/dns", { dns1: "not-an-ip", bogus: 1 });
    expect(r.status).toBe(400);
    expect(r.reason).toBe("Parameter verification failed.");
    expect(r.body.errors).toEqual({
      search: "property is missing and it is not optional",
      dns1: "invalid format - value does not look like a valid IP address",
      bogus: "property is not defined in schema and the schema does not allow additional properties",
    });
  });

  it("takes JSON bodies as well as form-urlencoded ones", async () => {
    await ok(sim, "PUT", "/nodes/pve2/dns", { search: "json.example", dns1: "10.0.0.1" }, { json: true });
    expect(await ok(sim, "GET", "/nodes/pve2/dns")).toEqual({ search: "json.example", dns1: "10.0.0.1" });
  });

  it("booleans are 1/0 (true/false/yes/no/on/off accepted), other values refused", async () => {
    const r = await call(sim, "GET", "/nodes/pve1/tasks", { errors: "maybe" });
    expect(r.status).toBe(400);
    expect(r.body.errors).toEqual({ errors: "type check ('boolean') failed - got 'maybe'" });
    expect((await call(sim, "GET", "/nodes/pve1/tasks", { errors: "true" })).status).toBe(200);
    expect((await call(sim, "GET", "/nodes/pve1/tasks", { errors: 0 })).status).toBe(200);
  });
});

describe("node DNS", () => {
  it("GET gives search and dns1..3; PUT replaces them per node", async () => {
    await ok(sim, "PUT", "/nodes/pve1/dns", {
      search: "site-a.example",
      dns1: "127.0.0.53",
      dns2: "10.1.1.1",
      dns3: "::1",
    });
    expect(await ok(sim, "GET", "/nodes/pve1/dns")).toEqual({
      search: "site-a.example",
      dns1: "127.0.0.53",
      dns2: "10.1.1.1",
      dns3: "::1",
    });
    expect(sim.state.dns["pve1"]?.search).toBe("site-a.example");
    const other = (await ok(sim, "GET", "/nodes/pve2/dns")) as Record<string, string>;
    expect(other["search"]).not.toBe("site-a.example");
  });
});

describe("request log", () => {
  it("records method, path, params, caller and status with secrets masked", async () => {
    sim.requestLog.clear();
    await call(
      sim,
      "POST",
      "/access/ticket",
      { username: "root@pam", password: "hunter2" },
      { authorization: null },
    );
    const env = [
      "SQL_URI=postgres://ldap:s3cret@db:5432/users",
      "LDAP_BASE_DN=dc=example,dc=com",
      "API_TOKEN=abc",
      "DB_PASSWORD=pw",
    ].join("\0");
    await call(sim, "PUT", "/nodes/pve1/lxc/999/config", { env });
    const [login, put] = sim.requestLog.entries;
    expect(login).toMatchObject({
      method: "POST",
      path: "/access/ticket",
      params: { username: "root@pam", password: "***" },
      status: 401,
    });
    expect(put).toMatchObject({
      method: "PUT",
      path: "/nodes/pve1/lxc/999/config",
      caller: sim.tokenId,
      status: 500,
    });
    expect(put!.params["env"]).toBe(
      ["SQL_URI=***", "LDAP_BASE_DN=dc=example,dc=com", "API_TOKEN=***", "DB_PASSWORD=***"].join("\0"),
    );
    expect(JSON.stringify(sim.requestLog.entries)).not.toMatch(/s3cret|hunter2|=pw|=abc/);
    expect(JSON.stringify(sim.requestLog.entries)).not.toContain(sim.tokenSecret);
    expect(sim.requestLog.find("PUT", "/nodes/*/lxc/*/config")).toHaveLength(1);
  });
});
