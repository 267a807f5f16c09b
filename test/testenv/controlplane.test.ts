// The test control plane itself: restartable, cleaned up on stop and when its
// owner dies, a clear failure without Go, and the by-hand `testenv` command.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBinaries } from "./binaries.js";
import { startControlPlane, type ControlPlane } from "./controlplane.js";
import { waitFor } from "./process.js";

const TSX = join(import.meta.dirname, "..", "..", "node_modules", ".bin", "tsx");
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !/\) Z /.test(execFileSync("cat", [`/proc/${pid}/stat`], { encoding: "utf8" }));
  } catch {
    return false;
  }
};
const pidsOf = (pattern: string) =>
  execFileSync("pgrep", ["-f", pattern], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
const kubectl = (kubeconfig: string, ...args: string[]) =>
  execFileSync("kubectl", ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8", stdio: "pipe" });

describe("startControlPlane", () => {
  let cp: ControlPlane;
  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it("serves a real API with RBAC and reports its start-up time", () => {
    expect(cp.startupMs).toBeGreaterThan(0);
    expect(kubectl(cp.kubeconfigPath, "get", "--raw", "/readyz")).toBe("ok");
    expect(kubectl(cp.kubeconfigPath, "api-versions")).toMatch(/rbac\.authorization\.k8s\.io\/v1/);
    const nobody = cp.kubeconfigFor("nobody");
    expect(() => kubectl(nobody, "get", "namespaces")).toThrow(/forbidden/i);
  });

  it("keeps its data across an API server restart on the same address", async () => {
    kubectl(cp.kubeconfigPath, "create", "namespace", "survives-restart");
    await cp.stopApiServer();
    expect(() => kubectl(cp.kubeconfigPath, "get", "namespaces", "--request-timeout=2s")).toThrow();
    await cp.startApiServer();
    expect(kubectl(cp.kubeconfigPath, "get", "namespace", "survives-restart", "-o", "name")).toBe(
      "namespace/survives-restart\n",
    );
  });

  it("stops its processes and removes its data on stop()", async () => {
    const other = await startControlPlane();
    const pids = pidsOf(other.dir);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    await other.stop();
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(other.dir)).toBe(false);
  });
});

describe("a control plane whose owner is killed", () => {
  it("goes away with it: no process is left behind", async () => {
    const script = join(tmpdir(), `cp-owner-${process.pid}.mts`);
    execFileSync("sh", ["-c", `cat > ${script}`], {
      input: `import { startControlPlane } from ${JSON.stringify(join(import.meta.dirname, "controlplane.ts"))};
const cp = await startControlPlane({ keep: true });
console.log(cp.dir);
setInterval(() => {}, 1000);
`,
    });
    // In-process loader (not the tsx wrapper, which would be the one killed).
    const owner = spawn(process.execPath, ["--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const dir = await new Promise<string>((resolve, reject) => {
      owner.stdout.on("data", (d: Buffer) => resolve(d.toString().trim()));
      owner.once("exit", (code) => reject(new Error(`owner exited ${code}`)));
    });
    const pids = pidsOf(dir);
    expect(pids.length).toBeGreaterThanOrEqual(2);
    owner.kill("SIGKILL");
    await waitFor("children to die", async () => (pids.some(alive) ? undefined : true), 10_000);
    rmSync(dir, { recursive: true, force: true });
    rmSync(script, { force: true });
  });
});

describe("ensureBinaries", () => {
  it("fails with what to install when Go is missing and nothing is cached", () => {
    const cache = mkdtempSync(join(tmpdir(), "empty-cache-"));
    const previous = process.env.LDAPPAIR_TESTENV_CACHE;
    process.env.LDAPPAIR_TESTENV_CACHE = cache;
    try {
      expect(() => ensureBinaries({ goCandidates: ["/nonexistent/go"], log: () => {} })).toThrow(
        /Go is not installed.*install Go 1\.24 or newer/,
      );
    } finally {
      if (previous === undefined) delete process.env.LDAPPAIR_TESTENV_CACHE;
      else process.env.LDAPPAIR_TESTENV_CACHE = previous;
      rmSync(cache, { recursive: true, force: true });
    }
  });

  it("uses the cache, keyed by the versions in go.mod", () => {
    const binaries = ensureBinaries({ goCandidates: ["/nonexistent/go"], log: () => {} });
    expect(binaries.kubeApiserver).toMatch(/kubernetes-v1\.34\.\d+-etcd-v3\.6\.\d+\/kube-apiserver$/);
    expect(execFileSync(binaries.kubeApiserver, ["--version"], { encoding: "utf8" })).toMatch(
      /Kubernetes v1\.34\./,
    );
  });
});

describe("npm run testenv", () => {
  it("brings the control plane and PostgreSQL up for use by hand, and down again", () => {
    const cwd = mkdtempSync(join(tmpdir(), "testenv-cli-"));
    const cli = join(import.meta.dirname, "cli.ts");
    const run = (command: string) =>
      execFileSync(TSX, [cli, command], {
        cwd,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    try {
      const out = run("up");
      const kubeconfig = /^export KUBECONFIG=(.+)$/m.exec(out)?.[1];
      const databaseUrl = /^export DATABASE_URL='(.+)'$/m.exec(out)?.[1];
      expect(kubeconfig).toBeDefined();
      expect(databaseUrl).toMatch(/^postgres:\/\/\w+:[^@]+@127\.0\.0\.1:\d+\/\w+$/);
      expect(kubectl(kubeconfig!, "get", "--raw", "/readyz")).toBe("ok");
      expect(run("status")).toContain(`export KUBECONFIG=${kubeconfig}`);
      expect(run("down")).toMatch(/stopped/);
      expect(existsSync(kubeconfig!)).toBe(false);
      expect(run("status")).toMatch(/not running/);
    } finally {
      try {
        run("down");
      } catch {
        // already down
      }
      rmSync(cwd, { recursive: true, force: true });
    }
  }, 120_000);
});
