// Password hashes in the formats the gateway accepts (crypt strings starting
// with `$`) and two it must refuse, for seeding the management database.
import { randomBytes, createHash } from "node:crypto";
import bcrypt from "bcryptjs";
import { argon2id } from "hash-wasm";
import { encrypt as shaCrypt } from "unixcrypt";

export type HashKind = "argon2id" | "sha512crypt" | "sha256crypt" | "bcrypt" | "plain" | "ssha";

const CRYPT_SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function cryptSalt(length: number): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const b of bytes) out += CRYPT_SALT_CHARS[b % CRYPT_SALT_CHARS.length];
  return out;
}

export async function hashPassword(kind: HashKind, password: string): Promise<string> {
  switch (kind) {
    case "argon2id":
      // The manager's argon2 defaults (node-argon2): m=65536 is slow in WASM,
      // and the cost parameters are read from the hash when verifying anyway.
      return argon2id({
        password,
        salt: randomBytes(16),
        parallelism: 1,
        iterations: 2,
        memorySize: 4096,
        hashLength: 32,
        outputType: "encoded",
      });
    case "sha512crypt":
      return shaCrypt(password, `$6$${cryptSalt(16)}`);
    case "sha256crypt":
      return shaCrypt(password, `$5$${cryptSalt(16)}`);
    case "bcrypt":
      return bcrypt.hashSync(password, 8);
    case "plain":
      return password;
    case "ssha": {
      const salt = randomBytes(8);
      const digest = createHash("sha1").update(password).update(salt).digest();
      return `{SSHA}${Buffer.concat([digest, salt]).toString("base64")}`;
    }
  }
}
