// Entry point of the LDAP gateway stand-in: `tsx test/gateway/main.ts`.
// Configured only through the real gateway's environment variables.
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./log.js";
import { createGatewayServer } from "./server.js";
import { loadOrCreateCert } from "./tls.js";

async function main(): Promise<void> {
  let cfg;
  try {
    cfg = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      // The real gateway would start an interactive setup here; with no
      // terminal in a container the useful outcome is a crash that says why.
      process.stderr.write(`ldap-gateway: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  const log = createLogger(cfg.logLevel);
  const tls = cfg.unencrypted ? undefined : await loadOrCreateCert(cfg);
  const server = createGatewayServer(cfg, log, tls);
  const { address, port } = await server.listen();
  log.info(
    `${tls ? "LDAPS" : "LDAP"} server listening on ${address}:${port} base=${cfg.baseDn} cn=${cfg.commonName} ` +
      `auth=${cfg.authBackends.join(",")}`,
  );

  // Graceful stop as in the real gateway: stop accepting, then exit only when
  // the last client has gone. An idle client keeps the process alive; a
  // second signal exits with status 1.
  let stopping = false;
  const stop = (why: string): void => {
    if (stopping) {
      log.error(`${why} during shutdown: exiting now`);
      process.exit(1);
    }
    stopping = true;
    log.info(
      `${why}: no longer accepting connections, waiting for ${server.connections()} client(s) to disconnect`,
    );
    void server.close().then(() => {
      log.info("all clients disconnected, exiting");
      process.exit(0);
    });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  // The same path runs on an uncaught exception, so a process can live on
  // with no listener.
  process.on("uncaughtException", (err) => {
    log.error(`uncaught exception: ${err.stack ?? err.message}`);
    if (!stopping) stop("uncaught exception");
  });
}

void main().catch((err: unknown) => {
  process.stderr.write(`ldap-gateway: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
