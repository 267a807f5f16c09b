// Checks a bind password against the `password` column. Like the real
// gateway, only crypt-style hashes starting with `$` are accepted; plain
// text and LDAP's {SSHA} are refused outright.
import { createHash, timingSafeEqual } from "node:crypto";
import bcrypt from "bcryptjs";
import { argon2Verify } from "hash-wasm";
import { verify as shaCryptVerify } from "unixcrypt";

const ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function to64(value: number, n: number): string {
  let out = "";
  for (let v = value; n > 0; n--, v >>= 6) out += ITOA64[v & 0x3f];
  return out;
}

/** The FreeBSD MD5 crypt (`$1$`), which the real gateway's crypt library accepts too. */
export function md5Crypt(password: string, hash: string): string {
  const pw = Buffer.from(password, "utf8");
  const salt = Buffer.from(hash.slice(3).split("$")[0]!.slice(0, 8), "utf8");
  const magic = Buffer.from("$1$");
  const md5 = (...parts: Buffer[]): Buffer => {
    const h = createHash("md5");
    for (const p of parts) h.update(p);
    return h.digest();
  };
  const alt = md5(pw, salt, pw);
  const parts: Buffer[] = [pw, magic, salt];
  for (let pl = pw.length; pl > 0; pl -= 16) parts.push(alt.subarray(0, Math.min(pl, 16)));
  for (let i = pw.length; i; i >>= 1) parts.push(i & 1 ? Buffer.from([0]) : pw.subarray(0, 1));
  let fin = md5(...parts);
  for (let i = 0; i < 1000; i++) {
    const p: Buffer[] = [];
    p.push(i & 1 ? pw : fin);
    if (i % 3) p.push(salt);
    if (i % 7) p.push(pw);
    p.push(i & 1 ? fin : pw);
    fin = md5(...p);
  }
  const f = (i: number): number => fin[i]!;
  const enc =
    to64((f(0) << 16) | (f(6) << 8) | f(12), 4) +
    to64((f(1) << 16) | (f(7) << 8) | f(13), 4) +
    to64((f(2) << 16) | (f(8) << 8) | f(14), 4) +
    to64((f(3) << 16) | (f(9) << 8) | f(15), 4) +
    to64((f(4) << 16) | (f(10) << 8) | f(5), 4) +
    to64(f(11), 2);
  return `$1$${salt.toString()}$${enc}`;
}

function equalStrings(a: string, b: string): boolean {
  const ab = Buffer.from(a);
  const bb = Buffer.from(b);
  return ab.length === bb.length && timingSafeEqual(ab, bb);
}

export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  if (!stored || !stored.startsWith("$")) return false;
  try {
    if (/^\$argon2(id|i|d)\$/.test(stored)) return await argon2Verify({ password, hash: stored });
    if (/^\$2[aby]\$/.test(stored)) return bcrypt.compareSync(password, stored.replace(/^\$2y\$/, "$2b$"));
    if (/^\$[56]\$/.test(stored)) return shaCryptVerify(password, stored);
    if (stored.startsWith("$1$")) return equalStrings(md5Crypt(password, stored), stored);
  } catch {
    // A malformed hash is a failed bind, not a crash.
    return false;
  }
  return false;
}
