// Valid LdapPairs the operator and the API server must both accept and store
// alike. Like invalid-specs.ts, the table is checked against the operator's
// own validation (test/api) and against the real API server (test/controlplane).
import { MINIMAL_SPEC } from "./spec.js";

export interface ValidCase {
  title: string;
  spec: Record<string, unknown>;
  /** A spec that must be stored exactly as this one is, e.g. without the nulls. */
  storedAs?: Record<string, unknown>;
}

type Spec = Record<string, unknown>;
const base = (): Spec => structuredClone(MINIMAL_SPEC) as Spec;
const withProxmox = (change: Spec): Spec => ({ ...base(), proxmox: { ...MINIMAL_SPEC.proxmox, ...change } });
const servers = (...networks: (Spec | undefined)[]) =>
  networks.map((network, i) => ({ name: `ldap${i + 1}`, ...(network ? { network } : {}) }));

export const VALID_SPECS: ValidCase[] = [
  { title: "the minimal spec", spec: base() },
  { title: "null for a defaulted object (realm)", spec: { ...base(), realm: null }, storedAs: base() },
  {
    title: "null for a defaulted field inside an object (realm.name)",
    spec: { ...base(), realm: { name: null, adopt: true } },
    storedAs: { ...base(), realm: { adopt: true } },
  },
  {
    title: "null for a defaulted list (servers) and a defaulted number (resources.cores)",
    spec: { ...base(), servers: null, resources: { cores: null, memoryMiB: 1024 } },
    storedAs: { ...base(), resources: { memoryMiB: 1024 } },
  },
  {
    title: "null for optional fields without a default (nodeDns, domain)",
    spec: { ...base(), domain: null, baseDN: "dc=example,dc=com", nodeDns: null },
    storedAs: { ...withoutDomain(), baseDN: "dc=example,dc=com" },
  },
  {
    title: "null for a defaulted Secret key",
    spec: { ...base(), database: { uriSecretRef: { name: "manager-db", key: null } } },
    storedAs: base(),
  },
  {
    title: "distinct nodes in nodeDns.nodes",
    spec: { ...base(), nodeDns: { nameserver: "10.0.0.2", nodes: ["pve1", "pve2"] } },
  },
  {
    title: "a sync interval of exactly Node's timer limit",
    spec: { ...base(), realm: { syncInterval: "596h31m23.647s" } },
  },
  {
    title: "Node's timer limit in milliseconds",
    spec: { ...base(), realm: { syncInterval: "2147483647ms" } },
  },
  {
    title: "a disabled realm sync (0s) and fractional hours",
    spec: { ...base(), realm: { syncInterval: "0s" }, rollout: { healthGateTimeout: "0.5h" } },
  },
  {
    title: "an hour's health gate and settle time",
    spec: { ...base(), rollout: { healthGateTimeout: "1h", settleTime: "59m60s" } },
  },
  {
    title: "groups without members (the runbook's queries), names synced, a day's progress deadline",
    spec: {
      ...base(),
      groupMembers: false,
      realm: { syncNames: true },
      rollout: { progressDeadline: "24h" },
    },
  },
  {
    title: "a restart on request, stamped as kubectl rollout restart does, with CreateThenSwap",
    spec: { ...base(), rollout: { restartedAt: "2026-12-02T08:00:00Z", strategy: "CreateThenSwap" } },
  },
  {
    title: "a restart stamp with fractions and an offset",
    spec: { ...base(), rollout: { restartedAt: "2026-12-02T08:00:00.123456+02:00", autoRollback: true } },
  },
  {
    title: "Secret names and keys with dots",
    spec: {
      ...withProxmox({
        credentialsSecretRef: { name: "pve.token-v2", tokenIdKey: "token.id", tokenSecretKey: "_secret-1" },
      }),
      database: { uriSecretRef: { name: "manager-db.v2", key: ".uri" } },
    },
  },
  {
    title: "servers on two static addresses",
    spec: { ...base(), servers: servers({ ipv4: "10.0.0.5/24" }, { ipv4: "10.0.0.6/24" }) },
  },
  {
    title: "one static server and one on DHCP",
    spec: { ...base(), servers: servers({ ipv4: "10.0.0.5/24" }, undefined) },
  },
];

function withoutDomain(): Spec {
  const { domain: _domain, ...rest } = base();
  return rest;
}
