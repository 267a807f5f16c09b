// The LDAPS certificate: from LDAP_CERT_CONTENT/LDAP_KEY_CONTENT or the
// *_PATH variables, else a self-signed one whose CN and only SAN are
// LDAP_COMMON_NAME (which is why clients must not verify it). Like the real
// gateway, the self-signed one is kept in ./cert of the working directory and
// reused by later starts, so a container's first start differs from the next.
// The key is P-256 where the real one is RSA-4096: the start-up pacing
// (startup.ts) stands in for the generation time without burning the CPU.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { selfSignedCert } from "../support/self-signed-cert.js";
import type { GatewayConfig } from "./config.js";

export interface ServerCert {
  cert: string;
  key: string;
  /** Whether this start made the certificate (the real gateway's slow first start). */
  made: boolean;
}

/** Where the self-signed certificate lives under a working directory. */
export function certFiles(workDir: string): { dir: string; cert: string; key: string } {
  const dir = path.join(workDir, "cert");
  return { dir, cert: path.join(dir, "server.crt"), key: path.join(dir, "server.key") };
}

export async function loadOrCreateCert(cfg: GatewayConfig, workDir: string): Promise<ServerCert> {
  if (cfg.cert.content) return { ...cfg.cert.content, made: false };
  if (cfg.cert.path) {
    return {
      cert: readFileSync(cfg.cert.path.cert, "utf8"),
      key: readFileSync(cfg.cert.path.key, "utf8"),
      made: false,
    };
  }
  const files = certFiles(workDir);
  if (existsSync(files.cert) && existsSync(files.key)) {
    return { cert: readFileSync(files.cert, "utf8"), key: readFileSync(files.key, "utf8"), made: false };
  }
  const cn = cfg.commonName.replace(/[/,=+\\]/g, "_");
  const made = await selfSignedCert(cn, `DNS:${cn}`, 365);
  mkdirSync(files.dir, { recursive: true });
  writeFileSync(files.key, made.key, { mode: 0o600 });
  writeFileSync(files.cert, made.cert);
  return { ...made, made: true };
}
