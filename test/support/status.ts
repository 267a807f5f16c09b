// A status with every field the operator writes, as a rollout in flight
// leaves it: checked against the operator's own schema (test/api) and stored
// through the real API server unchanged (test/controlplane), so no field the
// planner relies on after a restart is pruned on the way.
import type { LdapPairStatus } from "../../src/api/ldappair.js";

const T0 = "2026-12-01T10:00:00Z";
const T1 = "2026-12-01T10:00:45Z";
const UPID = "UPID:pve1:0000A1B2:0012C3D4:674C1B2D:vzstart:101:root@pam!operator:";

export const FULL_STATUS: LdapPairStatus = {
  observedGeneration: 3,
  phase: "RollingUpdate",
  readyServers: "1/2",
  conditions: [
    {
      type: "Ready",
      status: "False",
      reason: "RollingUpdate",
      message: "starting ldap1 (CT 101 on pve1)",
      lastTransitionTime: T0,
      observedGeneration: 3,
    },
  ],
  servers: [
    {
      name: "ldap1",
      node: "pve1",
      vmid: 101,
      address: "10.0.0.5",
      image: "ghcr.io/mieweb/ldap-gateway:1.5.0",
      configHash: "0123456789abcdef",
      buildHash: "fedcba9876543210",
      state: "Starting",
      healthy: false,
      passes: 0,
      lastDownAt: T0,
      startedAt: T1,
      lastProbeTime: T1,
      failedStep: "connect",
      envKeys: ["DIRECTORY_BACKEND", "LOG_LEVEL"],
      message: "connect: connection refused",
    },
    {
      name: "ldap2",
      node: "pve2",
      vmid: 102,
      address: "10.0.0.6",
      image: "ghcr.io/mieweb/ldap-gateway:1.4.0",
      configHash: "1111111111111111",
      buildHash: "2222222222222222",
      state: "Running",
      healthy: true,
      passes: 12,
      healthySince: T0,
      lastProbeTime: T1,
    },
  ],
  task: { upid: UPID, action: "StartContainer", server: "ldap1", node: "pve1", vmid: 101, startedAt: T1 },
  lastFailure: {
    action: "StartContainer",
    server: "ldap1",
    reason: "StartFailed",
    time: T0,
    attempts: 1,
    message: "startup for container '101' failed",
  },
  rollout: {
    server: "ldap1",
    step: "Start",
    since: T1,
    targetImage: "ghcr.io/mieweb/ldap-gateway:1.5.0",
    targetHash: "0123456789abcdef",
    previousImage: "ghcr.io/mieweb/ldap-gateway:1.4.0",
    previousHash: "1111111111111111",
    updatedServers: 0,
    message: "ldap1 rebuilt, starting",
  },
  realm: {
    name: "ldap",
    syncState: "Synced",
    lastSyncTime: T0,
    lastSyncTask: UPID,
    lastSyncReason: "RealmCreated",
    usersImported: 3,
    groupsImported: 3,
    groupsWithoutMembers: 3,
    membersMissing: "3 groups imported without members: set spec.groupMembers: true",
    pendingSync: "ServerRebuilt",
    syncRequest: "2026-12-01T09:00:00Z",
    message: "synced 3 users and 3 groups",
  },
  database: { reachable: true, lastCheckTime: T1, users: 3 },
  nodeDns: [{ node: "pve1", previous: { search: "lan", dns1: "192.168.1.1" } }],
  images: [{ node: "pve1", volid: "local:vztmpl/ldap-gateway_1.5.0.tar" }],
};
