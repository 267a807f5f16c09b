import { defineConfig } from "vitest/config";

// Tests that need a running part (the control plane, PostgreSQL, the Proxmox
// simulator, the gateway stand-in or another spawned server) are integration
// tests: their directories, or a name ending in `.integration.test.ts`.
// Everything else is a unit test and runs without the global setup, in seconds.
const INTEGRATION = [
  "test/controlplane/**/*.test.ts",
  "test/failover-client/**/*.test.ts",
  "test/gateway/**/*.test.ts",
  "test/health/**/*.test.ts",
  "test/pve-sim/**/*.test.ts",
  "test/testenv/**/*.test.ts",
  "test/**/*.integration.test.ts",
];
// Pure tests that live beside the parts they describe.
const UNIT_BESIDE_INTEGRATION = ["test/pve-sim/realm-query.test.ts"];

/**
 * A directory's integration glob less the pure tests beside its parts, by name (`!(a|b).test.ts`): an
 * exclude cannot be re-included, so excluding the whole directory would leave them out of both projects.
 */
function withoutUnitTests(glob: string): string {
  if (!glob.endsWith("/**/*.test.ts")) return glob;
  const dir = glob.slice(0, -"**/*.test.ts".length);
  const names = UNIT_BESIDE_INTEGRATION.filter((file) => file.startsWith(dir)).map((file) =>
    file.slice(file.lastIndexOf("/") + 1, -".test.ts".length),
  );
  return names.length === 0 ? glob : `${dir}**/!(${names.join("|")}).test.ts`;
}

export default defineConfig({
  test: {
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: INTEGRATION.map(withoutUnitTests),
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: INTEGRATION,
          exclude: UNIT_BESIDE_INTEGRATION,
          // A real kube-apiserver + etcd and a real PostgreSQL for the whole run.
          globalSetup: ["test/testenv/global-setup.ts"],
        },
      },
    ],
  },
});
