/** Task identifiers in Proxmox's format: `UPID:node:pid:pstart:starttime:type:id:user:` with hex numbers. */
export interface Upid {
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  user: string;
}

const hex = (n: number, width: number): string => n.toString(16).toUpperCase().padStart(width, "0");

export function formatUpid(u: Upid): string {
  return `UPID:${u.node}:${hex(u.pid, 8)}:${hex(u.pstart, 8)}:${hex(u.starttime, 8)}:${u.type}:${u.id}:${u.user}:`;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

/** Parses a UPID; undefined when it is not one (the API then answers "unable to parse worker upid"). */
export function parseUpid(s: string): Upid | undefined {
  const m = UPID_RE.exec(s);
  if (!m) return undefined;
  return {
    node: m[1]!,
    pid: parseInt(m[3]!, 16),
    pstart: parseInt(m[4]!, 16),
    starttime: parseInt(m[5]!, 16),
    type: m[6]!,
    id: m[7]!,
    user: m[8]!,
  };
}

/** A token id: `user@realm!name`, the name starting with a letter (PVE's pve_verify_tokenid). */
const TOKEN_ID_RE = /^([^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+)!([A-Za-z][A-Za-z0-9.\-_]+)$/;

/**
 * What a task shows of the caller recorded in its UPID: the UPID keeps the whole `user@realm!token`, the
 * task status and task lists show the token's owner as `user` and its name as `tokenid` (PVE's
 * split_tokenid in PVE::API2::Tasks).
 */
export function splitAuthid(authid: string): { user: string; tokenid?: string } {
  const m = TOKEN_ID_RE.exec(authid);
  return m ? { user: m[1]!, tokenid: m[2]! } : { user: authid };
}

/** Whether `caller` sees the task of `starter` without Sys.Audit: a token its own, a user its own and its tokens'. */
export function ownsTask(starter: string, caller: string): boolean {
  return starter === caller || splitAuthid(starter).user === caller;
}
