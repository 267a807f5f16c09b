// The `.env` file the real gateway reads from its working directory (with
// dotenv: variables already in the environment win). Its presence alone also
// keeps the gateway from starting the interactive setup.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

/** `KEY=value` lines; `#` comments, blank lines and an `export ` prefix are allowed; matching quotes are removed. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim().replace(/^export\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    const quoted = /^(['"]).*\1$/.exec(value);
    if (quoted) value = value.slice(1, -1);
    else value = value.replace(/\s+#.*$/, "");
    out[key] = value;
  }
  return out;
}

/** The environment as the gateway sees it from `dir`, and whether a `.env` was there. */
export function environmentWithDotEnv(
  dir: string,
  env: NodeJS.ProcessEnv,
): { env: NodeJS.ProcessEnv; hasDotEnv: boolean } {
  const file = path.join(dir, ".env");
  if (!existsSync(file)) return { env, hasDotEnv: false };
  return { env: { ...parseDotEnv(readFileSync(file, "utf8")), ...env }, hasDotEnv: true };
}
