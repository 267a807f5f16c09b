// The gateway's configuration, read only from its environment variables (and
// a `.env` file in its working directory) with the same names and defaults as
// ghcr.io/mieweb/ldap-gateway `main` (see shared/reference/ldap-gateway.md).

export interface GatewayConfig {
  directoryBackend: string;
  authBackends: string[];
  commonName: string;
  baseDn: string;
  /** The DNS domain behind the base DN, for default mail addresses. */
  domain: string;
  sqlUri: string;
  sqlSsl: boolean | undefined;
  queries: {
    allUsers: string;
    oneUser: string;
    allGroups: string;
    groupsByMember: string;
  };
  notificationUrl: string | undefined;
  requireAuthForSearch: boolean;
  unencrypted: boolean;
  port: number;
  bindIp: string;
  cert: { content?: { cert: string; key: string }; path?: { cert: string; key: string } };
  logLevel: string;
}

export class ConfigError extends Error {}

/**
 * Without one of these, and without a `.env`, the real gateway runs its
 * interactive setup on stdin instead of serving. That is also why its "base
 * DN from the common name" default never applies in practice.
 */
export const SETUP_TRIGGERS = ["LDAP_BASE_DN", "DIRECTORY_BACKEND", "AUTH_BACKENDS"] as const;

export function needsInteractiveSetup(env: NodeJS.ProcessEnv, hasDotEnv: boolean): boolean {
  return !hasDotEnv && SETUP_TRIGGERS.some((name) => !env[name]);
}

/**
 * Node's own error for `url.parse(undefined)`, which is all the real gateway
 * says when SQL_URI is missing: the message does not name the variable.
 */
export const MISSING_SQL_URI_MESSAGE =
  'TypeError [ERR_INVALID_ARG_TYPE]: The "url" argument must be of type string. Received undefined';

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === "") throw new ConfigError(`missing required environment variable ${name}`);
  return v;
}

/** `dc=example,dc=com` -> `example.com` (non-dc components are skipped). */
export function domainFromBaseDn(baseDn: string): string {
  return baseDn
    .split(",")
    .map((p) => p.trim())
    .filter((p) => /^dc=/i.test(p))
    .map((p) => p.slice(3))
    .join(".");
}

/** Only the exact value `false` turns database TLS off; any other value turns it on; unset: the URI decides. */
export function sqlSslSetting(raw: string | undefined): boolean | undefined {
  if (raw === undefined || raw === "") return undefined;
  return raw !== "false";
}

function backends(env: NodeJS.ProcessEnv): { directoryBackend: string; authBackends: string[] } {
  const directoryBackend = required(env, "DIRECTORY_BACKEND");
  const authBackends = required(env, "AUTH_BACKENDS")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (directoryBackend !== "sql") throw new ConfigError(`unsupported DIRECTORY_BACKEND ${directoryBackend}`);
  for (const b of authBackends) {
    if (b !== "sql" && b !== "notification") throw new ConfigError(`unsupported auth backend ${b}`);
  }
  return { directoryBackend, authBackends };
}

function certSource(env: NodeJS.ProcessEnv): GatewayConfig["cert"] {
  if (env.LDAP_CERT_CONTENT && env.LDAP_KEY_CONTENT) {
    return { content: { cert: env.LDAP_CERT_CONTENT, key: env.LDAP_KEY_CONTENT } };
  }
  if (env.LDAP_CERT_PATH && env.LDAP_KEY_PATH) {
    return { path: { cert: env.LDAP_CERT_PATH, key: env.LDAP_KEY_PATH } };
  }
  return {};
}

/** The configuration to serve with; call only when `needsInteractiveSetup` is false. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const { directoryBackend, authBackends } = backends(env);
  const baseDn = required(env, "LDAP_BASE_DN");
  if (!env.SQL_URI) throw new ConfigError(MISSING_SQL_URI_MESSAGE);
  const queries = {
    allUsers: required(env, "SQL_QUERY_ALL_USERS"),
    oneUser: required(env, "SQL_QUERY_ONE_USER"),
    allGroups: required(env, "SQL_QUERY_ALL_GROUPS"),
    groupsByMember: required(env, "SQL_QUERY_GROUPS_BY_MEMBER"),
  };
  const notificationUrl = env.NOTIFICATION_URL || undefined;
  if (authBackends.includes("notification") && !notificationUrl) {
    throw new ConfigError("AUTH_BACKENDS contains notification but NOTIFICATION_URL is not set");
  }
  const commonName = env.LDAP_COMMON_NAME || "localhost";
  const unencrypted = env.LDAP_UNENCRYPTED === "true";
  const port = env.PORT ? Number(env.PORT) : unencrypted ? 389 : 636;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid PORT ${env.PORT}`);
  return {
    directoryBackend,
    authBackends,
    commonName,
    baseDn,
    domain: domainFromBaseDn(baseDn) || commonName,
    sqlUri: env.SQL_URI,
    sqlSsl: sqlSslSetting(env.SQL_SSL),
    queries,
    notificationUrl,
    requireAuthForSearch: env.REQUIRE_AUTH_FOR_SEARCH !== "false",
    unencrypted,
    port,
    bindIp: env.BIND_IP || "0.0.0.0",
    cert: certSource(env),
    logLevel: env.LOG_LEVEL || "info",
  };
}
