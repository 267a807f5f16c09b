// How the test world starts an LDAP gateway: the stand-in's bundle, or another
// gateway build (a checkout of the real one, say) named by
// PVE_SIM_GATEWAY_COMMAND, a JSON argv such as
// `["node", "/src/LDAPServer/server/index.js"]`. The simulator's catalog entry
// for the gateway image (test/pve-sim/ldap-site.ts) and the test harness
// (harness.ts) both start gateways through gatewayCommand().
import { gatewayBundle } from "./bundle.js";

export const GATEWAY_COMMAND_VAR = "PVE_SIM_GATEWAY_COMMAND";

/** The argv in PVE_SIM_GATEWAY_COMMAND, or undefined when it is unset or empty. */
export function parseGatewayCommand(raw: string | undefined): string[] | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const example = `e.g. ["node","/src/LDAPServer/server/index.js"]`;
  let argv: unknown;
  try {
    argv = JSON.parse(raw);
  } catch (err) {
    throw new Error(`${GATEWAY_COMMAND_VAR} is not JSON (${(err as Error).message}); ${example}`);
  }
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string" && a !== "")) {
    throw new Error(`${GATEWAY_COMMAND_VAR} must be a JSON array of non-empty strings (an argv); ${example}`);
  }
  return argv as string[];
}

/** A start-up scale as an environment variable gives it: a number >= 0, or undefined when unset. */
export function parseStartupScale(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined || raw.trim() === "") return undefined;
  const scale = Number(raw);
  if (!Number.isFinite(scale) || scale < 0) throw new Error(`${name} must be a number >= 0, got '${raw}'`);
  return scale;
}

export interface GatewayCommandOptions {
  /** Where PVE_SIM_GATEWAY_COMMAND is read (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** The stand-in's start-up time as a share of the real gateway's (startup.ts); another build ignores it. */
  startupScale?: number;
}

/** The argv that starts a gateway: another build when PVE_SIM_GATEWAY_COMMAND names one, else the stand-in. */
export async function gatewayCommand(opts: GatewayCommandOptions = {}): Promise<string[]> {
  const other = parseGatewayCommand((opts.env ?? process.env)[GATEWAY_COMMAND_VAR]);
  if (other) return other;
  const args = opts.startupScale === undefined ? [] : [`--startup-scale=${opts.startupScale}`];
  return [process.execPath, await gatewayBundle(), ...args];
}
