// The LdapPair's Secrets, read from the API server: the Proxmox API token,
// the optional CA bundle of the Proxmox API and the database URI. Every value
// goes through secretValue (decoded, one trailing line end dropped); the
// sensitive ones (the token secret, the database URI) are registered with the
// logger's redactor before anything else sees them. The token id and the CA
// bundle are not secret, and a 401 or 403 must be able to name the token id.
//
// A Secret that cannot be read becomes a Problem that names the Secret and
// the key, never a value: the reconciler turns it into a condition.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { LdapPairSpec } from "../api/ldappair.js";
import { secretValue, SecretValueError, type SecretSource, type SecretValue } from "../api/secrets.js";
import type { Problem } from "../reconcile/model.js";
import { errorMessage, httpStatus } from "../runtime/errors.js";

/** The values the shell needs; they never enter the Observation or the status. */
export interface PairSecrets {
  tokenId: SecretValue;
  tokenSecret: SecretValue;
  /** PEM bundle that signed the Proxmox API certificate, when spec.proxmox.tls.caSecretRef is set. */
  ca?: SecretValue;
  sqlUri: SecretValue;
}

export type SecretsRead = { ok: true; values: PairSecrets } | { ok: false; problem: Problem };

/** Reads one Secret; undefined when it does not exist. */
export type SecretReader = (namespace: string, name: string) => Promise<SecretSource | undefined>;

/** A reader over the core API (GET, never a list or a watch: RBAC can name the Secrets). */
export function apiSecretReader(kubeConfig: KubeConfig): SecretReader {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async (namespace, name) => {
    try {
      return (await core.readNamespacedSecret({ name, namespace })) as SecretSource;
    } catch (err) {
      if (httpStatus(err) === 404) return undefined;
      throw err;
    }
  };
}

/** One key the pair needs: which Secret, which key, and what it is for (in messages). */
interface Wanted {
  field: keyof PairSecrets;
  secret: string;
  key: string;
  what: string;
  /** Registered with the redactor: never in a log line, event, status or message. */
  sensitive: boolean;
}

function wantedKeys(spec: LdapPairSpec): Wanted[] {
  const token = spec.proxmox.credentialsSecretRef;
  const ca = spec.proxmox.tls.caSecretRef;
  const uri = spec.database.uriSecretRef;
  return [
    {
      field: "tokenId",
      secret: token.name,
      key: token.tokenIdKey,
      what: "the Proxmox API token id",
      sensitive: false,
    },
    {
      field: "tokenSecret",
      secret: token.name,
      key: token.tokenSecretKey,
      what: "the Proxmox API token secret",
      sensitive: true,
    },
    ...(ca
      ? [
          {
            field: "ca" as const,
            secret: ca.name,
            key: ca.key,
            what: "the Proxmox CA bundle",
            sensitive: false,
          },
        ]
      : []),
    { field: "sqlUri", secret: uri.name, key: uri.key, what: "the database URI (SQL_URI)", sensitive: true },
  ];
}

const problem = (reason: string, message: string, transient: boolean): { ok: false; problem: Problem } => ({
  ok: false,
  problem: { reason, message, transient },
});

/**
 * Reads every value the pair needs, each Secret once. `register` sees each
 * sensitive value as soon as it is decoded, so no later log line or message can carry it.
 */
export async function readPairSecrets(
  read: SecretReader,
  namespace: string,
  spec: LdapPairSpec,
  register: (value: string) => void,
): Promise<SecretsRead> {
  const wanted = wantedKeys(spec);
  const secrets = new Map<string, SecretSource>();
  for (const name of new Set(wanted.map((w) => w.secret))) {
    let secret: SecretSource | undefined;
    try {
      secret = await read(namespace, name);
    } catch (err) {
      return readFailure(namespace, name, err);
    }
    if (!secret) {
      const uses = wanted.filter((w) => w.secret === name).map((w) => w.what);
      return problem(
        "SecretNotFound",
        `Secret ${namespace}/${name} (${uses.join(", ")}) does not exist`,
        false,
      );
    }
    secrets.set(name, { ...secret, metadata: { name, namespace } });
  }
  const values: Partial<Record<keyof PairSecrets, SecretValue>> = {};
  for (const w of wanted) {
    const source = secrets.get(w.secret)!;
    if (source.data?.[w.key] === undefined)
      return problem(
        "SecretKeyMissing",
        `Secret ${namespace}/${w.secret} has no key ${JSON.stringify(w.key)} (${w.what})`,
        false,
      );
    try {
      values[w.field] = secretValue(source, w.key);
    } catch (err) {
      if (!(err instanceof SecretValueError)) throw err;
      return problem("SecretValueInvalid", `${err.message} (${w.what})`, false);
    }
    if (w.sensitive) register(values[w.field]!);
  }
  // Whether the URI is well-formed is the desired state's judgement (desired.ts): one place, one reason.
  return { ok: true, values: values as PairSecrets };
}

function readFailure(namespace: string, name: string, err: unknown): { ok: false; problem: Problem } {
  const status = httpStatus(err);
  if (status === 401 || status === 403)
    return problem(
      "SecretForbidden",
      `the operator may not read Secret ${namespace}/${name} (HTTP ${status}): grant it get on that Secret`,
      false,
    );
  // The API server's own text can quote a request but never a Secret's data.
  const detail = status === undefined ? errorMessage(err) : `HTTP ${status}`;
  return problem("SecretReadFailed", `reading Secret ${namespace}/${name} failed: ${detail}`, true);
}
