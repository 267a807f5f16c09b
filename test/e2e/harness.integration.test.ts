// The end-to-end world itself: it comes up on the suite's control plane with
// everything an LdapPair needs, the operator runs as its own process and is
// ready, an LdapPair goes in and comes back out through kubectl, and stop()
// leaves no process behind.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { gatewayBundle } from "../gateway/bundle.js";
import { DEFAULT_COLUMNS } from "./checks.js";
import { EXAMPLE_IMAGE, EXAMPLE_NAME, SECRETS } from "./example.js";
import { CRD_NAME, startWorld, type World } from "./harness.js";
import { descendantsOf, listProcesses } from "./processes.js";
import { provisionByHand, type HandMadeServer } from "./provision.js";

const run = promisify(execFile);

describe("the end-to-end world", () => {
  let world: World;
  let before: Set<number>;

  beforeAll(async () => {
    // The bundle's build may leave esbuild's service running for good: start it before the snapshot.
    await gatewayBundle();
    before = new Set(descendantsOf(await listProcesses(), process.pid).map((p) => p.pid));
    world = await startWorld({ kubeconfig: inject("kubeconfig") });
  }, 180_000);

  afterAll(async () => {
    await world?.stop();
  });

  it("installs the CRD and creates the namespace with the Secrets the example refers to", async () => {
    expect(
      await world.kubectl(
        "get",
        `crd/${CRD_NAME}`,
        "-o",
        "jsonpath={.status.conditions[?(@.type=='Established')].status}",
      ),
    ).toBe("True");
    const read = async (name: string, key: string) => {
      const secret = await world.core.readNamespacedSecret({ name, namespace: world.namespace });
      return Buffer.from(secret.data?.[key] ?? "", "base64").toString();
    };
    expect(await read(SECRETS.token.name, SECRETS.token.tokenIdKey)).toBe(world.sim.tokenId);
    expect(await read(SECRETS.token.name, SECRETS.token.tokenSecretKey)).toBe(world.sim.tokenSecret);
    expect(await read(SECRETS.database.name, SECRETS.database.key)).toBe(world.postgres.url);
    expect(await read(SECRETS.ca.name, SECRETS.ca.key)).toBe(world.sim.certPem);
  });

  it("applies the example LdapPair and reads it back with kubectl get ldappairs", async () => {
    // A finalizer nobody removes: stop() must still take the pair away from the shared control plane.
    const stored = await world.apply(
      world.exampleLdapPair({ metadata: { finalizers: ["e2e.ldapgateway.io/hold"] } }),
    );
    expect(stored.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    // The API server's defaults are in, and the servers sit on different nodes.
    expect(stored.spec?.["deletionPolicy"]).toBe("Retain");
    const servers = stored.spec?.["servers"] as { name: string; node: string }[];
    expect(servers.map((s) => s.node)).toEqual(["pve1", "pve2"]);

    const table = (await world.kubectl("get", "ldappairs")).trimEnd().split("\n");
    expect(table[0]!.split(/\s+/)).toEqual(DEFAULT_COLUMNS);
    expect(table[1]).toMatch(new RegExp(`^${EXAMPLE_NAME}\\s.*${EXAMPLE_IMAGE.replace(/[.]/g, "\\.")}`));
    const wide = (await world.kubectl("get", "ldappairs", "-o", "wide")).split("\n")[0]!;
    expect(wide.split(/\s+/)).toEqual(expect.arrayContaining(["STEP", "REASON", "MESSAGE"]));
  });

  it("runs the operator as its own process: ready on /readyz, JSON log in a file", async () => {
    expect(world.operator.pid).toBeGreaterThan(0);
    expect(await world.operator.readyz()).toBe(200);
    const started = world.operator.logLines().find((l) => l.msg === "operator started");
    expect(started).toMatchObject({ probePort: world.operator.probePort, namespaces: [world.namespace] });
    // Only the pair's own namespace is watched: the Lease lives there too.
    const lease = await world.kubectl("get", "lease", "-o", "jsonpath={.items[*].spec.holderIdentity}");
    expect(lease).toBe(`e2e-${world.id}`);
  });

  it("waits for a condition through kubectl wait, and says what it saw when it times out", async () => {
    // Stopped, the operator cannot overwrite the condition written here.
    const exit = await world.operator.stop();
    expect(exit?.code).toBe(0);
    await world.kubectl(
      "patch",
      `ldappair/${EXAMPLE_NAME}`,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          conditions: [
            {
              type: "HarnessCheck",
              status: "False",
              reason: "Written",
              message: "written by the harness test",
              lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
            },
          ],
        },
      }),
    );
    await world.waitForCondition(EXAMPLE_NAME, "HarnessCheck", "False", 10_000);
    await expect(world.waitForCondition(EXAMPLE_NAME, "HarnessCheck", "True", 1_500)).rejects.toThrow(
      /did not reach HarnessCheck=True within 1500 ms[\s\S]*written by the harness test/,
    );
    // Started again with the same flags, it renews its own lease and is ready again.
    world.operator.start();
    await world.operator.waitReady();
    expect(world.operator.startCount).toBe(2);
  });

  it("runs the gateway image on the simulated site: sample users over LDAPS, by address and through the site DNS", async () => {
    // A tag of its own, so that its pull never meets one of the operator's for the example's pair.
    const server: HandMadeServer = await provisionByHand(world.sim, world.postgres, {
      hostname: "harness1",
      node: "pve2",
      image: "ghcr.io/mieweb/ldap-gateway:harness",
    });
    expect(world.container("harness1")?.vmid).toBe(server.vmid);
    // In a working directory of its own under the world's, where it made its certificate.
    expect(existsSync(join(world.dir, "containers", String(server.vmid), "cert"))).toBe(true);
    const { stdout } = await run(
      "ldapsearch",
      [
        "-x",
        "-LLL",
        "-H",
        `ldaps://${server.address}:636`,
        "-b",
        world.baseDn,
        "(objectClass=posixAccount)",
        "uid",
      ],
      { env: { ...process.env, LDAPTLS_REQCERT: "never" }, timeout: 20_000 },
    );
    const uids = [...stdout.matchAll(/^uid: (.*)$/gm)].map((m) => m[1]);
    expect(uids.sort()).toEqual(world.postgres.seed.users.map((u) => u.uid).sort());

    const client = world.failoverClient({ uris: ["ldaps://harness1:636"] });
    try {
      const found = await client.lookupUser("alice");
      expect(found).toMatchObject({ ok: true, server: "harness1" });
    } finally {
      await client.close();
    }
  });

  it("stops everything and leaves no process behind", async () => {
    const alive = await world.leftoverProcesses();
    // The check sees the world's processes while they run: the operator, PostgreSQL, the container.
    expect(alive.map((p) => p.pid)).toContain(world.operator.pid);
    expect(alive.some((p) => p.args.includes(world.postgres.dataDir))).toBe(true);
    expect(alive.some((p) => p.args.includes("--startup-scale="))).toBe(true);

    await world.stop();
    expect(await world.leftoverProcesses()).toEqual([]);
    const after = descendantsOf(await listProcesses(), process.pid).filter(
      (p) => !before.has(p.pid) && !/^ps\b/.test(p.args),
    );
    expect(after).toEqual([]);
    // On a shared control plane the pairs go, finalizers and all, and the namespace is deleted.
    expect(await world.kubectl("get", "ldappairs", "-o", "name")).toBe("");
    const phase = await world.core
      .readNamespace({ name: world.namespace })
      .then((ns) => ns.status?.phase)
      .catch(() => "gone");
    expect(["Terminating", "gone"]).toContain(phase);
  });
});
