// A gateway server made by hand, as the runbook's admin makes one, straight
// through the Proxmox API of the simulated site (pull, create, env, start):
// a container the operator does not own. Tests use it to check the world
// itself, and as the foreign container that carries a pair's hostname.
import { request } from "node:https";
import type { PveSimulator } from "../pve-sim/simulator.js";
import type { TestPostgres } from "../testenv/postgres.js";
import { EXAMPLE_IMAGE } from "./example.js";

export interface HandMadeServer {
  vmid: number;
  node: string;
  hostname: string;
  address: string;
}

export interface ProvisionOptions {
  hostname: string;
  node: string;
  image?: string;
  baseDn?: string;
}

type Params = Record<string, string | number>;

/** One API call with the simulator's full-privilege token; resolves with `data`. */
export function pveCall(
  sim: PveSimulator,
  method: string,
  path: string,
  params: Params = {},
): Promise<unknown> {
  const form = new URLSearchParams(
    Object.entries(params).map(([k, v]): [string, string] => [k, String(v)]),
  ).toString();
  const query = method === "GET" && form ? `?${form}` : "";
  return new Promise((resolve, reject) => {
    const req = request(
      `${sim.apiUrl}${path}${query}`,
      {
        method,
        ca: sim.certPem,
        headers: {
          Authorization: `PVEAPIToken=${sim.tokenId}=${sim.tokenSecret}`,
          ...(method !== "GET" ? { "Content-Type": "application/x-www-form-urlencoded" } : {}),
        },
        timeout: 30_000,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => (body += chunk));
        res.on("end", () => {
          if (res.statusCode !== 200)
            return reject(new Error(`${method} ${path}: ${res.statusCode} ${body}`));
          resolve((JSON.parse(body) as { data: unknown }).data);
        });
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 30 s`)));
    req.end(method !== "GET" ? form : undefined);
  });
}

async function task(sim: PveSimulator, upid: unknown): Promise<void> {
  const done = await sim.waitTask(String(upid), 60_000);
  if (done.exitstatus !== "OK") throw new Error(`task ${String(upid)} ended with ${done.exitstatus}`);
}

/** The image's template on the node, pulled first when it is not there yet. */
async function template(sim: PveSimulator, node: string, image: string): Promise<string> {
  const file = `${image.slice(image.lastIndexOf("/") + 1).replace(":", "_")}.tar`;
  const list = async () =>
    (await pveCall(sim, "GET", `/nodes/${node}/storage/local/content`, { content: "vztmpl" })) as {
      volid: string;
    }[];
  const found = (await list()).find((v) => v.volid.endsWith(`/${file}`));
  if (found) return found.volid;
  await task(
    sim,
    await pveCall(sim, "POST", `/nodes/${node}/storage/local/oci-registry-pull`, { reference: image }),
  );
  const pulled = (await list()).find((v) => v.volid.endsWith(`/${file}`));
  if (!pulled) throw new Error(`${image} was pulled on ${node} but ${file} is not listed`);
  return pulled.volid;
}

/** The runbook's env table for a server on the seed database (its four queries, anonymous search). */
function runbookEnv(hostname: string, baseDn: string, postgres: TestPostgres): string[] {
  return [
    "DIRECTORY_BACKEND=sql",
    "AUTH_BACKENDS=sql",
    `LDAP_COMMON_NAME=${hostname}`,
    `LDAP_BASE_DN=${baseDn}`,
    `SQL_URI=${postgres.url}`,
    "REQUIRE_AUTH_FOR_SEARCH=false",
    ...Object.entries(postgres.seed.queries).map(([name, sql]) => `${name}=${sql}`),
  ];
}

/** Creates, configures and starts the server; resolves once it listens on 636. */
export async function provisionByHand(
  sim: PveSimulator,
  postgres: TestPostgres,
  o: ProvisionOptions,
): Promise<HandMadeServer> {
  const { hostname, node } = o;
  const ostemplate = await template(sim, node, o.image ?? EXAMPLE_IMAGE);
  const vmid = Number(await pveCall(sim, "GET", "/cluster/nextid"));
  await task(
    sim,
    await pveCall(sim, "POST", `/nodes/${node}/lxc`, {
      vmid,
      ostemplate,
      hostname,
      storage: "local-lvm",
      unprivileged: 1,
      net0: "name=eth0,bridge=vmbr0,ip=dhcp",
    }),
  );
  // Creation gives the container the image's env; the gateway's own variables are added to it.
  const config = (await pveCall(sim, "GET", `/nodes/${node}/lxc/${vmid}/config`)) as { env?: string };
  const env = [
    ...(config.env ? config.env.split("\0") : []),
    ...runbookEnv(hostname, o.baseDn ?? postgres.seed.baseDn, postgres),
  ];
  await pveCall(sim, "PUT", `/nodes/${node}/lxc/${vmid}/config`, { env: env.join("\0") });
  await task(sim, await pveCall(sim, "POST", `/nodes/${node}/lxc/${vmid}/status/start`));
  await sim.waitBooted(vmid, 30_000);
  const address = sim.container(vmid)?.address;
  if (!address) throw new Error(`CT ${vmid} runs without an address`);
  return { vmid, node, hostname, address };
}
