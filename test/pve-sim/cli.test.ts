import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { LISTENER } from "./helpers.js";
import { request } from "node:https";
import type { TLSSocket } from "node:tls";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSX = join(ROOT, "node_modules", ".bin", "tsx");
const dir = mkdtempSync(join(tmpdir(), "pve-sim-cli-"));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

interface Ready {
  url: string;
  apiUrl: string;
  tokenId: string;
  tokenSecret: string;
  adminUrl: string;
  fingerprint: string;
}

function get(
  ready: Ready,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; data: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${ready.apiUrl}${path}`,
      {
        method,
        rejectUnauthorized: false, // this test pins by fingerprint below instead
        agent: false,
        headers: {
          Authorization: `PVEAPIToken=${ready.tokenId}=${ready.tokenSecret}`,
          ...(body ? { "Content-Type": "application/x-www-form-urlencoded" } : {}),
        },
      },
      (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate();
        if (cert.fingerprint256 !== ready.fingerprint) reject(new Error("certificate fingerprint differs"));
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, data: (JSON.parse(text) as { data: unknown }).data }),
        );
      },
    );
    req.on("error", reject);
    if (body) req.write(body);
    req.end();
  });
}

/** Starts the CLI as `npm run pve-sim` does (tsx main.ts), with a container 100 started; returns its pid. */
async function startWithContainer(
  name: string,
): Promise<{ ready: Ready; pid: number; stateFile: string; proc: ChildProcess }> {
  const configFile = join(dir, `${name}.json`);
  const stateFile = join(dir, `${name}-state.json`);
  writeFileSync(
    configFile,
    JSON.stringify({
      nodes: ["pve1", "pve2"],
      speed: 0.01,
      catalog: [
        { pattern: "ghcr.io/mieweb/ldap-gateway:*", env: ["A=1"], command: [process.execPath, LISTENER] },
      ],
    }),
  );
  const proc = spawn(
    TSX,
    ["test/pve-sim/main.ts", "--config", configFile, "--state", stateFile, "--port", "0"],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  children.push(proc);
  const lines = createInterface({ input: proc.stdout! });
  const ready = JSON.parse(await new Promise<string>((resolve) => lines.once("line", resolve))) as Ready;
  const pull = await get(
    ready,
    "POST",
    "/nodes/pve1/storage/local/oci-registry-pull",
    "reference=ghcr.io/mieweb/ldap-gateway:1.0.0",
  );
  expect(pull.status).toBe(200);
  await new Promise((r) => setTimeout(r, 200));
  const create = await get(
    ready,
    "POST",
    "/nodes/pve1/lxc",
    "vmid=100&ostemplate=local:vztmpl/ldap-gateway_1.0.0.tar&storage=local-lvm&start=1",
  );
  expect(create.status).toBe(200);
  let pid: number | undefined;
  for (let i = 0; i < 200 && pid === undefined; i++) {
    await new Promise((r) => setTimeout(r, 25));
    pid = ((await get(ready, "GET", "/nodes/pve1/lxc/100/status/current")).data as { pid?: number }).pid;
  }
  expect(pid).toBeTypeOf("number");
  return { ready, pid: pid!, stateFile, proc };
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("npm run pve-sim", () => {
  it("prints one JSON line when ready, serves the API, and stops cleanly on SIGTERM killing its containers", async () => {
    const { ready, pid, stateFile, proc } = await startWithContainer("term");
    expect(ready).toMatchObject({
      tokenId: "root@pam!pve-sim",
      url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+$/),
    });
    expect(ready.adminUrl).toBe(`${ready.url}/sim`);
    expect((await get(ready, "GET", "/nodes")).data).toHaveLength(2);

    const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
    proc.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(alive(pid)).toBe(false);
    const state = JSON.parse(readFileSync(stateFile, "utf8")) as {
      containers: Record<string, { status: string }>;
    };
    expect(state.containers["100"]?.status).toBe("running");
  });

  it("a simulator killed with SIGKILL leaves no container process behind", async () => {
    const { pid } = await startWithContainer("kill");
    const simulator = parentOf(parentOf(pid)); // container <- spawner <- simulator
    process.kill(simulator, "SIGKILL");
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
  });
});
