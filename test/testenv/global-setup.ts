// vitest global setup: one control plane and one PostgreSQL for the whole run.
// Test files share them (each uses its own namespace or rows); a test that
// must break the API server or the database starts its own.
import type { TestProject } from "vitest/node";
import { startEnvironment } from "./environment.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const { controlPlane, postgres, stop } = await startEnvironment();
  console.log(`test control plane ready in ${controlPlane.startupMs} ms at ${controlPlane.server}`);
  project.provide("kubeconfig", controlPlane.kubeconfigPath);
  project.provide("databaseUrl", postgres.url);
  process.env.KUBECONFIG = controlPlane.kubeconfigPath;
  return stop;
}
