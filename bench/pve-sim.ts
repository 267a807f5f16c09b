/**
 * How much the Proxmox VE simulator costs: create and start N containers through the API with every task
 * duration at zero (speed 0), and wait until each container's process listens.
 *
 *   npx tsx bench/pve-sim.ts [N=500] [runtime=builtin|perl|node] [concurrency=50]
 *
 * runtime: `builtin` listens in-process (the simulator's own cost), `perl` runs a tiny perl listener per
 * container (a real process each, ~5 MB), `node` runs the test fixture listener (a Node process each).
 */
import { PveSimulator } from "../test/pve-sim/simulator.js";
import { LISTENER, ok } from "../test/pve-sim/helpers.js";
import type { CatalogEntry } from "../test/pve-sim/config.js";

const n = Number(process.argv[2] ?? 500);
const runtime = process.argv[3] ?? "builtin";
const concurrency = Number(process.argv[4] ?? 50);

const PERL = [
  "perl",
  "-MIO::Socket::INET",
  "-e",
  '$SIG{TERM}=sub{exit 0}; my $s=IO::Socket::INET->new(LocalAddr=>$ENV{BIND_IP},LocalPort=>$ENV{PVE_SIM_PORT},Listen=>16,ReuseAddr=>1) or die "listen: $!"; while(my $c=$s->accept){print $c "ok\\n"; close $c}',
];
const entry: CatalogEntry = {
  pattern: "ghcr.io/mieweb/ldap-gateway:*",
  env: ["NODE_VERSION=24.1.0"],
  entrypoint: ["docker-entrypoint.sh"],
  cmd: ["node", "index.js"],
  port: 636,
  ...(runtime === "builtin"
    ? { builtin: true }
    : { command: runtime === "perl" ? PERL : [process.execPath, LISTENER] }),
};

async function pool<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

async function waitTask(sim: PveSimulator, upid: string): Promise<void> {
  for (;;) {
    const st = (await ok(sim, "GET", `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`)) as Record<
      string,
      unknown
    >;
    if (st["status"] === "stopped") {
      if (st["exitstatus"] !== "OK") throw new Error(`${upid}: ${String(st["exitstatus"])}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sim = await PveSimulator.start({ nodes: ["pve1"], speed: 0, catalog: [entry], startSettleMs: 0 });
try {
  const pull = (await ok(sim, "POST", "/nodes/pve1/storage/local/oci-registry-pull", {
    reference: "ghcr.io/mieweb/ldap-gateway:1.0.0",
  })) as string;
  await waitTask(sim, pull);
  const ids = Array.from({ length: n }, (_, i) => 1000 + i);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await pool(ids, concurrency, async (vmid) => {
    const create = (await ok(sim, "POST", "/nodes/pve1/lxc", {
      vmid,
      ostemplate: "local:vztmpl/ldap-gateway_1.0.0.tar",
      storage: "local-lvm",
      hostname: `ct${vmid}`,
      net0: "name=eth0,bridge=vmbr0,ip=dhcp",
    })) as string;
    await waitTask(sim, create);
    const start = (await ok(sim, "POST", `/nodes/pve1/lxc/${vmid}/status/start`)) as string;
    await waitTask(sim, start);
  });
  const tStarted = performance.now();
  for (const vmid of ids) await sim.waitBooted(vmid, 120_000);
  const tBooted = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const res = (await ok(sim, "GET", "/cluster/resources", { type: "vm" })) as { status: string }[];
  const running = res.filter((r) => r.status === "running").length;
  console.log(
    JSON.stringify({
      containers: n,
      runtime,
      concurrency,
      createdAndStartedSeconds: +((tStarted - t0) / 1000).toFixed(2),
      allListeningSeconds: +((tBooted - t0) / 1000).toFixed(2),
      running,
      apiRequests: sim.requestLog.entries.length,
      simulatorCpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(2),
    }),
  );
} finally {
  await sim.stop();
}
