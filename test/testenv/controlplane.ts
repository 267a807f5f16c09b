// A real Kubernetes control plane for tests, as controller-runtime's envtest
// runs one: etcd and kube-apiserver on free loopback ports, RBAC on, an admin
// kubeconfig. The API server can be stopped and started again on the same
// port, so tests can watch an operator ride out an API outage.
import { request } from "node:https";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { ensureBinaries } from "./binaries.js";
import { issueCertificate, makeCerts, type ControlPlaneCerts } from "./certs.js";
import { freePort } from "./ports.js";
import { startProcess, waitFor, type Supervised } from "./process.js";

export interface ControlPlane {
  /** Admin kubeconfig (group system:masters). */
  kubeconfigPath: string;
  /** https://127.0.0.1:PORT */
  server: string;
  dir: string;
  certs: ControlPlaneCerts;
  /** Milliseconds from start to /readyz answering ok. */
  startupMs: number;
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** Writes a kubeconfig for a client certificate of the given user and groups (for RBAC tests). */
  kubeconfigFor(user: string, groups?: string[]): string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Keep the data directory after stop (debugging). */
  keep?: boolean;
  readyTimeoutMs?: number;
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now();
  const binaries = ensureBinaries();
  const dir = mkdtempSync(join(tmpdir(), "ldappair-controlplane-"));
  const children: Supervised[] = [];
  try {
    const pki = join(dir, "pki");
    mkdirSync(pki);
    const certs = makeCerts(pki);
    const [etcdPort, apiPort] = [await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const etcd = startProcess(
      binaries.etcd,
      [
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        "--listen-peer-urls=http://127.0.0.1:0",
        "--unsafe-no-fsync=true",
        "--log-level=warn",
      ],
      join(dir, "etcd.log"),
    );
    children.push(etcd);

    const server = `https://127.0.0.1:${apiPort}`;
    const apiArgs = [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${pki}`,
      `--tls-cert-file=${certs.serverCert}`,
      `--tls-private-key-file=${certs.serverKey}`,
      `--client-ca-file=${certs.caCert}`,
      `--secure-port=${apiPort}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      "--authorization-mode=RBAC",
      "--disable-admission-plugins=ServiceAccount",
      `--service-account-issuer=${server}/`,
      `--service-account-key-file=${certs.saPub}`,
      `--service-account-signing-key-file=${certs.saKey}`,
      "--v=0",
    ];
    let apiServer: Supervised | undefined;
    const startApiServer = async () => {
      apiServer = startProcess(binaries.kubeApiserver, apiArgs, join(dir, "kube-apiserver.log"));
      children.push(apiServer);
      await waitFor("kube-apiserver /readyz", () => readyz(server, certs), options.readyTimeoutMs ?? 60_000);
    };
    await startApiServer();

    const kubeconfigFor = (user: string, groups: string[] = []) => {
      const name = user.replace(/[^a-z0-9-]/gi, "-");
      const subject = `${groups.map((g) => `/O=${g}`).join("")}/CN=${user}`;
      const cert = issueCertificate(certs.dir, `user-${name}`, subject);
      const path = join(dir, `kubeconfig-${name}`);
      writeFileSync(path, kubeconfig(server, certs.caCert, cert.cert, cert.key, user));
      return path;
    };
    const kubeconfigPath = join(dir, "kubeconfig");
    writeFileSync(kubeconfigPath, kubeconfig(server, certs.caCert, certs.adminCert, certs.adminKey, "admin"));

    return {
      kubeconfigPath,
      server,
      dir,
      certs,
      startupMs: Date.now() - started,
      async stopApiServer() {
        await apiServer?.stop();
      },
      startApiServer,
      kubeconfigFor,
      async stop() {
        await Promise.all(children.map((c) => c.stop()));
        if (!options.keep) rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.all(children.map((c) => c.stop()));
    const logs = ["etcd.log", "kube-apiserver.log"].map((f) => tail(join(dir, f))).join("\n");
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`control plane failed to start: ${String(error)}\n${logs}`);
  }
}

function readyz(server: string, certs: ControlPlaneCerts): Promise<true | undefined> {
  return new Promise((resolve) => {
    const req = request(
      `${server}/readyz`,
      {
        ca: readFileSync(certs.caCert),
        cert: readFileSync(certs.adminCert),
        key: readFileSync(certs.adminKey),
        timeout: 2000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 ? true : undefined);
      },
    );
    req.on("error", () => resolve(undefined));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

function kubeconfig(server: string, ca: string, cert: string, key: string, user: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "testenv", cluster: { server, "certificate-authority": ca } }],
    users: [{ name: user, user: { "client-certificate": cert, "client-key": key } }],
    contexts: [{ name: "testenv", context: { cluster: "testenv", user, namespace: "default" } }],
    "current-context": "testenv",
  });
}

function tail(file: string, lines = 30): string {
  try {
    return `--- ${file}\n${readFileSync(file, "utf8").split("\n").slice(-lines).join("\n")}`;
  } catch {
    return "";
  }
}
