// The LDAPS certificate: from LDAP_CERT_CONTENT/LDAP_KEY_CONTENT or the
// *_PATH variables, else a fresh self-signed one whose CN and only SAN are
// LDAP_COMMON_NAME (which is why clients must not verify it). The real
// gateway makes RSA-4096 and keeps it in ./cert; the stand-in makes a P-256
// key in memory because RSA generation would push its start past a second.
import { readFileSync } from "node:fs";
import { selfSignedCert } from "../support/self-signed-cert.js";
import type { GatewayConfig } from "./config.js";

export async function loadOrCreateCert(cfg: GatewayConfig): Promise<{ cert: string; key: string }> {
  if (cfg.cert.content) return cfg.cert.content;
  if (cfg.cert.path) {
    return { cert: readFileSync(cfg.cert.path.cert, "utf8"), key: readFileSync(cfg.cert.path.key, "utf8") };
  }
  const cn = cfg.commonName.replace(/[/,=+\\]/g, "_");
  return selfSignedCert(cn, `DNS:${cn}`, 365);
}
