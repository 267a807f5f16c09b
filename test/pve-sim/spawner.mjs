// Starts container processes for the simulator, which talks to it in JSON lines over stdin/stdout.
// Forking from this small process is cheaper than from the simulator and does not stall its event loop,
// and when the simulator goes away (stdin closes, even after a SIGKILL) every container is killed.
//   in:  {"op":"spawn","id":N,"argv":[...],"env":{...},"cwd":"..."}
//   out: {"ev":"spawned","id":N,"pid":P} | {"ev":"error","id":N,"message":"..."}
//        {"ev":"out","id":N,"line":"..."} | {"ev":"exit","id":N,"code":C,"signal":S}
import { spawn } from "node:child_process";
import process from "node:process";
import { createInterface } from "node:readline";

const children = new Map();
const send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");

function killAll() {
  for (const pid of children.values()) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}

function start({ id, argv, env, cwd }) {
  let child;
  try {
    child = spawn(argv[0], argv.slice(1), { env, cwd, stdio: ["ignore", "pipe", "pipe"], detached: true });
  } catch (e) {
    send({ ev: "error", id, message: String(e && e.message) });
    return;
  }
  child.once("error", (e) => send({ ev: "error", id, message: e.message }));
  child.once("spawn", () => {
    children.set(id, child.pid);
    send({ ev: "spawned", id, pid: child.pid });
  });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on("line", (line) =>
      send({ ev: "out", id, line: line.slice(0, 2000) }),
    );
  }
  child.once("exit", (code, signal) => {
    // The group may still hold grandchildren.
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      /* gone */
    }
    children.delete(id);
    send({ ev: "exit", id, code, signal });
  });
}

createInterface({ input: process.stdin })
  .on("line", (line) => {
    const msg = JSON.parse(line);
    if (msg.op === "spawn") start(msg);
  })
  .on("close", () => {
    killAll();
    process.exit(0);
  });
for (const sig of ["SIGTERM", "SIGINT", "SIGHUP"])
  process.on(sig, () => {
    killAll();
    process.exit(0);
  });
process.stdout.on("error", () => {
  killAll();
  process.exit(0);
});
