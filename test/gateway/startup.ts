// How long the stand-in takes to answer LDAPS after its process starts: as
// long as the real gateway (reference: 0.8-1.3 s when its certificate exists,
// 1.7-3.4 s on the first start, which makes an RSA-4096 one), so that
// rollouts measured against the simulator see realistic boots. Tests scale
// the time down with `--startup-scale` (0: as fast as the stand-in can).
import { ConfigError } from "./config.js";

/** Milliseconds from process start to listening, at scale 1. */
export const REAL_START_MS = { certificateKept: 1000, certificateMade: 2500 } as const;

/** How much longer to wait before listening, given the time the process has already spent. */
export function startupDelayMs(certificateMade: boolean, elapsedMs: number, scale: number): number {
  const target = certificateMade ? REAL_START_MS.certificateMade : REAL_START_MS.certificateKept;
  return Math.max(0, target * scale - elapsedMs);
}

/** `--startup-scale=N` or `--startup-scale N` in argv (default 1); a negative or non-numeric N is refused. */
export function startupScale(argv: readonly string[]): number {
  let raw: string | undefined;
  argv.forEach((arg, i) => {
    if (arg.startsWith("--startup-scale=")) raw = arg.slice("--startup-scale=".length);
    else if (arg === "--startup-scale") raw = argv[i + 1] ?? "";
  });
  if (raw === undefined) return 1;
  const scale = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(scale) || scale < 0) {
    throw new ConfigError(`--startup-scale must be a number >= 0, got '${raw}'`);
  }
  return scale;
}
