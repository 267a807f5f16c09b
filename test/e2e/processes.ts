// Which processes a world left behind, read from `ps` and /proc: the
// descendants of a process, and every process (orphans included, whoever
// their parent is now) whose command line names one of the world's paths or
// whose environment carries one of its markers. Zombies count as gone: they
// hold nothing, and where PID 1 does not reap orphans they would linger.
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";

export interface ProcessInfo {
  pid: number;
  ppid: number;
  args: string;
}

export interface WorldMarkers {
  /** Substrings of a command line: the world's directories. */
  paths: string[];
  /** Prefixes of an environment entry, e.g. `PVE_SIM_ADDRESS=127.42.`. */
  env: string[];
}

/** Every live process but zombies, from `ps -eo pid,ppid,stat,args`. */
export function listProcesses(): Promise<ProcessInfo[]> {
  return new Promise((resolve, reject) => {
    execFile("ps", ["-eo", "pid=,ppid=,stat=,args="], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout) => {
      if (err) return reject(err);
      resolve(parsePs(stdout));
    });
  });
}

export function parsePs(text: string): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line);
    if (!m || m[3]!.startsWith("Z")) continue;
    out.push({ pid: Number(m[1]), ppid: Number(m[2]), args: m[4]! });
  }
  return out;
}

/** The processes below `root` (children, their children, ...), not `root` itself. */
export function descendantsOf(all: readonly ProcessInfo[], root: number): ProcessInfo[] {
  const children = new Map<number, ProcessInfo[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const found: ProcessInfo[] = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child.pid);
    }
  }
  return found;
}

async function environOf(pid: number): Promise<string[]> {
  try {
    return (await readFile(`/proc/${pid}/environ`, "utf8")).split("\0");
  } catch {
    return []; // gone meanwhile, or not ours to read
  }
}

/** Live processes (but this one) that belong to the world by their command line or their environment. */
export async function processesMarkedBy(markers: WorldMarkers): Promise<ProcessInfo[]> {
  const found: ProcessInfo[] = [];
  for (const p of await listProcesses()) {
    if (p.pid === process.pid) continue;
    if (markers.paths.some((path) => p.args.includes(path))) {
      found.push(p);
      continue;
    }
    const env = await environOf(p.pid);
    if (env.some((entry) => markers.env.some((prefix) => entry.startsWith(prefix)))) found.push(p);
  }
  return found;
}
