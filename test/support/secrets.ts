// Secrets as the API server returns them (base64 data), and the gateway
// secrets read from one the way the operator reads them.
import type { SecretSource } from "../../src/api/secrets.js";
import { gatewaySecrets, type GatewaySecrets } from "../../src/gateway/env.js";
import { MINIMAL_SPEC } from "./spec.js";

export function secretOf(data: Record<string, string>, name = "manager-db", namespace = "ns"): SecretSource {
  const encoded = Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString("base64")]);
  return { metadata: { name, namespace }, data: Object.fromEntries(encoded) };
}

/** GatewaySecrets for a database URI, through the same path as a Secret the operator reads. */
export function secretsWithUri(sqlUri: string): GatewaySecrets {
  return gatewaySecrets(
    { database: { uriSecretRef: { ...MINIMAL_SPEC.database.uriSecretRef, key: "uri" } } },
    secretOf({ uri: sqlUri }),
  );
}
