import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { gatewayBundle } from "../gateway/bundle.js";
import { certFiles } from "../gateway/tls.js";
import { attachLdapSite, ldapGatewayImage } from "./ldap-site.js";
import { PveSimulator, type ContainerEvent, type PveSimulatorOptions } from "./simulator.js";
import { AddressBlock } from "./runtime.js";
import { call, createCt, ok, probe, pullImage, runTask, TEST_CATALOG } from "./helpers.js";

let sim: PveSimulator;
let vol: string;
let vmid = 500;
const extra: PveSimulator[] = [];
const dirs: string[] = [];
const opts: PveSimulatorOptions = { nodes: ["pve1"], speed: 0.01, catalog: TEST_CATALOG, stopGraceMs: 300 };

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Creates a gateway container, sets env (ours), starts it and waits until it listens. */
async function running(env: string[] = ["LDAP_BASE_DN=dc=example,dc=com"]): Promise<number> {
  const id = ++vmid;
  await createCt(sim, "pve1", id, vol);
  const conf = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`)) as Record<string, string>;
  await ok(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, { env: [conf["env"], ...env].join("\0") });
  expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`))["exitstatus"]).toBe("OK");
  await sim.waitBooted(id);
  return id;
}

beforeAll(async () => {
  sim = await PveSimulator.start(opts);
  vol = await pullImage(sim, "pve1", "1.0.0");
});
afterAll(async () => {
  await sim?.stop();
  for (const s of extra) await s.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
beforeEach(() => sim.faults.clear());
afterEach(() => sim.setSpeed(0.01));

describe("containers are processes", () => {
  it("runs the catalog's command with the container's env on its own loopback address", async () => {
    const id = await running(["SQL_URI=postgres://u:p@db/x", "LDAP_BASE_DN=dc=example,dc=com"]);
    const ct = sim.container(id)!;
    expect(ct.address).toMatch(/^127\.\d+\.\d+\.\d+$/);
    expect(sim.containerEnv(id)).toMatchObject({ SQL_URI: "postgres://u:p@db/x", NODE_VERSION: "24.1.0" });
    const me = await probe(ct.address);
    expect(me["address"]).toBe(ct.address);
    expect(me["argv"]).toEqual([`ct${id}`]);
    expect(me["env"]).toMatchObject({
      BIND_IP: ct.address,
      PVE_SIM_ADDRESS: ct.address,
      HOSTNAME: `ct${id}`,
      NODE_VERSION: "24.1.0",
      SQL_URI: "postgres://u:p@db/x",
      LDAP_BASE_DN: "dc=example,dc=com",
      PVE_SIM_ENTRYPOINT: "docker-entrypoint.sh node index.js",
    });
    const ifaces = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/interfaces`)) as Record<string, string>[];
    expect(ifaces.find((i) => i["name"] === "eth0")?.["inet"]).toBe(`${ct.address}/8`);
    const cur = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/status/current`)) as Record<string, unknown>;
    expect(cur["pid"]).toBe(me["pid"]);
  });

  it("each container has its own address", async () => {
    const a = await running();
    const b = await running();
    expect(sim.container(a)!.address).not.toBe(sim.container(b)!.address);
    expect((await probe(sim.container(b)!.address))["hostname"]).toBe(`ct${b}`);
  });

  it("env changes on a running container are pending until the next start", async () => {
    const id = await running(["MODE=old"]);
    const addr = sim.container(id)!.address;
    const conf = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`)) as Record<string, string>;
    const newEnv = conf["env"]!.replace("MODE=old", "MODE=new");
    await ok(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, { env: newEnv, memory: 1024 });
    expect(((await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`)) as Record<string, string>)["env"]).toBe(
      newEnv,
    );
    const current = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`, { current: 1 })) as Record<
      string,
      unknown
    >;
    expect(current["env"]).toBe(conf["env"]);
    expect(current["memory"]).toBe(1024); // memory is hot-plugged
    const pending = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/pending`)) as Record<string, unknown>[];
    expect(pending.find((p) => p["key"] === "env")).toEqual({
      key: "env",
      value: conf["env"],
      pending: newEnv,
    });
    expect(((await probe(addr))["env"] as Record<string, string>)["MODE"]).toBe("old");
    // revert drops a pending change; set it again
    await ok(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, { revert: "env" });
    expect(((await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`)) as Record<string, string>)["env"]).toBe(
      conf["env"],
    );
    await ok(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, { env: newEnv });

    await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/stop`);
    await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`);
    await sim.waitBooted(id);
    expect(((await probe(addr))["env"] as Record<string, string>)["MODE"]).toBe("new");
    expect((await ok(sim, "GET", `/nodes/pve1/lxc/${id}/pending`)) as unknown[]).not.toContainEqual(
      expect.objectContaining({ pending: expect.anything() }),
    );
  });

  it("a process killed (fault) or crashing is reported stopped", async () => {
    const id = await running();
    const pid = (await probe(sim.container(id)!.address))["pid"] as number;
    expect(sim.faults.killContainer(id)).toBe(true);
    await until(() => sim.container(id)?.status === "stopped");
    expect(alive(pid)).toBe(false);
    expect(
      ((await ok(sim, "GET", `/nodes/pve1/lxc/${id}/status/current`)) as Record<string, unknown>)["status"],
    ).toBe("stopped");
    const res = (await ok(sim, "GET", "/cluster/resources", { type: "vm" })) as Record<string, unknown>[];
    expect(res.find((r) => r["vmid"] === id)?.["status"]).toBe("stopped");
    // and it starts again
    expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`))["exitstatus"]).toBe("OK");

    const crash = await running(["LISTENER_EXIT_AFTER_MS=300"]);
    await until(() => sim.container(crash)?.status === "stopped");
  });

  it("a process that exits at once makes the start task fail", async () => {
    const id = ++vmid;
    await createCt(sim, "pve1", id, vol);
    const conf = (await ok(sim, "GET", `/nodes/pve1/lxc/${id}/config`)) as Record<string, string>;
    await ok(sim, "PUT", `/nodes/pve1/lxc/${id}/config`, { env: `${conf["env"]}\0LISTENER_FAIL_START=1` });
    sim.setSpeed(0.05);
    const st = await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/start`);
    expect(st["exitstatus"]).toBe(`startup for container '${id}' failed`);
    expect(sim.container(id)?.status).toBe("stopped");
  });

  it("stop sends SIGTERM, then SIGKILL after the grace period", async () => {
    const id = await running(["LISTENER_IGNORE_SIGTERM=1"]);
    const pid = (await probe(sim.container(id)!.address))["pid"] as number;
    const t0 = Date.now();
    expect((await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/stop`))["exitstatus"]).toBe("OK");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    expect(alive(pid)).toBe(false);
    expect(sim.container(id)?.status).toBe("stopped");
  });

  it("shutdown of a process that ignores SIGTERM fails after timeout unless forceStop", async () => {
    const id = await running(["LISTENER_IGNORE_SIGTERM=1"]);
    const st = await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/shutdown`, { timeout: 1 });
    expect(st["exitstatus"]).toBe(`command 'lxc-stop -n ${id} --nokill --timeout 1' failed: exit code 1`);
    expect(sim.container(id)?.status).toBe("running");
    expect(
      (await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/shutdown`, { timeout: 1, forceStop: 1 }))[
        "exitstatus"
      ],
    ).toBe("OK");
    expect(sim.container(id)?.status).toBe("stopped");
  });

  it("emits container events (created, started, booted, stopped, destroyed) with hostname and address", async () => {
    const seen: ContainerEvent[] = [];
    const listener = (e: ContainerEvent) => seen.push(e);
    sim.events.on("container", listener);
    try {
      const id = await running();
      await runTask(sim, "DELETE", `/nodes/pve1/lxc/${id}`, { force: 1 });
      const mine = seen.filter((e) => e.vmid === id);
      expect(mine.map((e) => e.kind)).toEqual(["created", "started", "booted", "stopped", "destroyed"]);
      expect(mine[0]).toMatchObject({
        node: "pve1",
        hostname: `ct${id}`,
        address: expect.stringMatching(/^127\./),
      });
    } finally {
      sim.events.off("container", listener);
    }
  });

  it("the builtin runtime listens without a process", async () => {
    const v = (
      await runTask(sim, "POST", "/nodes/pve1/storage/local/oci-registry-pull", {
        reference: "docker.io/library/builtin:1",
      })
    )["exitstatus"];
    expect(v).toBe("OK");
    const id = ++vmid;
    await createCt(sim, "pve1", id, "local:vztmpl/builtin_1.tar", { start: 1 });
    await sim.idle();
    await sim.waitBooted(id);
    const { connect } = await import("node:net");
    const line = await new Promise<string>((res, rej) => {
      const s = connect({ host: sim.container(id)!.address, port: 636 });
      let t = "";
      s.on("data", (d: Buffer) => (t += d.toString()));
      s.on("end", () => res(t));
      s.on("error", rej);
    });
    expect(line).toBe(`CT ${id} ct${id}\n`);
    await runTask(sim, "POST", `/nodes/pve1/lxc/${id}/status/stop`);
    expect(sim.container(id)?.status).toBe("stopped");
  });
});

describe("address blocks", () => {
  it("simulators side by side get different 127.X blocks; a lease of a dead process is taken over", () => {
    const a = AddressBlock.lease();
    const b = AddressBlock.lease();
    try {
      expect(a.octet).not.toBe(b.octet);
      expect(a.address(1)).toBe(`127.${a.octet}.0.1`);
      expect(a.address(254)).toBe(`127.${a.octet}.0.254`);
      expect(a.address(255)).toBe(`127.${a.octet}.1.1`);
      // A block asked for (a state file's) is taken when free, or when its lease's owner is gone.
      const octet = b.octet;
      b.release();
      writeFileSync(join(tmpdir(), "pve-sim-address-blocks", String(octet)), "999999999");
      const taken = AddressBlock.lease(undefined, octet);
      expect(taken.octet).toBe(octet);
      taken.release();
    } finally {
      a.release();
      b.release();
    }
  });
});

describe("state file", () => {
  it("survives a restart: containers, volumes, tokens; running ones started again; interrupted tasks 'unexpected status'", async () => {
    const dir = mkdtempSync(join(tmpdir(), "pve-sim-test-"));
    dirs.push(dir);
    const stateFile = join(dir, "state.json");
    const a = await PveSimulator.start({ ...opts, stateFile });
    extra.push(a);
    const v = await pullImage(a, "pve1", "7.0.0");
    await createCt(a, "pve1", 700, v);
    await runTask(a, "POST", "/nodes/pve1/lxc/700/status/start");
    await a.waitBooted(700);
    const pid = (await probe(a.container(700)!.address))["pid"] as number;
    await createCt(a, "pve1", 701, v);
    a.setSpeed(10); // a start that will not finish before the stop
    const upid = (await ok(a, "POST", "/nodes/pve1/lxc/701/status/start")) as string;
    const secret = a.tokenSecret;
    await a.stop();
    expect(alive(pid)).toBe(false);

    const b = await PveSimulator.start({ ...opts, stateFile });
    extra.push(b);
    expect(b.tokenSecret).toBe(secret);
    expect((await b.waitTask(upid)).exitstatus).toBe("unexpected status");
    const st = (await ok(b, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)) as Record<
      string,
      unknown
    >;
    expect(st["exitstatus"]).toBe("unexpected status");
    expect(b.container(700)?.status).toBe("running");
    expect(b.container(701)?.status).toBe("stopped");
    await b.waitBooted(700);
    const me = await probe(b.container(700)!.address);
    expect(me["pid"]).not.toBe(pid);
    const content = (await ok(b, "GET", "/nodes/pve1/storage/local/content")) as { volid: string }[];
    expect(content.map((c) => c.volid)).toContain(v);
    expect(
      (
        (await call(b, "POST", "/nodes/pve1/lxc", { vmid: 700, ostemplate: v, storage: "local-lvm" })) as {
          reason: string;
        }
      ).reason,
    ).toBe("CT 700 already exists on node 'pve1'");
    await b.stop();
  });

  it("stop kills every process it started", async () => {
    const s = await PveSimulator.start(opts);
    extra.push(s);
    const v = await pullImage(s, "pve1", "8.0.0");
    const pids: number[] = [];
    for (const id of [801, 802, 803]) {
      await createCt(s, "pve1", id, v, { start: 1 });
    }
    await s.idle();
    for (const id of [801, 802, 803]) {
      await s.waitBooted(id);
      pids.push((await probe(s.container(id)!.address))["pid"] as number);
    }
    await s.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });
});

describe("another gateway build", () => {
  /** The certificate a gateway container serves on its address. */
  function served(address: string): Promise<X509Certificate> {
    return new Promise((resolve, reject) => {
      const s = tls.connect({ host: address, port: 636, rejectUnauthorized: false }, () => {
        resolve(new X509Certificate(s.getPeerCertificate(true).raw));
        s.end();
      });
      s.on("error", reject);
    });
  }

  it(
    "runs the argv in PVE_SIM_GATEWAY_COMMAND in PVE_SIM_GATEWAY_CWD, where {vmid} gives each container its own directory and certificate",
    { timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "pve-sim-gateway-build-"));
      dirs.push(dir);
      // The stand-in's own bundle, launched through the variable as another build would be.
      const argv = ["node", await gatewayBundle(), "--startup-scale=0.2"];
      const image = await ldapGatewayImage({
        env: { PVE_SIM_GATEWAY_COMMAND: JSON.stringify(argv), PVE_SIM_GATEWAY_CWD: join(dir, "ct-{vmid}") },
      });
      const s = await PveSimulator.start({ speed: 0, catalog: [image], stopGraceMs: 1000 });
      extra.push(s);
      const site = await attachLdapSite(s);
      try {
        const v = await pullImage(s, "pve1", "1.4.0");
        const start = async (id: number, name: string): Promise<void> => {
          expect((await createCt(s, "pve1", id, v, { hostname: name }))["exitstatus"]).toBe("OK");
          const env = [
            "DIRECTORY_BACKEND=sql",
            "AUTH_BACKENDS=sql",
            `LDAP_COMMON_NAME=${name}`,
            "LDAP_BASE_DN=dc=example,dc=com",
            // Never reached: the listener starts without the database.
            "SQL_URI=postgres://manager:x@127.0.0.1:1/manager",
            "SQL_QUERY_ALL_USERS=SELECT 1",
            "SQL_QUERY_ONE_USER=SELECT 1",
            "SQL_QUERY_ALL_GROUPS=SELECT 1",
            "SQL_QUERY_GROUPS_BY_MEMBER=SELECT 1",
          ];
          await ok(s, "PUT", `/nodes/pve1/lxc/${id}/config`, { env: env.join("\0") });
          await power(id, "start");
        };
        const power = async (id: number, action: "start" | "stop"): Promise<void> => {
          expect((await runTask(s, "POST", `/nodes/pve1/lxc/${id}/status/${action}`))["exitstatus"]).toBe(
            "OK",
          );
          if (action === "start") await s.waitBooted(id, 20_000);
        };
        /** The container's working directory and the certificate it serves, checked against its ./cert. */
        const inspect = async (id: number): Promise<{ cwd: string; fingerprint: string }> => {
          const pid = s.core.runtime.pid(id)!;
          expect(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean)).toEqual(argv);
          const cwd = readlinkSync(`/proc/${pid}/cwd`);
          const kept = new X509Certificate(readFileSync(certFiles(cwd).cert));
          const cert = await served(s.container(id)!.address);
          expect(cert.fingerprint256).toBe(kept.fingerprint256);
          return { cwd, fingerprint: cert.fingerprint256 };
        };

        await start(9201, "ldap1");
        await start(9202, "ldap2");
        const a = await inspect(9201);
        const b = await inspect(9202);
        expect(a.cwd).toBe(join(dir, "ct-9201"));
        expect(b.cwd).toBe(join(dir, "ct-9202"));
        expect(a.fingerprint).not.toBe(b.fingerprint);
        expect((await served(s.container(9202)!.address)).subject).toBe("CN=ldap2");

        // A restart keeps the container's certificate ...
        await power(9201, "stop");
        await power(9201, "start");
        expect((await inspect(9201)).fingerprint).toBe(a.fingerprint);
        // ... a destroyed container's directory goes with it, and a new one of that vmid makes its own.
        await power(9201, "stop");
        expect((await runTask(s, "DELETE", "/nodes/pve1/lxc/9201"))["exitstatus"]).toBe("OK");
        expect(existsSync(a.cwd)).toBe(false);
        await start(9201, "ldap1");
        expect((await inspect(9201)).fingerprint).not.toBe(a.fingerprint);
      } finally {
        await site.stop();
        await s.stop();
      }
    },
  );

  it("defaults to the stand-in, each container in a directory of its own under a temporary one", async () => {
    const image = await ldapGatewayImage({ env: {} });
    expect(image.command).toEqual([process.execPath, await gatewayBundle(), "--startup-scale=1"]);
    expect(image.cwd).toMatch(/\/ct\{vmid\}$/);
    expect((await ldapGatewayImage({ env: { PVE_SIM_GATEWAY_STARTUP_SCALE: "0.1" } })).command?.at(-1)).toBe(
      "--startup-scale=0.1",
    );
    await expect(ldapGatewayImage({ env: { PVE_SIM_GATEWAY_COMMAND: "node index.js" } })).rejects.toThrow(
      /PVE_SIM_GATEWAY_COMMAND is not JSON/,
    );
  });
});
