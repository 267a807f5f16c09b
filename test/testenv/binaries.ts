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

const GO_CANDIDATES = ["go", "/usr/local/go/bin/go", "/usr/lib/go/bin/go"];

function findGo(candidates: string[]): string {
  for (const candidate of candidates) {
    if (spawnSync(candidate, ["version"], { stdio: "ignore" }).status === 0) return candidate;
  }
  throw new Error(
    "Go is not installed, and the test control plane (kube-apiserver, etcd) is built from Go modules: " +
      "install Go 1.24 or newer (Debian: apt-get install golang-go, or https://go.dev/dl) and run the tests again.",
  );
}

export interface EnsureOptions {
  log?: (line: string) => void;
  /** Where to look for the go command. */
  goCandidates?: string[];
}

/** What Kubernetes' own build stamps into its binaries, so they report their real version. */
function versionFlags(version: string): string {
  const [major, minor] = version.replace(/^v/, "").split(".");
  return ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]
    .flatMap((pkg) => [
      `-X ${pkg}.gitVersion=${version}`,
      `-X ${pkg}.gitMajor=${major}`,
      `-X ${pkg}.gitMinor=${minor}`,
      `-X ${pkg}.gitTreeState=clean`,
    ])
    .join(" ");
}

export function ensureBinaries({
  log = console.log,
  goCandidates = GO_CANDIDATES,
}: EnsureOptions = {}): ControlPlaneBinaries {
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

  const go = findGo(goCandidates);
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  log(
    `building kube-apiserver ${kubernetesVersion} and etcd ${etcdVersion} from Go modules (first run only; 8-15 min on 2 cores)...`,
  );
  for (const [pkg, out] of [
    ["k8s.io/kubernetes/cmd/kube-apiserver", binaries.kubeApiserver],
    ["go.etcd.io/etcd/server/v3", binaries.etcd],
  ] as const) {
    // Build beside the target and rename: a concurrent or interrupted build never leaves half a binary.
    const partial = `${out}.partial-${process.pid}`;
    execFileSync(
      go,
      ["build", "-mod=readonly", `-ldflags=${versionFlags(kubernetesVersion)}`, "-o", partial, pkg],
      {
        cwd: MODULE_DIR,
        stdio: ["ignore", "inherit", "inherit"],
        env: { ...process.env, GOFLAGS: "-buildvcs=false" },
      },
    );
    renameSync(partial, out);
    rmSync(partial, { force: true });
  }
  log(`built the control plane in ${((Date.now() - started) / 1000).toFixed(0)} s into ${dir}`);
  return binaries;
}
