import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { request, type RequestOptions } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";

export interface SeenRequest {
  method: string;
  path: string;
  watch: boolean;
  contentType: string | undefined;
}

/**
 * A plain-HTTP proxy in front of the API server that counts what the operator
 * sends and can misbehave on purpose: answer the next watch with 410 Gone, or
 * accept watches and then stay silent (a stalled connection).
 */
export class ApiProxy {
  readonly requests: SeenRequest[] = [];
  private goneOnNextWatch = false;
  private stall = false;
  private readonly sockets = new Set<Socket>();
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private port = 0;

  private constructor(private readonly upstream: KubeConfig) {
    this.server.on("connection", (s) => {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
    });
  }

  static async start(kubeconfigPath: string): Promise<ApiProxy> {
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfigPath);
    const proxy = new ApiProxy(kc);
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    proxy.port = (proxy.server.address() as AddressInfo).port;
    return proxy;
  }

  /** A client configuration that goes through this proxy. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "proxy", server: `http://127.0.0.1:${this.port}`, skipTLSVerify: true }],
      users: [{ name: "proxy" }],
      contexts: [{ name: "proxy", cluster: "proxy", user: "proxy" }],
      currentContext: "proxy",
    });
    return kc;
  }

  count(predicate: (r: SeenRequest) => boolean): number {
    return this.requests.filter(predicate).length;
  }

  injectGoneOnNextWatch(): void {
    this.goneOnNextWatch = true;
  }

  setStall(stall: boolean): void {
    this.stall = stall;
  }

  /** Cuts every open connection, as a network failure would. */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://proxy");
    const watch = url.searchParams.get("watch") === "true";
    this.requests.push({
      method: req.method ?? "GET",
      path: url.pathname,
      watch,
      contentType: req.headers["content-type"],
    });
    if (watch && this.goneOnNextWatch) {
      this.goneOnNextWatch = false;
      const status = {
        kind: "Status",
        apiVersion: "v1",
        status: "Failure",
        reason: "Expired",
        code: 410,
        message: "too old resource version",
      };
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(`${JSON.stringify({ type: "ERROR", object: status })}\n`);
      return;
    }
    if (watch && this.stall) {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.flushHeaders();
      return;
    }
    await this.forward(req, res, url);
  }

  private async forward(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const cluster = this.upstream.getCurrentCluster();
    if (!cluster) throw new Error("no upstream cluster");
    const target = new URL(cluster.server);
    const options: RequestOptions = {};
    await this.upstream.applyToHTTPSOptions(options);
    const headers = {
      ...req.headers,
      ...(options.headers as Record<string, string> | undefined),
      host: target.host,
    };
    const upstream = request(
      {
        ...options,
        hostname: target.hostname,
        port: target.port,
        method: req.method,
        path: url.pathname + url.search,
        headers,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.destroy();
    });
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  }
}
