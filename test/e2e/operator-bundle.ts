// src/main.ts bundled into one ESM file (our code only; packages stay
// imports), so each start of the operator takes a plain `node` start instead
// of tsx compiling every module again: the crash test restarts it at every
// step of a rollout, and the seconds tsx spends would outlast the steps.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { build, stop } from "esbuild";

let bundled: Promise<string> | undefined;

/** The bundle's path, built once per test process beside node_modules, so its imports resolve. */
export function operatorBundle(root: string): Promise<string> {
  bundled ??= (async () => {
    const outfile = join(root, "node_modules", ".cache", "ldappair-operator", `operator-${process.pid}.mjs`);
    // esbuild's service would outlive the build as a child process: stopped once the bundle is written.
    await build({
      entryPoints: [join(root, "src", "main.ts")],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      packages: "external",
      sourcemap: "inline",
      logLevel: "warning",
    }).finally(() => stop());
    process.once("exit", () => rmSync(outfile, { force: true }));
    return outfile;
  })();
  return bundled;
}
