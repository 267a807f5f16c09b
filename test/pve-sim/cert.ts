/** A self-signed certificate for the API, made at start with the machine's openssl (never written to the repo). */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Cert {
  cert: string;
  key: string;
  /** SHA-256 fingerprint as Proxmox shows it (colon-separated hex). */
  fingerprint: string;
}

/** `host`: the address or name clients connect to (put in the subjectAltName). */
export function makeCert(commonName: string, host: string): Cert {
  const dir = mkdtempSync(join(tmpdir(), "pve-sim-cert-"));
  try {
    const keyFile = join(dir, "key.pem");
    const certFile = join(dir, "cert.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "30",
        "-subj",
        `/CN=${commonName}`,
        "-addext",
        `subjectAltName=${isIP(host) ? "IP" : "DNS"}:${host},DNS:localhost,DNS:${commonName}`,
        "-keyout",
        keyFile,
        "-out",
        certFile,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    const cert = readFileSync(certFile, "utf8");
    return {
      cert,
      key: readFileSync(keyFile, "utf8"),
      fingerprint: new X509Certificate(cert).fingerprint256,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
