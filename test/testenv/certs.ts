// Certificates and keys for a throwaway control plane, made with openssl:
// a CA, the API server's serving certificate, an admin client certificate in
// group system:masters, and the service-account signing key pair.
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ControlPlaneCerts {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  adminCert: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

const openssl = (args: string[], cwd: string) => execFileSync("openssl", args, { cwd, stdio: "pipe" });
// EC keys: generated in milliseconds, unlike RSA.
const EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const CLIENT = "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n";

/** Issues `NAME.crt`/`NAME.key` in `dir`, signed by the CA there. */
export function issueCertificate(dir: string, name: string, subject: string, extensions = CLIENT) {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(["req", ...EC_KEY, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], dir);
  openssl(
    ["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial"].concat([
      "-days",
      "2",
      "-out",
      `${name}.crt`,
      "-extfile",
      `${name}.ext`,
    ]),
    dir,
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

export function makeCerts(dir: string): ControlPlaneCerts {
  openssl(
    [
      "req",
      "-x509",
      ...EC_KEY,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "2",
      "-subj",
      "/CN=testenv-ca",
    ],
    dir,
  );
  const server = issueCertificate(
    dir,
    "apiserver",
    "/CN=kube-apiserver",
    "subjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default\n" +
      "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n",
  );
  const admin = issueCertificate(dir, "admin", "/O=system:masters/CN=testenv-admin");
  openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", "sa.key"], dir);
  openssl(["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
  return {
    dir,
    caCert: join(dir, "ca.crt"),
    caKey: join(dir, "ca.key"),
    serverCert: server.cert,
    serverKey: server.key,
    adminCert: admin.cert,
    adminKey: admin.key,
    saKey: join(dir, "sa.key"),
    saPub: join(dir, "sa.pub"),
  };
}
