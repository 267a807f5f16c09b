// Bundles the stand-in into one ESM file so that its start takes no longer
// than the real gateway's (about a second, see startup.ts); compiling the
// TypeScript with tsx on every start takes several seconds on a loaded
// machine. The bundle is cached by the hash of the sources.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");

function sourceHash(): string {
  const h = createHash("sha256");
  for (const f of readdirSync(here).sort()) {
    if (f.endsWith(".ts") && !f.endsWith(".test.ts")) h.update(f).update(readFileSync(path.join(here, f)));
  }
  // The one module it imports from outside this folder.
  h.update(readFileSync(path.join(repoRoot, "test", "support", "self-signed-cert.ts")));
  h.update(readFileSync(path.join(repoRoot, "package-lock.json")));
  return h.digest("hex").slice(0, 16);
}

let pending: Promise<string> | undefined;

/** Path of an up-to-date bundle of test/gateway/main.ts; builds it when missing. */
export function gatewayBundle(): Promise<string> {
  pending ??= (async () => {
    const dir = path.join(repoRoot, "node_modules", ".cache", "ldap-gateway-standin");
    const out = path.join(dir, `gateway-${sourceHash()}.mjs`);
    if (existsSync(out)) return out;
    mkdirSync(dir, { recursive: true });
    const tmp = `${out}.${process.pid}.tmp`;
    await build({
      entryPoints: [path.join(here, "main.ts")],
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      outfile: tmp,
      // Dependencies stay in node_modules and load through Node itself:
      // ldapjs assigns to getter-only properties, which sloppy-mode CommonJS
      // ignores but any bundled (strict) copy turns into exceptions. The
      // bundle lives under node_modules/.cache so they resolve from there.
      packages: "external",
      logLevel: "warning",
    });
    renameSync(tmp, out); // atomic: parallel test files may build at once
    return out;
  })();
  return pending;
}
