// Entry point of the LDAP gateway stand-in: `tsx test/gateway/main.ts
// [--startup-scale=N]`. Configured only through the real gateway's
// environment variables and a `.env` in the working directory, where it also
// keeps its self-signed certificate (./cert).
import { ConfigError, loadConfig, needsInteractiveSetup } from "./config.js";
import { environmentWithDotEnv } from "./dotenv.js";
import { createLogger, type Logger } from "./log.js";
import { createGatewayServer, type GatewayServer } from "./server.js";
import { interactiveSetup } from "./setup.js";
import { startupDelayMs, startupScale } from "./startup.js";
import { loadOrCreateCert } from "./tls.js";

function exitWithConfigError(err: unknown): never {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`ldap-gateway: ${err.message}\n`);
  process.exit(1);
}

/**
 * Graceful stop as in the real gateway: stop accepting, then exit only when
 * the last client has gone. An idle client keeps the process alive; a second
 * signal exits with status 1.
 */
function handleSignals(server: GatewayServer, log: Logger): void {
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

async function main(): Promise<void> {
  const { env, hasDotEnv } = environmentWithDotEnv(process.cwd(), process.env);
  if (needsInteractiveSetup(env, hasDotEnv)) {
    await interactiveSetup();
    process.exit(0);
  }
  let cfg;
  let scale;
  try {
    cfg = loadConfig(env);
    scale = startupScale(process.argv.slice(2));
  } catch (err) {
    exitWithConfigError(err);
  }
  const log = createLogger(cfg.logLevel);
  const tls = cfg.unencrypted ? undefined : await loadOrCreateCert(cfg, process.cwd());
  const server = createGatewayServer(cfg, log, tls);
  // performance.now() counts from the process's start, as the real boot does.
  const wait = startupDelayMs(tls?.made ?? false, performance.now(), scale);
  await new Promise((resolve) => setTimeout(resolve, wait));
  const { address, port } = await server.listen();
  log.info(
    `${tls ? "LDAPS" : "LDAP"} server listening on ${address}:${port} base=${cfg.baseDn} cn=${cfg.commonName} ` +
      `auth=${cfg.authBackends.join(",")}${tls?.made ? " (certificate made in ./cert)" : ""}`,
  );
  handleSignals(server, log);
}

void main().catch((err: unknown) => {
  process.stderr.write(`ldap-gateway: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
