import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface Probes {
  /** Process alive and its loops not stuck. */
  healthy(): boolean | string;
  /** Caches synced: ready to serve (or to wait for leadership). */
  ready(): boolean | string;
}

export interface ProbeServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Parses ":8081", "127.0.0.1:8081" or "8081" into a listen address. */
export function parseBindAddress(address: string): { host: string | undefined; port: number } {
  const colon = address.lastIndexOf(":");
  const host = colon > 0 ? address.slice(0, colon).replace(/^\[|\]$/g, "") : undefined;
  const port = Number(colon >= 0 ? address.slice(colon + 1) : address);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid bind address ${address}`);
  return { host, port };
}

function verdict(result: boolean | string): { ok: boolean; body: string } {
  if (result === true) return { ok: true, body: "ok\n" };
  return { ok: false, body: `${result === false ? "not ok" : result}\n` };
}

export async function startProbeServer(
  address: string,
  routes: { probes?: Probes; registry?: Registry },
): Promise<ProbeServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    void (async () => {
      if (routes.probes && (path === "/healthz" || path === "/readyz")) {
        const { ok, body } = verdict(path === "/healthz" ? routes.probes.healthy() : routes.probes.ready());
        res.writeHead(ok ? 200 : 503, { "Content-Type": "text/plain" }).end(body);
      } else if (routes.registry && path === "/metrics") {
        const text = await routes.registry.metrics();
        res.writeHead(200, { "Content-Type": routes.registry.contentType }).end(text);
      } else {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      }
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  const { host, port } = parseBindAddress(address);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
