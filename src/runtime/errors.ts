/**
 * A failure that retrying cannot fix (an invalid spec, a refused credential):
 * the key gets no backoff retry; it runs again when the object changes, or on
 * the informer's periodic resync.
 */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

export function isTerminal(error: unknown): boolean {
  return error instanceof TerminalError;
}

/** The HTTP status of a client-node ApiException or a watch error, if any. */
export function httpStatus(error: unknown): number | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, statusCode } = error as { code?: unknown; statusCode?: unknown };
  if (typeof code === "number") return code;
  if (typeof statusCode === "number") return statusCode;
  return undefined;
}

export function isConflict(error: unknown): boolean {
  return httpStatus(error) === 409;
}

export function isNotFound(error: unknown): boolean {
  return httpStatus(error) === 404;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The engine's own fault types: what a Go reconciler would hit as a panic (nil dereference, bad index). */
const faultTypes = [TypeError, ReferenceError, RangeError, SyntaxError, EvalError, URIError];

/**
 * A fault in the reconciler's own code rather than a failure it reports,
 * counted as controller-runtime counts recovered panics. fetch() reports a
 * network failure as a TypeError carrying the network error as its cause:
 * that is an ordinary failure, not a fault.
 */
export function isPanic(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof TypeError && error.cause !== undefined) return false;
  return faultTypes.some((type) => error.constructor === type);
}
