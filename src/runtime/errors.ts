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
