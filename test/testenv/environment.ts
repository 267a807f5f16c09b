// The control plane and PostgreSQL started together; if one fails to start,
// the other is stopped before the error is thrown.
import { startControlPlane, type ControlPlane } from "./controlplane.js";
import { startPostgres, type TestPostgres } from "./postgres.js";

export interface TestEnvironment {
  controlPlane: ControlPlane;
  postgres: TestPostgres;
  stop(): Promise<void>;
}

export async function startEnvironment(): Promise<TestEnvironment> {
  const [controlPlane, postgres] = await Promise.allSettled([startControlPlane(), startPostgres()]);
  if (controlPlane.status === "rejected" || postgres.status === "rejected") {
    await Promise.all(
      [controlPlane, postgres].map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)),
    );
    throw controlPlane.status === "rejected"
      ? controlPlane.reason
      : (postgres as PromiseRejectedResult).reason;
  }
  return {
    controlPlane: controlPlane.value,
    postgres: postgres.value,
    stop: async () => {
      await Promise.all([controlPlane.value.stop(), postgres.value.stop()]);
    },
  };
}
