// The complete environment of one gateway server: the seed's table, then the
// user's extra variables. Pure: the SQL URI comes in as a value, never read here.
import type { LdapPairSpec } from "../api/ldappair.js";
import { secretValue, type SecretSource, type SecretValue } from "../api/secrets.js";
import { resolveBaseDn } from "./base-dn.js";
import { renderQueries, type GatewayQueries } from "./queries.js";
import { ENV_NAME_PATTERN, FORBIDDEN_ENV_VALUE_CHARS } from "./variables.js";

/**
 * Secret values the environment needs. They are SecretValues, so they can
 * only come from secretValue, which trims the line end a Secret made from a
 * file carries (Proxmox would refuse it in the env).
 */
export interface GatewaySecrets {
  sqlUri: SecretValue;
}

/** The gateway's secrets, from the Secret that spec.database.uriSecretRef names (read by the caller). */
export function gatewaySecrets(
  spec: Pick<LdapPairSpec, "database">,
  uriSecret: SecretSource,
): GatewaySecrets {
  return { sqlUri: secretValue(uriSecret, spec.database.uriSecretRef.key) };
}

/** Ordered `NAME=value` pairs: order is the seed's table, then spec.extraEnv. */
export type GatewayEnv = ReadonlyArray<readonly [name: string, value: string]>;

type EnvSpec = Pick<
  LdapPairSpec,
  "domain" | "baseDN" | "notifications" | "requireAuthForSearch" | "extraEnv" | "groupMembers"
>;

/** The four queries a pair's gateways run, and so the ones its database preflight must run. */
export function pairQueries(spec: Pick<EnvSpec, "domain" | "baseDN" | "groupMembers">): GatewayQueries {
  return renderQueries(spec.groupMembers ? { groupMembers: { baseDn: resolveBaseDn(spec) } } : {});
}

export function renderGatewayEnv(spec: EnvSpec, serverName: string, secrets: GatewaySecrets): GatewayEnv {
  const notificationUrl = spec.notifications?.url;
  const env: [string, string][] = [
    ["DIRECTORY_BACKEND", "sql"],
    ["LDAP_COMMON_NAME", serverName],
    ["LDAP_BASE_DN", resolveBaseDn(spec)],
    ["AUTH_BACKENDS", notificationUrl ? "sql,notification" : "sql"],
    ...(notificationUrl ? [["NOTIFICATION_URL", notificationUrl] as [string, string]] : []),
    ["SQL_URI", secrets.sqlUri],
    ...Object.entries(pairQueries(spec)),
    ["REQUIRE_AUTH_FOR_SEARCH", spec.requireAuthForSearch ? "true" : "false"],
  ];
  for (const { name, value } of spec.extraEnv ?? []) env.push([name, value]);
  return env;
}

/** An env value Proxmox would refuse. The message names the variable, never the value. */
export class EnvValueError extends Error {
  override name = "EnvValueError";
  constructor(
    readonly variable: string,
    what: string,
  ) {
    super(`environment variable ${variable} ${what}; Proxmox cannot store it in a container's env`);
  }
}

const describeChar = (c: string) =>
  c === "\n"
    ? "a newline"
    : c === "\r"
      ? "a carriage return"
      : `the control character U+${c.charCodeAt(0).toString(16).padStart(4, "0").toUpperCase()}`;

const envName = new RegExp(ENV_NAME_PATTERN);

/** Proxmox's `env` option: NUL-separated NAME=value; control characters other than tab refused. */
export function encodeProxmoxEnv(env: GatewayEnv): string {
  return env
    .map(([name, value]) => {
      if (!envName.test(name)) throw new EnvValueError(JSON.stringify(name), "has an invalid name");
      const bad = FORBIDDEN_ENV_VALUE_CHARS.exec(value);
      if (bad) throw new EnvValueError(name, `contains ${describeChar(bad[0])}`);
      return `${name}=${value}`;
    })
    .join("\0");
}

/** The inverse, for reading a container's config back. */
export function decodeProxmoxEnv(encoded: string): GatewayEnv {
  if (encoded === "") return [];
  return encoded.split("\0").map((entry) => {
    const at = entry.indexOf("=");
    return at < 0 ? ([entry, ""] as const) : ([entry.slice(0, at), entry.slice(at + 1)] as const);
  });
}
