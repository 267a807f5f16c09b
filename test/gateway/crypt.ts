// Checks a bind password against the `password` column. Like the real
// gateway, only these crypt-style hashes are accepted: argon2 (i, d, id),
// bcrypt `$2a$`/`$2b$`, sha256-crypt `$5$` and sha512-crypt `$6$`. PHP's
// bcrypt `$2y$`, md5-crypt `$1$`, plain text and LDAP's {SSHA} are refused
// even when the password matches.
import bcrypt from "bcryptjs";
import { argon2Verify } from "hash-wasm";
import { verify as shaCryptVerify } from "unixcrypt";

export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  if (!stored) return false;
  try {
    if (/^\$argon2(id|i|d)\$/.test(stored)) return await argon2Verify({ password, hash: stored });
    if (/^\$2[ab]\$/.test(stored)) return bcrypt.compareSync(password, stored);
    if (/^\$[56]\$/.test(stored)) return shaCryptVerify(password, stored);
  } catch {
    // A malformed hash is a failed bind, not a crash.
    return false;
  }
  return false;
}
