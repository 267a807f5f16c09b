// Values the operator reads from Kubernetes Secrets: the Proxmox API token,
// the CA bundle and the database URI. Every one goes through secretValue, so
// they are all decoded and trimmed the same way.

/** The part of a Secret (core/v1) that is read: `data` holds base64 text, as the API returns it. */
export interface SecretSource {
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
}

declare const fromSecret: unique symbol;
/** A value read through secretValue: decoded, at most one trailing line end removed. */
export type SecretValue = string & { readonly [fromSecret]: true };

/** A Secret key that cannot be used. The message names the Secret and the key, never a value. */
export class SecretValueError extends Error {
  override name = "SecretValueError";
  constructor(
    readonly secret: string,
    readonly key: string,
    what: string,
  ) {
    super(`key ${JSON.stringify(key)} of Secret ${secret} ${what}`);
  }
}

/**
 * `kubectl create secret --from-file` keeps the file's final newline, and
 * Proxmox refuses a newline in a container's env; one trailing "\n" or "\r\n"
 * is never part of a token, a URI or a PEM bundle. Only that one line end goes:
 * other whitespace may be part of the value.
 */
export function trimLineEnd(text: string): string {
  return text.replace(/\r?\n$/, "");
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** The value under `key`, decoded from base64 and UTF-8, without its trailing line end. */
export function secretValue(secret: SecretSource, key: string): SecretValue {
  const name = secretName(secret);
  const encoded = secret.data?.[key];
  if (encoded === undefined) throw new SecretValueError(name, key, "does not exist");
  let text: string;
  try {
    text = utf8.decode(Buffer.from(encoded, "base64"));
  } catch {
    throw new SecretValueError(name, key, "is not UTF-8 text");
  }
  const value = trimLineEnd(text);
  if (value === "") throw new SecretValueError(name, key, "is empty");
  return value as SecretValue;
}

const secretName = (secret: SecretSource) => {
  const { namespace, name = "(unnamed)" } = secret.metadata ?? {};
  return namespace ? `${namespace}/${name}` : name;
};
