/**
 * `npm run pve-sim -- [--config FILE] [--state FILE] [--port N] [--host ADDR] [--standin] [--search-domain D]`:
 * runs the simulator until SIGTERM/SIGINT. When ready it prints one JSON line: url, apiUrl, tokenId,
 * tokenSecret, adminUrl, fingerprint, and `dns` (host:port of the site DNS that the nodes use).
 * The gateway image runs the LDAP gateway stand-in when the config has no entry for it, or with
 * `--standin`; the site DNS follows the containers and realms sync over LDAPS (ldap-site.ts).
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfigFile, matchImage } from "./config.js";
import { attachLdapSite, LDAP_GATEWAY_IMAGE, ldapGatewayImage } from "./ldap-site.js";
import { PveSimulator } from "./simulator.js";

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    state: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    standin: { type: "boolean" },
    "search-domain": { type: "string" },
  },
});

const config = values.config ? loadConfigFile(values.config) : {};
const catalog = config.catalog ?? [];
if (values.standin || !matchImage(catalog, `${LDAP_GATEWAY_IMAGE}:latest`))
  catalog.unshift(await ldapGatewayImage());
const sim = await PveSimulator.start({
  ...config,
  catalog,
  ...(values.port !== undefined ? { port: Number(values.port) } : {}),
  ...(values.host !== undefined ? { host: values.host } : {}),
  stateFile: values.state,
});
const site = await attachLdapSite(sim, { searchDomain: values["search-domain"] ?? "example.com" });

process.stdout.write(
  JSON.stringify({
    url: sim.url,
    apiUrl: sim.apiUrl,
    tokenId: sim.tokenId,
    tokenSecret: sim.tokenSecret,
    adminUrl: sim.adminUrl,
    fingerprint: sim.fingerprint,
    nodes: sim.config.nodes,
    dns: site.dns.address.server,
  }) + "\n",
);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  Promise.all([site.stop(), sim.stop()]).then(
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
