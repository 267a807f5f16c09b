// What `npm run demo` shows, as pure functions of what it read: whether the
// pair is Ready, the live frame (kubectl's own tables), how a frame replaces
// the previous one on a terminal, and the look-around instructions. The
// script (scripts/demo.ts) only fetches and prints.
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where the demo leaves what `npm run demo:lookup` needs (the site DNS, the base DN). */
export const DEMO_STATE_FILE = join(tmpdir(), "ldappair-demo.json");

export interface DemoState {
  pid: number;
  dnsServer: string;
  baseDn: string;
  uids: string[];
  failedServerMemoryMs: number;
  searchTimeoutMs: number;
}

export interface PairView {
  metadata: { generation?: number };
  status?: {
    conditions?: {
      type: string;
      status: string;
      reason?: string;
      message?: string;
      observedGeneration?: number;
    }[];
  };
}

export type Readiness = { ready: true } | { ready: false; why: string };

/** Ready as `kubectl wait --for=condition=Ready` and kstatus see it: True, and about the current generation. */
export function readiness(pair: PairView | undefined): Readiness {
  const ready = pair?.status?.conditions?.find((c) => c.type === "Ready");
  if (!ready) return { ready: false, why: "no Ready condition yet" };
  const generation = pair?.metadata.generation;
  if (
    ready.observedGeneration !== undefined &&
    generation !== undefined &&
    ready.observedGeneration < generation
  ) {
    return {
      ready: false,
      why: `Ready is about generation ${ready.observedGeneration}, the spec is at ${generation}`,
    };
  }
  if (ready.status === "True") return { ready: true };
  const detail = [ready.reason, ready.message].filter(Boolean).join(": ");
  return { ready: false, why: `Ready=${ready.status}${detail ? ` (${detail})` : ""}` };
}

/** "42.1 s", "3 min 05 s". */
export function elapsed(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, "0")} s`;
}

export interface Frame {
  title: string;
  pairs: string;
  events: string;
}

/** The frame's lines: a title, `kubectl get ldappairs`, the latest events (kubectl's header kept). */
export function frameLines(frame: Frame, maxEvents = 8): string[] {
  const events = frame.events.trimEnd().split("\n").filter(Boolean);
  const shown = events.length > 1 ? [events[0]!, ...events.slice(1).slice(-maxEvents)] : ["(no events yet)"];
  return [frame.title, "", ...frame.pairs.trimEnd().split("\n"), "", ...shown];
}

/** Cut to the terminal's width: a wrapped line would make the next redraw miscount its lines. */
export function fitted(lines: readonly string[], columns: number): string[] {
  return lines.map((l) => (l.length > columns ? `${l.slice(0, Math.max(0, columns - 1))}…` : l));
}

/** What replaces the last `previousLines` lines on a terminal with `lines`: cursor up, clear below, write. */
export function redraw(previousLines: number, lines: readonly string[]): string {
  const up = previousLines > 0 ? `\x1b[${previousLines}F` : "";
  return `${up}\x1b[J${lines.join("\n")}\n`;
}

/**
 * The frame without what changes every second by itself (kubectl's AGE and LAST SEEN, "5s", "2m3s"),
 * so that without a terminal a frame is printed again only when something happened.
 */
export function withoutAges(lines: readonly string[]): string {
  return lines.map((l) => l.replace(/(^|\s)(\d+[smhd])+(?=\s|$)/g, "$1~")).join("\n");
}

export interface LookAround {
  kubeconfig: string;
  namespace: string;
  name: string;
  probePort: number;
  metricsPort: number;
  operatorLog: string;
  proxmoxApiUrl: string;
  tokenSecret: string;
  databaseSecret: string;
  baseDn: string;
  /** ldap1's container, once there is one. */
  ldap1?: { vmid: number; node: string; address: string };
}

/** Every command here is meant to be pasted as it is, after the export line. `exiting`: the demo ends now. */
export function lookAroundLines(o: LookAround, exiting = false): string[] {
  const ns = `-n ${o.namespace}`;
  const auth =
    `AUTH="Authorization: PVEAPIToken=$(kubectl ${ns} get secret ${o.tokenSecret} ` +
    `-o go-template='{{.data.tokenId | base64decode}}={{.data.tokenSecret | base64decode}}')"`;
  const directory = o.ldap1
    ? [
        `The directory: ldap1 is CT ${o.ldap1.vmid} on ${o.ldap1.node} at ${o.ldap1.address}:`,
        `  LDAPTLS_REQCERT=never ldapsearch -x -LLL -H ldaps://${o.ldap1.address}:636 -b ${o.baseDn} '(objectClass=posixAccount)' uid cn`,
        "  npm run -s demo:lookup -- alice bob     # getent passwd through an SSSD-like client: ldap1, then ldap2, by the site DNS",
      ]
    : [
        "The directory: ldap1 has no container yet. The ldapsearch and lookup commands are printed here",
        "as soon as the operator has started it.",
      ];
  return [
    exiting
      ? "What there was to look around (the demo exits now, as --exit-when-ready asks):"
      : "Look around (in another shell; Ctrl-C here stops everything and cleans up):",
    "",
    `  export KUBECONFIG=${o.kubeconfig}`,
    `  kubectl ${ns} get ldappairs -o wide`,
    `  kubectl ${ns} describe ldappair ${o.name}`,
    `  kubectl ${ns} get events --sort-by=.metadata.creationTimestamp`,
    `  kubectl ${ns} wait --for=condition=Ready ldappair/${o.name} --timeout=5m`,
    "",
    `The operator: log in ${o.operatorLog}`,
    `  curl -s http://127.0.0.1:${o.probePort}/readyz; echo`,
    `  curl -s http://127.0.0.1:${o.metricsPort}/metrics | grep -E '^(controller_runtime_reconcile_total|leader_election_master_status)'`,
    "",
    ...directory,
    "",
    `Proxmox (the simulator) at ${o.proxmoxApiUrl}, with the token from the Secret:`,
    `  ${auth}`,
    `  curl -ks -H "$AUTH" '${o.proxmoxApiUrl}/cluster/resources?type=vm'`,
    `  curl -ks -H "$AUTH" ${o.proxmoxApiUrl}/access/domains`,
    "",
    "The management database:",
    `  psql "$(kubectl ${ns} get secret ${o.databaseSecret} -o go-template='{{.data.uri | base64decode}}')" -c 'SELECT uid, "uidNumber" FROM "Users"'`,
  ];
}

/** Why the pair is not Ready when the wait ends, and what a person can do about it. */
export function notReadyLines(
  name: string,
  waitedMs: number,
  readiness: Readiness,
  hasStatus: boolean,
  exiting = false,
): string[] {
  const why = readiness.ready ? "" : readiness.why;
  const head = `ldappair/${name} is not Ready after ${elapsed(waitedMs)} (${why}).`;
  if (!hasStatus) {
    return [
      head,
      "The operator has written no status for it yet: it writes one on its first reconcile, so it has not",
      "reconciled the pair (still starting, not yet leading, or not watching this namespace: its log says which).",
      `${exiting ? "" : "The demo keeps running and reports when it becomes Ready; look around:"}`,
    ].filter(Boolean);
  }
  return [
    head,
    "The operator is working on it: `kubectl describe` shows the conditions and events, the operator's log",
    `says more.${exiting ? "" : " The demo keeps running and reports when it becomes Ready."}`,
  ];
}
