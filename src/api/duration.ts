// Durations of the spec ("45s", "1h30m", "1.5h", "2147483647ms"), as
// milliseconds. The schema's pattern (schema-kit.ts DURATION_PATTERN) has
// already refused anything else; this reads what it accepted.
import { DURATION_PATTERN } from "./schema-kit.js";

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
const FORMAT = new RegExp(DURATION_PATTERN);

/** Milliseconds, rounded; throws on a text the schema would refuse. */
export function durationMs(text: string): number {
  if (!FORMAT.test(text)) throw new Error(`not a duration: ${JSON.stringify(text)}`);
  let total = 0;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
    total += Number(value) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return Math.round(total);
}
