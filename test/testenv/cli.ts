// npm run testenv -- up | down | status
//   up:   starts the control plane and PostgreSQL in a background process and
//         prints the export lines to use them; they stay up until `down`.
//   down: stops them and removes their data.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startEnvironment } from "./environment.js";
import { waitFor } from "./process.js";

const STATE_DIR = join(process.cwd(), ".testenv");
const STATE = join(STATE_DIR, "state.json");

interface State {
  pid: number;
  kubeconfig: string;
  databaseUrl: string;
}

const readState = (): State | undefined =>
  existsSync(STATE) ? (JSON.parse(readFileSync(STATE, "utf8")) as State) : undefined;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const exports = (s: State) => `export KUBECONFIG=${s.kubeconfig}\nexport DATABASE_URL='${s.databaseUrl}'`;

async function up() {
  const current = readState();
  if (current && alive(current.pid)) return console.log(exports(current));
  mkdirSync(STATE_DIR, { recursive: true });
  rmSync(STATE, { force: true });
  const log = openSync(join(STATE_DIR, "testenv.log"), "a");
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "serve"], {
    detached: true,
    stdio: ["ignore", log, log],
  });
  child.unref();
  console.error(
    `starting (log: ${join(STATE_DIR, "testenv.log")}; the first run builds kube-apiserver and etcd)...`,
  );
  const state = await waitFor(
    "test environment",
    async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}; see .testenv/testenv.log`);
      return readState();
    },
    60 * 60_000,
    250,
  );
  console.log(exports(state));
}

async function serve() {
  const env = await startEnvironment();
  const { controlPlane, postgres } = env;
  const stop = async () => {
    await env.stop();
    rmSync(STATE, { force: true });
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop());
  process.on("SIGINT", () => void stop());
  writeFileSync(
    STATE,
    JSON.stringify({ pid: process.pid, kubeconfig: controlPlane.kubeconfigPath, databaseUrl: postgres.url }),
  );
  console.log(`ready: control plane in ${controlPlane.startupMs} ms`);
}

async function down() {
  const state = readState();
  if (!state || !alive(state.pid)) {
    rmSync(STATE, { force: true });
    return console.log("not running");
  }
  process.kill(state.pid, "SIGTERM");
  await waitFor("shutdown", async () => (alive(state.pid) ? undefined : true), 30_000);
  console.log("stopped");
}

const command = process.argv[2];
const commands: Record<string, () => Promise<void>> = {
  up,
  down,
  serve,
  status: async () => {
    const s = readState();
    console.log(s && alive(s.pid) ? exports(s) : "not running");
  },
};
const run = command ? commands[command] : undefined;
if (!run) {
  console.error("usage: npm run testenv -- up | down | status");
  process.exit(2);
}
await run();
