import type { Writable } from "node:stream";
import winston from "winston";
import { redactor as defaultRedactor, type Redactor } from "./redact.js";

/** The key winston's transports write (triple-beam's MESSAGE). */
const MESSAGE = Symbol.for("message");

export type LogLevel = "error" | "warn" | "info" | "debug";

export interface LoggerOptions {
  level?: LogLevel;
  /** Where JSON lines go; stdout unless a test captures them. */
  stream?: Writable;
  redactor?: Redactor;
  base?: Record<string, unknown>;
}

/**
 * Builds each JSON line from a redacted copy of the entry, then passes the
 * finished line through the redactor again: a secret that reached the line by
 * a path the structural pass does not cover (an object key, such as a map
 * keyed by connection URI) is still caught before it is written.
 */
function jsonLines(redactor: Redactor) {
  return winston.format((info) => {
    const { level, message, ...fields } = info;
    // `logger.error(err)` hands winston the Error itself, whose stack and cause are not enumerable.
    const errorFields =
      info instanceof Error ? { errorName: info.name, stack: info.stack, cause: info.cause } : {};
    const record = redactor.redact({
      time: new Date().toISOString(),
      level,
      msg: message,
      ...errorFields,
      ...fields,
    }) as Record<string, unknown>;
    const line = redactor.redactJsonLine(JSON.stringify(record, jsonSafe));
    (info as Record<string | symbol, unknown>)[MESSAGE] = line;
    return info;
  })();
}

function jsonSafe(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

/** Each logger's redactor, so secrets registered for a logger protect exactly its lines. */
const redactors = new WeakMap<winston.Logger, Redactor>();

/** The redactor `logger` writes through; the process-wide one for a logger not made here. */
export function redactorOf(logger: winston.Logger): Redactor {
  return redactors.get(logger) ?? defaultRedactor;
}

export function createLogger(options: LoggerOptions = {}): winston.Logger {
  const redactor = options.redactor ?? defaultRedactor;
  const transport = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Stream({ stream: process.stdout });
  const logger = winston.createLogger({
    level: options.level ?? "info",
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    defaultMeta: options.base,
    format: jsonLines(redactor),
    transports: [transport],
  });
  redactors.set(logger, redactor);
  return logger;
}

export type { Logger } from "winston";
