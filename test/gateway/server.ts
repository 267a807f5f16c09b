// The gateway stand-in's LDAP server, on ldapjs like the real one (which runs
// a fork of it). Behaviour follows shared/reference/ldap-gateway.md,
// including the quirks the operator has to survive.
import type { Server, Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import ldap from "ldapjs";
import type { GatewayConfig } from "./config.js";
import { verifyPassword } from "./crypt.js";
import { Directory } from "./directory.js";
import type { BindReq, BindRes, Next, SearchReq, SearchRes } from "./ldap-types.js";
import type { Logger } from "./log.js";
import { askApproval } from "./notification.js";
import { createSearchHandlers } from "./search.js";

export interface GatewayServer {
  listen(): Promise<{ address: string; port: number }>;
  /** Stops accepting; resolves when every client has disconnected. */
  close(): Promise<void>;
  connections(): number;
}

function normalizeDn(dn: string): string {
  return dn
    .split(",")
    .map((p) => p.trim().toLowerCase())
    .join(",");
}

function trackSockets(raw: Server, encrypted: boolean, log: Logger): Set<Socket | TLSSocket> {
  const sockets = new Set<Socket | TLSSocket>();
  raw.on(encrypted ? "secureConnection" : "connection", (sock: Socket) => {
    sockets.add(sock);
    log.debug(`client connected from ${sock.remoteAddress}:${sock.remotePort}`);
    sock.on("close", () => {
      sockets.delete(sock);
      // The real gateway does not log disconnects at info.
      log.debug(`client ${sock.remoteAddress}:${sock.remotePort} disconnected`);
    });
  });
  if (encrypted) raw.on("tlsClientError", (err: Error) => log.warn(`TLS handshake failed: ${err.message}`));
  return sockets;
}

function bindHandler(cfg: GatewayConfig, directory: Directory, log: Logger) {
  return async (req: BindReq, res: BindRes, next: Next): Promise<void> => {
    const dn = req.dn.toString();
    const firstRdn = dn.split(",")[0] ?? "";
    const username = firstRdn.slice(firstRdn.indexOf("=") + 1).trim();
    const fail = (why: string): void => {
      log.debug(`bind failed for ${dn}: ${why}`);
      next(new ldap.InvalidCredentialsError("Invalid credentials"));
    };
    let rows: Record<string, unknown>[];
    try {
      rows = await directory.oneUser(username);
    } catch (err) {
      fail(`directory unavailable (${(err as Error).message})`);
      return;
    }
    const row = rows[0];
    if (!row) return fail("no such user");
    const hash = typeof row.password === "string" ? row.password : undefined;
    if (!(await verifyPassword(req.credentials, hash))) return fail("wrong password or unsupported hash");
    if (cfg.authBackends.includes("notification") && cfg.notificationUrl) {
      log.info(`bind of ${username}: waiting for notification approval`);
      if (!(await askApproval(cfg.notificationUrl, username))) return fail("notification not approved");
    }
    log.info(`bind succeeded for ${dn}`);
    res.end();
    // next() lets ldapjs record the bound DN on the connection.
    next();
  };
}

export function createGatewayServer(
  cfg: GatewayConfig,
  log: Logger,
  tls: { cert: string; key: string } | undefined,
): GatewayServer {
  const directory = new Directory(cfg, log);
  const server = ldap.createServer(tls ? { certificate: tls.cert, key: tls.key } : {});
  const raw = (server as unknown as { server: Server }).server;
  const sockets = trackSockets(raw, tls !== undefined, log);
  // ldapjs emits clientError for every error a handler passes on (a failed
  // bind among them) and for socket errors; the real gateway logs each at
  // error level in this form.
  server.on("clientError", (err: Error) =>
    log.error(`LDAP Client connection error: ${JSON.stringify({ error: err.message })}`),
  );

  const wrap =
    <Q, R>(fn: (req: Q, res: R, next: Next) => Promise<void>) =>
    (req: Q, res: R, next: Next): void => {
      fn(req, res, next).catch((err: unknown) => next(new ldap.OperationsError((err as Error).message)));
    };

  // Binds under the base DN go to the sql (and notification) backend.
  server.bind(cfg.baseDn, wrap(bindHandler(cfg, directory, log)));
  // Anything else falls to the anonymous handler and succeeds with any
  // password; ldapjs then records that DN as the connection's identity, which
  // also satisfies REQUIRE_AUTH_FOR_SEARCH.
  server.bind("", (req: BindReq, res: BindRes, next: Next) => {
    if (!normalizeDn(req.dn.toString()).endsWith(normalizeDn(cfg.baseDn))) {
      log.debug(`bind outside the base DN accepted: ${req.dn.toString()}`);
    }
    res.end();
    next();
  });
  // ldapjs sends a search to the most specific route whose DN is the base or
  // a parent of it: the base DN's handler for the directory, the root DSE's
  // for every other base.
  const search = createSearchHandlers(cfg, directory, log);
  server.search(cfg.baseDn, wrap(search.underBase));
  server.search("", (req: SearchReq, res: SearchRes) => search.rootDse(req, res));

  return {
    listen() {
      return new Promise((resolve, reject) => {
        raw.once("error", reject);
        server.listen(cfg.port, cfg.bindIp, () => {
          raw.off("error", reject);
          const addr = raw.address();
          resolve(
            typeof addr === "object" && addr
              ? { address: addr.address, port: addr.port }
              : { address: "", port: 0 },
          );
        });
      });
    },
    close() {
      return new Promise((resolve) => {
        raw.close(() => {
          void directory.close().then(() => resolve());
        });
      });
    },
    connections: () => sockets.size,
  };
}
