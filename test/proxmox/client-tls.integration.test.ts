// Trust, credentials and connections per endpoint: a CA bundle, a wrong CA, insecure mode for one
// endpoint only; 401 and 403 naming the token id (and the missing privilege), never the secret; keep-alive.
import { connect, createServer, type Server } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ProxmoxAuthError, ProxmoxPermissionError, type ProxmoxError } from "../../src/proxmox/errors.js";
import { ProxmoxConfigError } from "../../src/proxmox/transport.js";
import { TEST_CATALOG, TEST_STORAGES } from "../pve-sim/helpers.js";
import { PveSimulator } from "../pve-sim/simulator.js";
import { selfSignedCert } from "../support/self-signed-cert.js";
import { clientFor, expectNoSecret, failure } from "./support.js";

let sim: PveSimulator;

beforeAll(async () => {
  sim = await PveSimulator.start({
    nodes: ["pve1"],
    speed: 0.01,
    catalog: TEST_CATALOG,
    storages: TEST_STORAGES,
  });
});
afterAll(() => sim?.stop());
beforeEach(() => sim.requestLog.clear());

describe("TLS per endpoint", () => {
  it("accepts the server with its CA bundle", async () => {
    const c = clientFor(sim, { tls: { ca: sim.certPem } });
    try {
      expect((await c.version()).release).toBe("9.1");
    } finally {
      c.close();
    }
  });

  it("refuses the server with a wrong CA: permanent, a clear message, nothing sent, not repeated", async () => {
    const other = await selfSignedCert("other-ca", "DNS:localhost,IP:127.0.0.1", 1);
    const c = clientFor(sim, { tls: { ca: other.cert } });
    try {
      const e = (await failure(c.version())) as ProxmoxError;
      expect(e).toMatchObject({ errorClass: "permanent", reason: "tls-untrusted" });
      expect(e.message).toMatch(/TLS certificate is not trusted .*CA bundle/);
      expect(sim.requestLog.entries).toHaveLength(0);
    } finally {
      c.close();
    }
  });

  it("insecure mode accepts the server for that endpoint only", async () => {
    expect(process.env["NODE_TLS_REJECT_UNAUTHORIZED"]).toBeUndefined();
    const insecure = clientFor(sim, { tls: { insecure: true } });
    const plain = clientFor(sim, { tls: {} });
    try {
      expect((await insecure.version()).release).toBe("9.1");
      // Same server, same process, after the insecure client connected: no CA and no insecure mode is refused.
      const e = await failure(plain.version());
      expect(e).toMatchObject({ errorClass: "permanent", reason: "tls-untrusted" });
      expect((await insecure.nextId()) >= 100).toBe(true);
      expect(process.env["NODE_TLS_REJECT_UNAUTHORIZED"]).toBeUndefined();
    } finally {
      insecure.close();
      plain.close();
    }
  });

  it("refuses to be given both a CA and insecure mode", () => {
    expect(() => clientFor(sim, { tls: { ca: sim.certPem, insecure: true } })).toThrow(ProxmoxConfigError);
  });
});

describe("credentials", () => {
  it("401 names the token id, never the secret, and is not repeated", async () => {
    const wrong = "0f3a9c1e-7d2b-4e8f-9a6c-5b4d3e2f1a0b";
    const c = clientFor(sim, { tokenSecret: wrong });
    try {
      const e = await failure(c.nextId());
      expect(e).toBeInstanceOf(ProxmoxAuthError);
      expect(e).toMatchObject({
        status: 401,
        errorClass: "permanent",
        reason: "unauthorized",
        tokenId: sim.tokenId,
      });
      expect(e.message).toContain(sim.tokenId);
      expectNoSecret(e, wrong);
      expect(sim.requestLog.find("GET", "/cluster/nextid")).toHaveLength(1);
    } finally {
      c.close();
    }
  });

  it("403 names the token id, the missing privilege and its path, never the secret", async () => {
    const token = sim.addToken({ id: "ops@pve!limited", privileges: { "/vms": ["VM.Audit"] } });
    const c = clientFor(sim, { tokenId: token.id, tokenSecret: token.secret });
    try {
      const e = await failure(
        c.createContainer("pve1", {
          vmid: 4321,
          ostemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
        }),
      );
      expect(e).toBeInstanceOf(ProxmoxPermissionError);
      expect(e).toMatchObject({
        status: 403,
        errorClass: "permanent",
        reason: "forbidden",
        tokenId: "ops@pve!limited",
        privileges: ["VM.Allocate"],
        aclPath: "/vms/4321",
      });
      expect(e.message).toMatch(/API token ops@pve!limited lacks privilege VM\.Allocate on \/vms\/4321/);
      expectNoSecret(e, token.secret);

      const dns = await failure(c.nodeDns("pve1"));
      expect(dns).toMatchObject({ privileges: ["Sys.Audit"], aclPath: "/nodes/pve1" });
      expect(sim.requestLog.find("GET", "/nodes/pve1/dns")).toHaveLength(1);
      expectNoSecret(dns, token.secret);
    } finally {
      c.close();
    }
  });

  it("a malformed token id is refused before any request, without echoing the secret", () => {
    let thrown: unknown;
    try {
      clientFor(sim, { tokenId: "not-a-token", tokenSecret: "s3cr3t-value-123" });
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ProxmoxConfigError);
    expectNoSecret(thrown as Error, "s3cr3t-value-123");
  });
});

describe("connections", () => {
  let proxy: Server;
  let connections = 0;
  let proxyPort = 0;

  beforeAll(async () => {
    // A TCP relay in front of the simulator, counting the connections the client opens.
    proxy = createServer((client) => {
      connections++;
      const upstream = connect(sim.port, "127.0.0.1");
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
    proxyPort = (proxy.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => proxy.close(() => r())));

  it("keeps one connection alive for sequential calls", async () => {
    const c = clientFor(sim, { endpoint: `https://127.0.0.1:${proxyPort}` });
    try {
      connections = 0;
      for (let i = 0; i < 20; i++) await c.nextId();
      await c.version();
      expect(connections).toBe(1);
    } finally {
      c.close();
    }
  });
});
