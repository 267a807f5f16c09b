/** A self-signed certificate for the API, made at start (never written to the repo). */
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import { selfSignedCert } from "../support/self-signed-cert.js";

export interface Cert {
  cert: string;
  key: string;
  /** SHA-256 fingerprint as Proxmox shows it (colon-separated hex). */
  fingerprint: string;
}

/** `host`: the address or name clients connect to (put in the subjectAltName). */
export async function makeCert(commonName: string, host: string): Promise<Cert> {
  const san = `${isIP(host) ? "IP" : "DNS"}:${host},DNS:localhost,DNS:${commonName}`;
  const { cert, key } = await selfSignedCert(commonName, san, 30);
  return { cert, key, fingerprint: new X509Certificate(cert).fingerprint256 };
}
