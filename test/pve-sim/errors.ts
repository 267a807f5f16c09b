/** An API error as pveproxy reports it: the HTTP status, the message (also the reason phrase) and, for 400, per-parameter errors. */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
  }
}

/** 400 "Parameter verification failed." with a message per parameter, as PVE::JSONSchema raises it. */
export function paramError(errors: Record<string, string>): PveError {
  return new PveError(400, "Parameter verification failed.", errors);
}

/** 403 as PVE::RPCEnvironment's raise_perm_exc words it: `Permission check failed (WHAT)`. */
export function permError(what: string): PveError {
  return new PveError(403, `Permission check failed (${what})`);
}

/** Most failures of the API are HTTP 500 with a plain text. */
export function fail(message: string): PveError {
  return new PveError(500, message);
}
