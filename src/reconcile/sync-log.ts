// What a realm sync imported, read from its task log, and what the status
// says when groups came without members. Proxmox logs one line per user and
// group it adds or updates (`adding user 'alice@ldap'`, `updating group
// 'devs-ldap' (2 members)`); the member count is read when the line has it.

export interface SyncCounts {
  users: number;
  groups: number;
  /** Groups whose line says 0 members; undefined when the log gives no member counts. */
  groupsWithoutMembers?: number;
}

const USER_LINE = /^(?:adding|updating) user '/;
const GROUP_LINE = /^(?:adding|updating) group '[^']*'(?: \((\d+) members?\))?/;

export function parseSyncLog(lines: readonly string[]): SyncCounts {
  let users = 0;
  let groups = 0;
  let counted = 0;
  let empty = 0;
  for (const line of lines) {
    const text = line.trim();
    if (USER_LINE.test(text)) users++;
    const group = GROUP_LINE.exec(text);
    if (!group) continue;
    groups++;
    if (group[1] === undefined) continue;
    counted++;
    if (group[1] === "0") empty++;
  }
  return { users, groups, ...(counted > 0 ? { groupsWithoutMembers: empty } : {}) };
}

/**
 * Why groups were imported without members, and the switch that fixes it; undefined when
 * nothing is missing. With the runbook's queries (groupMembers off) every group comes without
 * members, whatever the log says.
 */
export function membersMissing(counts: SyncCounts, groupMembers: boolean): string | undefined {
  if (counts.groups === 0) return undefined;
  if (!groupMembers)
    return (
      `${counts.groups} group(s) imported without members: the runbook's group query returns no members ` +
      `(Proxmox reads 'member'); set spec.groupMembers: true`
    );
  if (counts.groupsWithoutMembers !== undefined && counts.groupsWithoutMembers === counts.groups)
    return (
      `every group (${counts.groups}) was imported without members although spec.groupMembers is on: ` +
      `the servers may still run the old env (a restart applies it), or the database's groups have no members`
    );
  return undefined;
}
