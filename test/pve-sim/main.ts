/**
 * `npm run pve-sim -- [--config FILE] [--state FILE] [--port N] [--host ADDR]`: runs the simulator until
 * SIGTERM/SIGINT. When ready it prints one JSON line: url, apiUrl, tokenId, tokenSecret, adminUrl, fingerprint.
 */
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
