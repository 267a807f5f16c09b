// Small client-side helpers for the gateway tests: ldapts with certificate
// checks off (the gateway's certificate is self-signed) and OpenLDAP's
// ldapsearch, which shows entries that arrived before an error.
import { execFile } from "node:child_process";
import { Client } from "ldapts";

export function ldapClient(url: string, timeoutMs = 5000): Client {
  return new Client({
    url,
    timeout: timeoutMs,
    connectTimeout: timeoutMs,
    tlsOptions: { rejectUnauthorized: false },
  });
}

export interface LdapsearchResult {
  code: number;
  stdout: string;
  stderr: string;
  /** Values of "dn:" lines in order. */
  dns: string[];
}

/** Runs `ldapsearch -LLL -x` (Debian package ldap-utils) against url. */
export function ldapsearch(url: string, args: string[], timeoutSec = 10): Promise<LdapsearchResult> {
  return new Promise((resolve, reject) => {
    execFile(
      "ldapsearch",
      ["-LLL", "-x", "-o", "nettimeout=5", "-l", String(timeoutSec), "-H", url, ...args],
      { env: { ...process.env, LDAPTLS_REQCERT: "never" }, timeout: (timeoutSec + 5) * 1000 },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === "ENOENT") {
          reject(new Error("ldapsearch not found: install Debian's ldap-utils (apt-get install ldap-utils)"));
          return;
        }
        const code = err ? Number((err as { code?: unknown }).code ?? 1) : 0;
        const dns = stdout
          .split("\n")
          .filter((l) => l.startsWith("dn: "))
          .map((l) => l.slice(4));
        resolve({ code, stdout, stderr, dns });
      },
    );
  });
}
