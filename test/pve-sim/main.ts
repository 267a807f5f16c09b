/**
 * `npm run pve-sim -- [--config FILE] [--state FILE] [--port N] [--host ADDR]`: runs the simulator until
 * SIGTERM/SIGINT. When ready it prints one JSON line: url, apiUrl, tokenId, tokenSecret, adminUrl, fingerprint.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfigFile } from "./config.js";
import { PveSimulator } from "./simulator.js";

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    state: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
  },
});

const config = values.config ? loadConfigFile(values.config) : {};
const sim = await PveSimulator.start({
  ...config,
  ...(values.port !== undefined ? { port: Number(values.port) } : {}),
  ...(values.host !== undefined ? { host: values.host } : {}),
  stateFile: values.state,
});

process.stdout.write(
  JSON.stringify({
    url: sim.url,
    apiUrl: sim.apiUrl,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    adminUrl: sim.adminUrl,
    fingerprint: sim.fingerprint,
    nodes: sim.config.nodes,
  }) + "\n",
);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  sim.stop().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
};
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
process.on("SIGHUP", shutdown);

/** Parent pid of `pid` from /proc (Linux), or undefined when it is gone. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

// Started through `npm run` (npm -> sh -> tsx -> this process), a SIGTERM sent to npm alone may not be passed
// down the chain: stop as well when the launcher goes away (this process or tsx is re-parented).
const launcher = process.ppid;
const launcherParent = parentOf(launcher);
setInterval(() => {
  if (process.ppid !== launcher || parentOf(launcher) !== launcherParent) shutdown();
}, 500).unref();
