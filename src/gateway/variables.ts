// The LDAP gateway is configured by environment only. These are the variables
// the operator sets itself; users cannot override them through spec.extraEnv,
// because each one is either derived from the spec or relied upon by the
// operator (LDAPS on 0.0.0.0:636 is what the health gate, SSSD and the realm use).
export const OPERATOR_OWNED_ENV = [
  "DIRECTORY_BACKEND",
  "LDAP_COMMON_NAME",
  "LDAP_BASE_DN",
  "AUTH_BACKENDS",
  "NOTIFICATION_URL",
  "SQL_URI",
  "SQL_QUERY_ALL_USERS",
  "SQL_QUERY_ONE_USER",
  "SQL_QUERY_ALL_GROUPS",
  "SQL_QUERY_GROUPS_BY_MEMBER",
  "REQUIRE_AUTH_FOR_SEARCH",
  "PORT",
  "BIND_IP",
  "LDAP_UNENCRYPTED",
] as const;

export type OperatorOwnedEnv = (typeof OPERATOR_OWNED_ENV)[number];

/** POSIX-portable environment variable names. */
export const ENV_NAME_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$";

/**
 * Proxmox stores `env` NUL-separated and refuses control characters other
 * than tab in a value (pve-container's env format).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const FORBIDDEN_ENV_VALUE_CHARS = /[\u0000-\u0008\u000a-\u001f\u007f]/;
