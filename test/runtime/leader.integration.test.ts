import { CoordinationV1Api } from "@kubernetes/client-node";
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startControlPlane, type ControlPlane } from "./helpers/controlplane.js";
import { createNamespace, eventually, installWidgetCrd, loadKubeConfig, widgetsApi } from "./helpers/kube.js";

const fixture = fileURLToPath(new URL("./fixtures/operator.ts", import.meta.url));
const ns = "leader-test";
const leaseName = "runtime-test-leader";
const leaseDurationMs = 6_000;
const retryPeriodMs = 500;
const renewDeadlineMs = 4_000;

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** One operator process, with its JSON log lines collected. */
class OperatorProcess {
  readonly lines: LogLine[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor(
    readonly identity: string,
    kubeconfig: string,
  ) {
    // One process, not the tsx launcher: a signal must reach the operator itself, SIGKILL included.
    this.child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        fixture,
        `--kubeconfig=${kubeconfig}`,
        `--identity=${identity}`,
        `--namespaces=${ns}`,
        `--lease-namespace=${ns}`,
        `--lease-name=${leaseName}`,
        `--lease-duration=${leaseDurationMs}ms`,
        `--renew-deadline=${renewDeadlineMs}ms`,
        `--retry-period=${retryPeriodMs}ms`,
        "--metrics-bind-address=127.0.0.1:0",
        "--health-probe-bind-address=127.0.0.1:0",
        "--shutdown-grace-period=5s",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let buffer = "";
    this.child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString();
      const parts = buffer.split("\n");
      buffer = parts.pop() ?? "";
      for (const part of parts) {
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          // Not a log line (a runtime warning); irrelevant here.
        }
      }
    });
    this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
  }

  logged(msg: string): boolean {
    return this.lines.some((l) => l.msg === msg);
  }

  get probePort(): number | undefined {
    return this.lines.find((l) => l.msg === "operator started")?.probePort as number | undefined;
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

describe("leader election between real processes", () => {
  let cp: ControlPlane;
  const procs: OperatorProcess[] = [];
  const start = (id: string) => {
    const p = new OperatorProcess(id, cp.kubeconfigPath);
    procs.push(p);
    return p;
  };
  const holder = async () => {
    const api = loadKubeConfig(cp.kubeconfigPath).makeApiClient(CoordinationV1Api);
    return (await api.readNamespacedLease({ name: leaseName, namespace: ns })).spec?.holderIdentity;
  };
  let leader: OperatorProcess;
  let standby: OperatorProcess;

  beforeAll(async () => {
    cp = await startControlPlane();
    const kc = loadKubeConfig(cp.kubeconfigPath);
    await installWidgetCrd(kc);
    await createNamespace(kc, ns);
  });

  afterAll(async () => {
    for (const p of procs) p.kill("SIGKILL");
    await Promise.all(procs.map((p) => p.exited));
    await cp?.stop();
  });

  it("two instances elect exactly one leader; the other stays ready and idle", async () => {
    const a = start("op-a");
    const b = start("op-b");
    await eventually(() => a.logged("became leader") || b.logged("became leader"), 60_000);
    [leader, standby] = a.logged("became leader") ? [a, b] : [b, a];
    await eventually(() => standby.logged("operator started"), 60_000);
    // Several retry periods later there is still one leader, and the Lease names it.
    await new Promise((r) => setTimeout(r, 4 * retryPeriodMs));
    expect(standby.logged("became leader")).toBe(false);
    expect(await holder()).toBe(leader.identity);
    for (const p of [leader, standby]) {
      const ready = await eventually(
        async () => (await fetch(`http://127.0.0.1:${p.probePort}/readyz`)).status === 200,
      );
      expect(ready).toBe(true);
    }
    await widgetsApi(loadKubeConfig(cp.kubeconfigPath)).create(ns, "w1");
    await eventually(() => leader.lines.some((l) => l.msg === "reconciled" && l.key === `${ns}/w1`));
    expect(standby.logged("reconciled")).toBe(false);
  });

  it("after the leader is killed, the other takes over within the lease duration", async () => {
    leader.kill("SIGKILL");
    const killedAt = Date.now();
    await eventually(() => standby.logged("became leader"), 30_000, 20);
    const takeoverMs = Date.now() - killedAt;
    console.log(
      `takeover after SIGKILL: ${takeoverMs} ms (lease ${leaseDurationMs} ms, retry ${retryPeriodMs} ms)`,
    );
    // Expiry runs from when the standby saw the last renewal (up to one jittered retry period
    // after it), and is noticed at the next poll (another one): client-go's rule, not a remote clock.
    expect(takeoverMs).toBeLessThanOrEqual(leaseDurationMs + 2 * 1.2 * retryPeriodMs + 1_000);
    expect(await holder()).toBe(standby.identity);
    expect(standby.lines.some((l) => l.msg === "reconciled" && l.key === `${ns}/w1`)).toBe(true);
    [leader, standby] = [standby, start("op-c")];
    await eventually(() => standby.logged("operator started"), 60_000);
  });

  it("after SIGTERM the lease is released and the other takes over at once", async () => {
    await new Promise((r) => setTimeout(r, 2 * retryPeriodMs));
    expect(standby.logged("became leader")).toBe(false);
    leader.kill("SIGTERM");
    const termAt = Date.now();
    await eventually(() => standby.logged("became leader"), 30_000, 20);
    const takeoverMs = Date.now() - termAt;
    console.log(`takeover after SIGTERM: ${takeoverMs} ms (lease ${leaseDurationMs} ms)`);
    expect(await leader.exited).toBe(0);
    expect(leader.logged("lease released")).toBe(true);
    // Well before the lease would have expired: the standby saw an empty holder.
    expect(takeoverMs).toBeLessThan(leaseDurationMs / 2);
    expect(await holder()).toBe(standby.identity);
  });

  it("a leader that cannot renew past the deadline stops working and exits non-zero", async () => {
    // The SIGTERM test left the last started process leading, alone.
    const current = standby;
    expect(current.logged("became leader")).toBe(true);
    const exitedAt = current.exited.then(() => Date.now());
    const stopping = Date.now();
    await cp.stopApiServer();
    const stopped = Date.now();
    try {
      expect(await current.exited).toBe(1);
      expect(current.logged("leadership lost")).toBe(true);
      const lostAt = await exitedAt;
      console.log(
        `API server stop took ${stopped - stopping} ms; leader exited ${lostAt - stopping} ms after the stop began ` +
          `(renew deadline ${renewDeadlineMs} ms, lease ${leaseDurationMs} ms)`,
      );
      // Renewals fail from some point during the stop at the latest; the leader quits within the
      // renew deadline (plus one retry) of that, and so before any standby could take over.
      expect(lostAt - stopped).toBeLessThan(renewDeadlineMs + 1.2 * retryPeriodMs + 1_000);
    } finally {
      await cp.startApiServer();
    }
  });
});
