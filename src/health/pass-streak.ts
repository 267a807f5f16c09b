// Consecutive passes of one server's probe. The rollout's verify gate asks
// for several passes in a row: a gateway can answer once and then lose its
// database, or a restarted container can answer on a new address. Pure: the
// caller stores the streak (in status) and feeds it each probe's outcome.

export interface PassStreak {
  /** The address the passes were seen on; a new address starts over. */
  address: string;
  /** Probes passed in a row on that address, up to the latest. */
  passes: number;
}

export const NO_STREAK: PassStreak = { address: "", passes: 0 };

/** The streak after one more probe of `address`. */
export function recordProbe(streak: PassStreak, address: string, healthy: boolean): PassStreak {
  if (!healthy) return { address, passes: 0 };
  const before = streak.address === address ? streak.passes : 0;
  return { address, passes: before + 1 };
}

/** Whether the latest `required` probes of `address` all passed. */
export function streakSatisfied(streak: PassStreak, address: string, required: number): boolean {
  return streak.address === address && streak.passes >= Math.max(1, required);
}
