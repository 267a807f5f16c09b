/**
 * The HTTPS front: `/api2/json/...` answered as pveproxy does (faults, auth, node routing, errors, request
 * log), and the admin API for fault injection under `/sim/...` (no auth; a test tool on loopback).
 */
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Identity } from "./auth.js";
import type { Cert } from "./cert.js";
import { requireNode, type SimCore } from "./core.js";
import { PveError } from "./errors.js";
import { maskParams } from "./requestlog.js";
import { successBody, type Router } from "./router.js";

const API_PREFIX = "/api2/json";
export const ADMIN_PREFIX = "/sim";
const MAX_BODY = 4 * 1024 * 1024;
const ANONYMOUS: Identity = { userid: "", authid: "", acl: [] };

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new PveError(413, "request too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function parseInput(url: URL, body: string, contentType: string | undefined): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [k, v] of url.searchParams) input[k] = v;
  if (body.trim() === "") return input;
  if (contentType?.includes("application/json")) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new PveError(400, "malformed JSON request body");
    }
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) Object.assign(input, parsed);
    return input;
  }
  for (const [k, v] of new URLSearchParams(body)) input[k] = v;
  return input;
}

/** The reason phrase: the message's first line, in the characters a status line may carry. */
function reason(message: string): string {
  return (message.split("\n")[0] ?? "").replace(/[^\x20-\x7e]/g, "?").slice(0, 512) || "Error";
}

function send(res: ServerResponse, status: number, body: unknown, message?: string): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.statusCode = status;
  if (message !== undefined) res.statusMessage = reason(message);
  res.setHeader("Content-Type", "application/json;charset=UTF-8");
  res.setHeader("Content-Length", Buffer.byteLength(text));
  res.setHeader("Cache-Control", "max-age=0");
  res.setHeader("Pragma", "no-cache");
  res.end(text);
}

function sendError(res: ServerResponse, e: PveError): void {
  // pve-http-server >= 5.2 puts the message in the body too; messages end with a newline as die() texts do.
  const body: Record<string, unknown> = {
    data: null,
    message: e.message.endsWith("\n") ? e.message : `${e.message}\n`,
  };
  if (e.errors) body["errors"] = e.errors;
  send(res, e.status, body, e.message);
}

function asPveError(e: unknown): PveError {
  if (e instanceof PveError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new PveError(500, msg);
}

export class SimServer {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly held = new Set<ServerResponse>();

  constructor(
    private readonly core: SimCore,
    private readonly admin: Router,
    private readonly cert: Cert,
  ) {}

  async listen(host: string, port: number): Promise<number> {
    const server = createServer(
      { cert: this.cert.cert, key: this.cert.key },
      (req, res) => void this.handle(req, res),
    );
    server.keepAliveTimeout = 5000;
    server.on("connection", (s: Socket) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
    server.on("tlsClientError", () => undefined);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    const addr = server.address();
    return typeof addr === "object" && addr ? addr.port : port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    for (const r of this.held) r.destroy();
    this.held.clear();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "https://localhost");
    let pathname = url.pathname;
    try {
      pathname = decodeURIComponent(url.pathname);
    } catch {
      /* keep it as sent */
    }
    const method = (req.method ?? "GET").toUpperCase();
    try {
      if (pathname === ADMIN_PREFIX || pathname.startsWith(ADMIN_PREFIX + "/")) {
        const body = await readBody(req);
        const input = parseInput(url, body, req.headers["content-type"] ?? "application/json");
        const m = this.admin.match(method, pathname.slice(ADMIN_PREFIX.length) || "/");
        if (!m) throw new PveError(404, `no admin route ${method} ${pathname}`);
        const data = await m.handler({
          method,
          path: pathname,
          params: m.params,
          input,
          identity: ANONYMOUS,
        });
        send(res, 200, { data: data ?? null });
        return;
      }
      if (!pathname.startsWith(API_PREFIX + "/")) {
        send(res, 501, { data: null }, `Method '${method} ${pathname}' not implemented`);
        return;
      }
      await this.api(req, res, url, pathname, method);
    } catch (e) {
      sendError(res, asPveError(e));
    }
  }

  private async api(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    pathname: string,
    method: string,
  ): Promise<void> {
    const core = this.core;
    const started = Date.now();
    const path = pathname.slice(API_PREFIX.length).replace(/\/+$/, "") || "/";
    let input: Record<string, unknown> = {};
    let caller: string | undefined;
    let fault: string | undefined;
    let status = 200;
    const log = () =>
      core.requestLog.add({
        time: started,
        method,
        path,
        params: maskParams(input),
        caller,
        status,
        fault,
        durationMs: Date.now() - started,
      });
    try {
      input = parseInput(url, await readBody(req), req.headers["content-type"]);
      const latency = core.faults.takeLatency(method, path);
      if (latency) await new Promise((r) => setTimeout(r, latency.ms));
      const failure = core.faults.takeFail(method, path);
      if (failure) {
        fault = "fail";
        throw new PveError(failure.status, failure.message);
      }
      const m = core.router.match(method, path);
      if (!m) throw new PveError(501, `Method '${method} ${API_PREFIX}${path}' not implemented`);
      let identity = ANONYMOUS;
      if (m.auth) {
        identity = core.auth.authenticate(method, req.headers);
        caller = identity.authid;
      }
      const node = m.params["node"];
      if (node !== undefined) {
        requireNode(core, node);
        const down = core.faults.unreachableNode(node);
        if (down) {
          fault = "unreachable";
          const st = down.status ?? 595;
          throw new PveError(
            st,
            down.message ??
              (st === 596
                ? "tls_process_server_certificate: certificate verify failed"
                : `Connection refused`),
          );
        }
      }
      const drop = core.faults.takeDrop(method, path);
      let data: unknown;
      try {
        data = await m.handler({ method, path, params: m.params, input, identity });
      } finally {
        if (drop) fault = "drop";
      }
      if (drop) {
        status = 0;
        this.dropResponse(res, drop.mode ?? "reset");
        return;
      }
      send(res, 200, successBody(data));
    } catch (e) {
      const err = asPveError(e);
      if (fault === "drop") {
        status = 0;
        this.dropResponse(res, "reset");
        return;
      }
      status = err.status;
      // pveproxy delays every failed authentication by 3 s against password guessing (scaled by speed).
      if (err.status === 401)
        await new Promise((r) => setTimeout(r, core.tasks.scaled(core.config.authFailureDelayMs)));
      sendError(res, err);
    } finally {
      log();
    }
  }

  private dropResponse(res: ServerResponse, mode: "reset" | "timeout"): void {
    if (mode === "timeout") {
      // Nothing is sent: the client times out. The socket is closed when the simulator stops.
      this.held.add(res);
      res.on("close", () => this.held.delete(res));
      return;
    }
    res.socket?.destroy();
  }
}
