// The LDAPS certificate: from LDAP_CERT_CONTENT/LDAP_KEY_CONTENT or the
// *_PATH variables, else a fresh self-signed one whose CN and only SAN are
// LDAP_COMMON_NAME (which is why clients must not verify it). The real
// gateway makes RSA-4096 and keeps it in ./cert; the stand-in makes a P-256
// key in memory because RSA generation would push its start past a second.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { GatewayConfig } from "./config.js";

const run = promisify(execFile);

export async function loadOrCreateCert(cfg: GatewayConfig): Promise<{ cert: string; key: string }> {
  if (cfg.cert.content) return cfg.cert.content;
  if (cfg.cert.path) {
    return { cert: readFileSync(cfg.cert.path.cert, "utf8"), key: readFileSync(cfg.cert.path.key, "utf8") };
  }
  const cn = cfg.commonName.replace(/[/,=+\\]/g, "_");
  // Files rather than /dev/stdout: node's stdio pipes are sockets, which
  // openssl cannot open by path.
  const dir = mkdtempSync(path.join(os.tmpdir(), "ldap-gateway-cert-"));
  try {
    await run("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "365",
      "-subj",
      `/CN=${cn}`,
      "-addext",
      `subjectAltName=DNS:${cn}`,
      "-keyout",
      path.join(dir, "key.pem"),
      "-out",
      path.join(dir, "cert.pem"),
    ]);
    return {
      cert: readFileSync(path.join(dir, "cert.pem"), "utf8"),
      key: readFileSync(path.join(dir, "key.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
