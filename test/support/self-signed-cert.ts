// A self-signed P-256 certificate made with the machine's openssl, for the
// test servers (simulator API, gateway stand-in). EC keys take milliseconds,
// RSA would add a second to every start. Nothing is written to the repository.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface CertAndKey {
  cert: string;
  key: string;
}

/** `subjectAltName` as openssl writes it, e.g. `DNS:ldap1` or `IP:127.0.0.1,DNS:localhost`. */
export async function selfSignedCert(
  commonName: string,
  subjectAltName: string,
  days: number,
): Promise<CertAndKey> {
  // Files rather than /dev/stdout: node's stdio pipes are sockets, which openssl cannot open by path.
  const dir = mkdtempSync(join(tmpdir(), "self-signed-"));
  try {
    const [keyFile, certFile] = [join(dir, "key.pem"), join(dir, "cert.pem")];
    await execFileAsync("openssl", [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...["-days", String(days), "-subj", `/CN=${commonName}`, "-addext", `subjectAltName=${subjectAltName}`],
      ...["-keyout", keyFile, "-out", certFile],
    ]);
    return { cert: readFileSync(certFile, "utf8"), key: readFileSync(keyFile, "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
