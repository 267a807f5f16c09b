import { describe, expect, it } from "vitest";
import { membersMissing, parseSyncLog, type SyncCounts } from "../../src/reconcile/sync-log.js";

// As the simulator and Proxmox write it (a real log has no member counts).
const SIM_LOG = [
  "starting sync for realm ldap",
  "connected to ldap1 (10.0.0.5:636, ldaps)",
  "got 3 users from ldap1",
  "syncing users (remove-vanished opts: none)",
  "adding user 'alice@ldap'",
  "adding user 'bob@ldap'",
  "updating user 'carol@ldap'",
  "syncing groups (remove-vanished opts: none)",
  "adding group 'devs-ldap' (2 members)",
  "adding group 'sysadmins-ldap' (1 member)",
  "updating group 'ldapusers-ldap' (0 members)",
  "successfully synced realm ldap",
];

describe("parseSyncLog", () => {
  it.each<[string, string[], SyncCounts]>([
    ["the simulator's log with member counts", SIM_LOG, { users: 3, groups: 3, groupsWithoutMembers: 1 }],
    [
      "no member counts (Proxmox's own words)",
      ["adding user 'alice@ldap'", "adding group 'devs-ldap'", "updating group 'x-ldap'"],
      { users: 1, groups: 2 },
    ],
    [
      "every group without members",
      ["adding group 'a-ldap' (0 members)", "adding group 'b-ldap' (0 members)"],
      { users: 0, groups: 2, groupsWithoutMembers: 2 },
    ],
    ["users only", ["adding user 'a@ldap'", "removing vanished user 'z@ldap'"], { users: 1, groups: 0 }],
    ["an empty log", [], { users: 0, groups: 0 }],
  ])("%s", (_what, lines, counts) => {
    expect(parseSyncLog(lines)).toEqual(counts);
  });
});

describe("membersMissing", () => {
  it.each<[string, SyncCounts, boolean, RegExp | undefined]>([
    [
      "runbook queries: always",
      { users: 3, groups: 3 },
      false,
      /3 group\(s\) imported without members.*set spec.groupMembers: true/,
    ],
    ["members on, some groups empty", { users: 3, groups: 3, groupsWithoutMembers: 1 }, true, undefined],
    [
      "members on, every group empty",
      { users: 3, groups: 3, groupsWithoutMembers: 3 },
      true,
      /every group \(3\).*restart applies it/,
    ],
    ["members on, no counts in the log", { users: 3, groups: 3 }, true, undefined],
    ["no groups imported", { users: 3, groups: 0 }, false, undefined],
  ])("%s", (_what, counts, groupMembers, note) => {
    const text = membersMissing(counts, groupMembers);
    if (note) expect(text).toMatch(note);
    else expect(text).toBeUndefined();
  });
});
