// Line logger with the gateway's levels. Callers never pass secrets: bind
// passwords and the SQL URI are not logged anywhere.

const LEVELS = ["error", "warn", "info", "debug"] as const;
export type Level = (typeof LEVELS)[number];

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

export function createLogger(level: string, out: NodeJS.WritableStream = process.stdout): Logger {
  const max = Math.max(
    0,
    LEVELS.indexOf((LEVELS as readonly string[]).includes(level) ? (level as Level) : "info"),
  );
  const write = (l: Level, msg: string): void => {
    if (LEVELS.indexOf(l) <= max) out.write(`${new Date().toISOString()} ${l.toUpperCase()} ${msg}\n`);
  };
  return {
    error: (m) => write("error", m),
    warn: (m) => write("warn", m),
    info: (m) => write("info", m),
    debug: (m) => write("debug", m),
  };
}
