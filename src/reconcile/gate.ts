// The peer gate: may a server be taken down now? Only while its peer serves
// and clients can fail over to it. SSSD skips a server that failed for 30 s
// and goes offline for a minute or more when the second fails inside that
// window (shared/reference/sssd-client.md), so:
//   - the peer must pass its probe, several times in a row;
//   - at least rollout.settleTime must have passed since any server of the
//     pair last went down, so every client can use the first one again;
//   - the database must have passed its preflight, or the new server would
//     come back serving nothing;
//   - the rollout must not be paused.
// Pure: time is an input, and a closed gate says why and when to look again.

export interface PeerHealth {
  name: string;
  /** The peer has exactly one container of ours and it runs. */
  running: boolean;
  /** Its latest probe passed. */
  passing: boolean;
  /** Consecutive passed probes. */
  passes: number;
  /** Why it does not pass, when it does not (the failed probe step, or what is missing). */
  problem?: string;
}

export interface GateInput {
  now: Date;
  server: string;
  peer: PeerHealth;
  /** The latest time any server of the pair went down, if ever. */
  lastDownAt?: Date;
  settleMs: number;
  requiredPasses: number;
  /** The database preflight of this reconcile: undefined when it did not run. */
  database?: { ok: boolean; problem?: string };
  paused: boolean;
}

export type GateReason =
  | "RolloutPaused"
  | "DatabaseNotChecked"
  | "DatabaseUnreachable"
  | "PeerNotRunning"
  | "PeerUnhealthy"
  | "PeerNotVerified"
  | "SettleTime";

export type GateVerdict =
  | { open: true; message: string }
  | {
      open: false;
      reason: GateReason;
      message: string;
      /** When it may open by itself. */ retryAfterMs?: number;
    };

export function peerGate(g: GateInput): GateVerdict {
  const closed = (reason: GateReason, message: string, retryAfterMs?: number): GateVerdict => ({
    open: false,
    reason,
    message: `${g.server} waits: ${message}`,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
  if (g.paused)
    return closed(
      "RolloutPaused",
      "the rollout is paused (spec.rollout.paused or the annotation ldapgateway.io/paused)",
    );
  if (!g.database) return closed("DatabaseNotChecked", "the database preflight has not run");
  if (!g.database.ok)
    return closed("DatabaseUnreachable", `the database preflight failed: ${g.database.problem ?? "unknown"}`);
  const peer = g.peer;
  if (!peer.running)
    return closed(
      "PeerNotRunning",
      `its peer ${peer.name} is not running${peer.problem ? ` (${peer.problem})` : ""}`,
    );
  if (!peer.passing)
    return closed(
      "PeerUnhealthy",
      `its peer ${peer.name} fails its probe${peer.problem ? ` (${peer.problem})` : ""}`,
    );
  if (peer.passes < g.requiredPasses)
    return closed(
      "PeerNotVerified",
      `its peer ${peer.name} passed ${peer.passes} of ${g.requiredPasses} probes in a row`,
    );
  if (g.lastDownAt) {
    const since = g.now.getTime() - g.lastDownAt.getTime();
    if (since < g.settleMs)
      return closed(
        "SettleTime",
        `a server went down ${seconds(since)} ago; clients may still skip it until ${seconds(g.settleMs)} have passed`,
        g.settleMs - since,
      );
  }
  return {
    open: true,
    message: `its peer ${peer.name} is healthy and no server went down in the last ${seconds(g.settleMs)}`,
  };
}

const seconds = (ms: number) => `${Math.max(0, Math.round(ms / 1000))}s`;
