// What the real gateway does instead of serving when it finds neither its
// required variables nor a `.env`: an interactive setup on stdin. In a
// container that means a process that prints a prompt and then exits 0 at
// once (stdin closed) or waits forever (stdin open), and never listens. The
// stand-in reproduces exactly that; it does not carry out the setup's dialogue.
import { hostname } from "node:os";
import { createInterface } from "node:readline";

/** Prints the prompt, then resolves when stdin ends. */
export function interactiveSetup(
  input: NodeJS.ReadableStream = process.stdin,
  output: NodeJS.WritableStream = process.stdout,
): Promise<void> {
  output.write("No .env file found.\n\nLDAP gateway configuration setup\n\n");
  const rl = createInterface({ input, output });
  return new Promise((resolve) => {
    rl.once("close", () => resolve());
    rl.question(`Server hostname [${hostname()}]: `, () => undefined);
  });
}
