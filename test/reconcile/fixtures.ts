// Builders for the planner's tests: a desired pair from a spec, and the
// containers Proxmox would show for it, so each table row states only what
// differs from "everything is as the spec says".
import { encodeProxmoxEnv } from "../../src/gateway/env.js";
import type { ProbeResult } from "../../src/health/ldaps-probe.js";
import type { PreflightResult } from "../../src/health/preflight.js";
import { desiredPair } from "../../src/reconcile/desired.js";
import type { DesiredPair, DesiredServer, ObservedContainer, PairMeta } from "../../src/reconcile/model.js";
import { secretsWithUri } from "../support/secrets.js";
import { specWith } from "../support/spec.js";

export const SQL_PASSWORD = "s3cr3t-Pa55";
export const SQL_URI = `postgres://manager:${SQL_PASSWORD}@db.example.com:5432/manager`;
export const UID = "3f2b8c1e-9a4d-4e7b-8f00-1c2d3e4f5a6b";
export const OTHER_UID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

export const META: PairMeta = {
  namespace: "ldap",
  name: "site-a",
  uid: UID,
  generation: 1,
  deleting: false,
  hasFinalizer: true,
  annotations: {},
};

/** What an OCI image brings in its config: Proxmox puts it into env on create. */
export const IMAGE_ENV: ReadonlyArray<readonly [string, string]> = [
  ["PATH", "/usr/local/bin:/usr/bin:/bin"],
  ["NODE_VERSION", "24.1.0"],
];

export function desiredFor(overrides: Record<string, unknown> = {}, uri = SQL_URI): DesiredPair {
  const result = desiredPair(specWith(overrides), META, secretsWithUri(uri));
  if (!result.ok) throw new Error(result.problem.message);
  return result.pair;
}

let digestCounter = 0;

/** The config Proxmox shows for a container made from `server` and configured by the operator. */
export function configFor(server: DesiredServer, env = encodeProxmoxEnv([...IMAGE_ENV, ...server.env])) {
  const { ostemplate: _ostemplate, unprivileged: _unprivileged, ...keys } = server.create;
  return {
    ...keys,
    onboot: server.create.onboot ? 1 : 0,
    unprivileged: 1,
    env,
    digest: `digest-${++digestCounter}`,
  } as ObservedContainer["config"] & { digest: string };
}

export const PASSING_PROBE: ProbeResult = {
  healthy: true,
  steps: [],
  address: "10.0.0.5:636",
  durationMs: 12,
};

export const FAILING_PROBE: ProbeResult = {
  healthy: false,
  failedStep: "connect",
  reason: "connect: connection refused",
  steps: [],
  address: "10.0.0.5:636",
  durationMs: 3,
};

/** A running, configured, healthy container of `server`. */
export function runningContainer(
  server: DesiredServer,
  vmid: number,
  over: Partial<ObservedContainer> = {},
): ObservedContainer {
  return {
    vmid,
    node: server.node,
    status: "running",
    configHash: server.configHash,
    buildHash: server.buildHash,
    config: configFor(server),
    pending: {},
    uptimeSeconds: 3600,
    address: `10.0.0.${vmid - 96}`,
    probe: PASSING_PROBE,
    ...over,
  };
}

/** A stopped container of `server`, configured unless `fresh` (just created: the image's env only). */
export function stoppedContainer(
  server: DesiredServer,
  vmid: number,
  { fresh = false }: { fresh?: boolean } = {},
): ObservedContainer {
  return {
    vmid,
    node: server.node,
    status: "stopped",
    configHash: server.configHash,
    buildHash: server.buildHash,
    config: configFor(server, fresh ? encodeProxmoxEnv(IMAGE_ENV) : undefined),
  };
}

export const DATABASE_OK: PreflightResult = {
  reachable: true,
  userCount: 3,
  knownUser: "alice",
  groupCount: 3,
  queries: [],
  ok: true,
  durationMs: 20,
};

export const DATABASE_DOWN: PreflightResult = {
  reachable: false,
  connectError: "connect ECONNREFUSED 10.0.0.9:5432",
  queries: [],
  ok: false,
  problem: "database unreachable: connect ECONNREFUSED 10.0.0.9:5432",
  durationMs: 5,
};
