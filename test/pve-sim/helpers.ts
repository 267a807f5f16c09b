/** Test helpers: an HTTPS client for the simulator (certificate pinned per request) and a test image catalog. */
import { Agent, request } from "node:https";
import { fileURLToPath } from "node:url";
import { DEFAULT_STORAGES, type CatalogEntry, type StorageDef } from "./config.js";
import type { PveSimulator } from "./simulator.js";

export const LISTENER = fileURLToPath(new URL("./fixtures/listener.mjs", import.meta.url));
export const IMAGE = "ghcr.io/mieweb/ldap-gateway";

/** A classic (non-OCI) template: containers made from it run no process. */
export const DEBIAN = "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst";

/** The storages of a default install, with the Debian template present in `local`. */
export const TEST_STORAGES: StorageDef[] = [
  { ...DEFAULT_STORAGES[0]!, volumes: ["vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"] },
  DEFAULT_STORAGES[1]!,
];

/** The gateway image as the tests see it: its Env and Entrypoint, run by the fixture listener. */
export const TEST_CATALOG: CatalogEntry[] = [
  {
    pattern: `${IMAGE}:*`,
    env: [
      "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      "NODE_VERSION=24.1.0",
      "LDAP_COMMON_NAME=localhost",
    ],
    entrypoint: ["docker-entrypoint.sh"],
    cmd: ["node", "index.js"],
    command: [process.execPath, LISTENER, "{hostname}"],
    port: 636,
  },
  { pattern: "docker.io/library/builtin:*", builtin: true, port: 636 },
];

export interface ApiResponse {
  status: number;
  reason: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

export type Params = Record<string, string | number | boolean | undefined>;

export interface CallOptions {
  /** Authorization header value; default the simulator's full token; null for none. */
  authorization?: string | null;
  json?: boolean;
  headers?: Record<string, string>;
  timeoutMs?: number;
}

const agents = new WeakMap<PveSimulator, Agent>();

/** One keep-alive agent per simulator, trusting its certificate only (as a client pinning it would). */
function agentFor(sim: PveSimulator): Agent {
  let agent = agents.get(sim);
  if (!agent) {
    agent = new Agent({ keepAlive: true, ca: sim.certPem, servername: "localhost", maxSockets: 64 });
    agents.set(sim, agent);
  }
  return agent;
}

function encode(params: Params): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    u.append(k, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
  }
  return u.toString();
}

/** One API call: params in the query for GET/DELETE, form-urlencoded (or JSON) body otherwise. */
export function call(
  sim: PveSimulator,
  method: string,
  path: string,
  params: Params = {},
  opts: CallOptions = {},
): Promise<ApiResponse> {
  const inQuery = method === "GET" || method === "DELETE";
  const query = inQuery && Object.keys(params).length > 0 ? `?${encode(params)}` : "";
  const body = inQuery ? undefined : opts.json ? JSON.stringify(params) : encode(params);
  const authorization =
    opts.authorization === undefined ? `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}` : opts.authorization;
  const headers: Record<string, string> = { ...opts.headers };
  if (authorization !== null) headers["Authorization"] = authorization;
  if (body !== undefined) {
    headers["Content-Type"] = opts.json ? "application/json" : "application/x-www-form-urlencoded";
    headers["Content-Length"] = String(Buffer.byteLength(body));
  }
  const url = new URL(path.startsWith("/sim") ? `${sim.url}${path}${query}` : `${sim.apiUrl}${path}${query}`);
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: agentFor(sim) }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = text;
        try {
          parsed = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({
          status: res.statusCode ?? 0,
          reason: res.statusMessage ?? "",
          body: parsed,
          headers: res.headers,
        });
      });
      res.on("error", reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Calls and demands 200; returns `data`. */
export async function ok(
  sim: PveSimulator,
  method: string,
  path: string,
  params: Params = {},
  opts: CallOptions = {},
): Promise<unknown> {
  const r = await call(sim, method, path, params, opts);
  if (r.status !== 200)
    throw new Error(`${method} ${path} -> ${r.status} ${r.reason} ${JSON.stringify(r.body)}`);
  return (r.body as { data: unknown }).data;
}

/**
 * Logs in with a password (POST /access/ticket) and returns the call options of that session: the
 * ticket cookie and the CSRF token writes need, and no token header.
 */
export async function ticketLogin(
  sim: PveSimulator,
  username: string,
  password: string,
): Promise<CallOptions> {
  const t = (await ok(
    sim,
    "POST",
    "/access/ticket",
    { username, password },
    { authorization: null },
  )) as Record<string, string>;
  return {
    authorization: null,
    headers: {
      Cookie: `PVEAuthCookie=${encodeURIComponent(t["ticket"]!)}`,
      CSRFPreventionToken: t["CSRFPreventionToken"]!,
    },
  };
}

/** Runs a task-returning call and waits for its end through the API; returns the final task status. */
export async function runTask(
  sim: PveSimulator,
  method: string,
  path: string,
  params: Params = {},
  opts: CallOptions = {},
): Promise<Record<string, unknown>> {
  const upid = (await ok(sim, method, path, params, opts)) as string;
  return waitTask(sim, upid, opts);
}

export async function waitTask(
  sim: PveSimulator,
  upid: string,
  opts: CallOptions = {},
): Promise<Record<string, unknown>> {
  const node = upid.split(":")[1]!;
  const deadline = Date.now() + 20_000;
  for (;;) {
    const st = (await ok(
      sim,
      "GET",
      `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`,
      {},
      opts,
    )) as Record<string, unknown>;
    if (st["status"] === "stopped") return st;
    if (Date.now() > deadline) throw new Error(`task ${upid} did not end`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Pulls the test image (tag `tag`) into `local` on `node` and returns the volid. */
export async function pullImage(sim: PveSimulator, node: string, tag: string): Promise<string> {
  const st = await runTask(sim, "POST", `/nodes/${node}/storage/local/oci-registry-pull`, {
    reference: `${IMAGE}:${tag}`,
  });
  if (st["exitstatus"] !== "OK") throw new Error(`pull failed: ${String(st["exitstatus"])}`);
  return `local:vztmpl/ldap-gateway_${tag}.tar`;
}

/** Starts a Debian container's creation and returns its UPID at once, for tests that look at it mid-task. */
export async function startCreate(
  sim: PveSimulator,
  node: string,
  vmid: number,
  extra: Params = {},
): Promise<string> {
  return (await ok(sim, "POST", `/nodes/${node}/lxc`, {
    vmid,
    ostemplate: DEBIAN,
    storage: "local-lvm",
    ...extra,
  })) as string;
}

/** Creates a container (stopped) and waits for the task; returns the final task status. */
export function createCt(
  sim: PveSimulator,
  node: string,
  vmid: number,
  ostemplate: string,
  extra: Params = {},
): Promise<Record<string, unknown>> {
  return runTask(sim, "POST", `/nodes/${node}/lxc`, {
    vmid,
    ostemplate,
    hostname: `ct${vmid}`,
    storage: "local-lvm",
    net0: "name=eth0,bridge=vmbr0,ip=dhcp",
    ...extra,
  });
}

/** Reads the JSON line a fixture listener answers with on its address. */
export async function probe(address: string, port = 636): Promise<Record<string, unknown>> {
  const { connect } = await import("node:net");
  return new Promise((resolve, reject) => {
    const s = connect({ host: address, port });
    let text = "";
    s.on("data", (d: Buffer) => (text += d.toString()));
    s.on("end", () => {
      try {
        resolve(JSON.parse(text) as Record<string, unknown>);
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
    s.on("error", reject);
  });
}

/** The runbook's realm settings, as the /access/domains API takes them. */
export const SEED_REALM = {
  realm: "ldap",
  type: "ldap",
  base_dn: "dc=example,dc=com",
  user_attr: "uid",
  default: 1,
  server1: "ldap1",
  server2: "ldap2",
  mode: "ldaps",
  verify: 0,
  sync_attributes: "email=mail",
  "sync-defaults-options": "scope=both",
};
