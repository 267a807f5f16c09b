// The gateway's configuration, read only from its environment variables with
// the same names and defaults as ghcr.io/mieweb/ldap-gateway (see
// shared/reference/ldap-gateway.md). Where the real server would fall back to
// an interactive setup on stdin, the stand-in exits instead: nothing in the
// simulator can answer a prompt.

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

function required(env: NodeJS.ProcessEnv, name: string): string {
  const v = env[name];
  if (v === undefined || v === "") throw new ConfigError(`missing required environment variable ${name}`);
  return v;
}

/** `ldap.example.com` -> `dc=ldap,dc=example,dc=com`. */
export function baseDnFromName(name: string): string {
  return name
    .split(".")
    .filter(Boolean)
    .map((p) => `dc=${p}`)
    .join(",");
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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  const directoryBackend = required(env, "DIRECTORY_BACKEND");
  const authBackends = required(env, "AUTH_BACKENDS")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (directoryBackend !== "sql") throw new ConfigError(`unsupported DIRECTORY_BACKEND ${directoryBackend}`);
  for (const b of authBackends) {
    if (b !== "sql" && b !== "notification") throw new ConfigError(`unsupported auth backend ${b}`);
  }
  const sqlUri = required(env, "SQL_URI");
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
  const baseDn = env.LDAP_BASE_DN || baseDnFromName(commonName);
  const unencrypted = env.LDAP_UNENCRYPTED === "true";
  const port = env.PORT ? Number(env.PORT) : unencrypted ? 389 : 636;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`invalid PORT ${env.PORT}`);
  const sqlSslRaw = env.SQL_SSL;
  const cert: GatewayConfig["cert"] = {};
  if (env.LDAP_CERT_CONTENT && env.LDAP_KEY_CONTENT) {
    cert.content = { cert: env.LDAP_CERT_CONTENT, key: env.LDAP_KEY_CONTENT };
  } else if (env.LDAP_CERT_PATH && env.LDAP_KEY_PATH) {
    cert.path = { cert: env.LDAP_CERT_PATH, key: env.LDAP_KEY_PATH };
  }
  return {
    directoryBackend,
    authBackends,
    commonName,
    baseDn,
    domain: domainFromBaseDn(baseDn) || commonName,
    sqlUri,
    // Unset: whatever the URI says (sslmode / ssl=true); false/0: off.
    sqlSsl:
      sqlSslRaw === undefined || sqlSslRaw === "" ? undefined : !(sqlSslRaw === "false" || sqlSslRaw === "0"),
    queries,
    notificationUrl,
    requireAuthForSearch: env.REQUIRE_AUTH_FOR_SEARCH !== "false",
    unencrypted,
    port,
    bindIp: env.BIND_IP || "0.0.0.0",
    cert,
    logLevel: env.LOG_LEVEL || "info",
  };
}
