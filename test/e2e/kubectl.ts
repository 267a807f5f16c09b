// The real kubectl against the world's control plane, always asynchronous:
// the simulator and the site DNS run in the caller's event loop, so a
// blocking call would stop the very servers the operator is talking to.
import { execFile } from "node:child_process";

export interface KubectlResult {
  stdout: string;
  stderr: string;
}

export class KubectlError extends Error {
  override readonly name = "KubectlError";
  constructor(
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`kubectl ${args.join(" ")} failed (exit ${exitCode ?? "signal"}): ${stderr.trim()}`);
  }
}

export interface Kubectl {
  /** `kubectl --kubeconfig K --namespace N ...args`; resolves with stdout, rejects with a KubectlError. */
  (...args: string[]): Promise<string>;
  /** The same with `input` on stdin (for `apply -f -`). */
  withInput(input: string, ...args: string[]): Promise<string>;
}

export function kubectlFor(kubeconfig: string, namespace: string, timeoutMs = 120_000): Kubectl {
  const run = (input: string | undefined, args: string[]): Promise<string> =>
    new Promise((resolve, reject) => {
      const full = ["--kubeconfig", kubeconfig, "--namespace", namespace, ...args];
      const child = execFile(
        "kubectl",
        full,
        { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs },
        (error, stdout, stderr) => {
          if (error) reject(new KubectlError(args, child.exitCode, stderr || error.message));
          else resolve(stdout);
        },
      );
      child.stdin?.end(input ?? "");
    });
  const kubectl = ((...args: string[]) => run(undefined, args)) as Kubectl;
  kubectl.withInput = (input, ...args) => run(input, args);
  return kubectl;
}
