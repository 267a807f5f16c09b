// kube-apiserver and etcd, built from Go modules (test/controlplane/go) and
// cached outside the repository, keyed by version: built only when missing.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MODULE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "controlplane", "go");

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  kubernetesVersion: string;
  etcdVersion: string;
}

function requiredVersion(module: string): string {
  const gomod = readFileSync(join(MODULE_DIR, "go.mod"), "utf8");
  const match = new RegExp(`^\\s*${module.replace(/[./]/g, "\\$&")} (v[^\\s]+)`, "m").exec(gomod);
  if (!match?.[1]) throw new Error(`test/controlplane/go/go.mod does not require ${module}`);
  return match[1];
}

export function cacheRoot(): string {
  return (
    process.env.LDAPPAIR_TESTENV_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "ldappair-operator")
  );
}

function findGo(): string {
  for (const candidate of ["go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"]) {
    if (spawnSync(candidate, ["version"], { stdio: "ignore" }).status === 0) return candidate;
  }
  throw new Error(
    "Go is not installed, and the test control plane (kube-apiserver, etcd) is built from Go modules: " +
      "install Go 1.24 or newer (Debian: apt-get install golang-go, or https://go.dev/dl) and run the tests again.",
  );
}

export function ensureBinaries(log: (line: string) => void = console.log): ControlPlaneBinaries {
  const kubernetesVersion = requiredVersion("k8s.io/kubernetes");
  const etcdVersion = requiredVersion("go.etcd.io/etcd/server/v3");
  const dir = join(cacheRoot(), "controlplane", `kubernetes-${kubernetesVersion}-etcd-${etcdVersion}`);
  const binaries = {
    kubeApiserver: join(dir, "kube-apiserver"),
    etcd: join(dir, "etcd"),
    kubernetesVersion,
    etcdVersion,
  };
  if (existsSync(binaries.kubeApiserver) && existsSync(binaries.etcd)) return binaries;

  const go = findGo();
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  log(
    `building kube-apiserver ${kubernetesVersion} and etcd ${etcdVersion} from Go modules (first run only; ~15-25 min on 2 cores)...`,
  );
  for (const [pkg, out] of [
    ["k8s.io/kubernetes/cmd/kube-apiserver", binaries.kubeApiserver],
    ["go.etcd.io/etcd/server/v3", binaries.etcd],
  ] as const) {
    // Build beside the target and rename: a concurrent or interrupted build never leaves half a binary.
    const partial = `${out}.partial-${process.pid}`;
    execFileSync(go, ["build", "-mod=readonly", "-trimpath", "-o", partial, pkg], {
      cwd: MODULE_DIR,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, GOFLAGS: "-buildvcs=false" },
    });
    renameSync(partial, out);
    rmSync(partial, { force: true });
  }
  log(`built the control plane in ${((Date.now() - started) / 1000).toFixed(0)} s into ${dir}`);
  return binaries;
}
