/**
 * What the Proxmox client costs per call, against a bare `fetch` of the same URL in the same run:
 * N sequential calls each of `GET /version` and `GET /cluster/nextid` to the simulator (speed 0), in
 * alternating rounds, the median round of each kept. Prints ms per call and the ratio client / fetch.
 *
 *   npx tsx bench/proxmox-client.ts [N=2000] [rounds=5]
 *
 * The simulator runs in this process; the measuring runs in a child process, so the two do not share an
 * event loop, and the child trusts the simulator's certificate through NODE_EXTRA_CA_CERTS (the only way a
 * bare fetch can, short of turning verification off).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ProxmoxClient } from "../src/proxmox/client.js";
import { PveSimulator } from "../test/pve-sim/simulator.js";

const n = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 5);

interface Target {
  apiUrl: string;
  tokenId: string;
  tokenSecret: string;
  ca: string;
}

async function timed(count: number, call: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await call();
  return (performance.now() - t0) / count;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(t: Target): Promise<void> {
  const authorization = `PVEAPIToken=${t.tokenId}=${t.tokenSecret}`;
  const client = new ProxmoxClient({
    endpoint: t.apiUrl,
    tokenId: t.tokenId,
    tokenSecret: t.tokenSecret,
    tls: { ca: t.ca },
  });
  const bare = (path: string) => async () => {
    const res = await fetch(`${t.apiUrl}${path}`, { headers: { Authorization: authorization } });
    if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
    return ((await res.json()) as { data: unknown }).data;
  };
  const calls: [string, () => Promise<unknown>, () => Promise<unknown>][] = [
    ["GET /version", bare("/version"), () => client.version()],
    ["GET /cluster/nextid", bare("/cluster/nextid"), () => client.nextId()],
  ];
  console.log(
    `${n} sequential calls of each, in ${rounds} alternating rounds of ${n / rounds}; ms per call of the median round`,
  );
  for (const [name, viaFetch, viaClient] of calls) {
    await timed(200, viaFetch); // warm up connections and JIT
    await timed(200, viaClient);
    const f: number[] = [];
    const c: number[] = [];
    for (let r = 0; r < rounds; r++) {
      f.push(await timed(n / rounds, viaFetch));
      c.push(await timed(n / rounds, viaClient));
    }
    const [mf, mc] = [median(f), median(c)];
    console.log(
      `${name.padEnd(20)} bare fetch ${mf.toFixed(3)}  client ${mc.toFixed(3)}  ratio client/fetch ${(mc / mf).toFixed(2)}`,
    );
  }
  client.close();
}

async function main(): Promise<void> {
  const inChild = process.env["BENCH_PVE_TARGET"];
  if (inChild) return measure(JSON.parse(inChild) as Target);
  const sim = await PveSimulator.start({ speed: 0 });
  const dir = mkdtempSync(join(tmpdir(), "bench-pve-"));
  try {
    const caFile = join(dir, "ca.pem");
    writeFileSync(caFile, sim.certPem);
    const target: Target = {
      apiUrl: sim.apiUrl,
      tokenId: sim.tokenId,
      tokenSecret: sim.tokenSecret,
      ca: sim.certPem,
    };
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)],
      {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile, BENCH_PVE_TARGET: JSON.stringify(target) },
        stdio: "inherit",
      },
    );
    const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
    if (code !== 0) process.exitCode = 1;
  } finally {
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
