// npm run -s demo:lookup -- [uid ...]
//
// `getent passwd uid` for a site's container while `npm run demo` runs: the
// lookup goes through an SSSD-like failover client (ldaps://ldap1, then
// ldaps://ldap2, names resolved by the site's DNS). Without uids it looks up
// every sample user. Exits 2 when a user is not found (as getent does), 1
// when no server answers.
import { existsSync, readFileSync } from "node:fs";
import { FailoverClient } from "../test/failover-client/client.js";
import { DEMO_STATE_FILE, type DemoState } from "../test/e2e/demo-view.js";

function demoState(): DemoState {
  const running = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const state = existsSync(DEMO_STATE_FILE)
    ? (JSON.parse(readFileSync(DEMO_STATE_FILE, "utf8")) as DemoState)
    : undefined;
  if (!state || !running(state.pid)) {
    process.stderr.write("no demo is running: start one with `npm run demo`\n");
    process.exit(1);
  }
  return state;
}

const state = demoState();
const client = new FailoverClient({
  uris: ["ldaps://ldap1:636", "ldaps://ldap2:636"],
  dnsServer: state.dnsServer,
  baseDn: state.baseDn,
  failedServerMemoryMs: state.failedServerMemoryMs,
  searchTimeoutMs: state.searchTimeoutMs,
  connectTimeoutMs: state.searchTimeoutMs,
});

const uids = process.argv.slice(2);
let status = 0;
for (const uid of uids.length ? uids : state.uids) {
  const r = await client.lookupUser(uid);
  if (r.ok) {
    const e = r.entry;
    const gecos = String(e["gecos"] ?? e["cn"] ?? "");
    const line = [e["uid"], "*", e["uidNumber"], e["gidNumber"], gecos, e["homeDirectory"], e["loginShell"]];
    process.stdout.write(`${line.join(":")}    (from ${r.server})\n`);
  } else if (r.reason === "not-found") {
    process.stderr.write(`${uid}: no such user (asked ${r.server ?? "?"})\n`);
    status = Math.max(status, 2);
  } else {
    process.stderr.write(`${uid}: ${r.reason}${r.error ? `: ${r.error}` : ""}\n`);
    status = Math.max(status, 1);
  }
}
await client.close();
process.exit(status);
