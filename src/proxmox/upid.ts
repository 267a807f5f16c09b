/**
 * Task ids (UPIDs): `UPID:node:pid:pstart:starttime:type:id:user:`, numbers in hex. The node inside it is
 * the one to ask for the task's status and log, whichever node received the request that started it.
 */
export interface Upid {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  /** Seconds since the epoch. */
  starttime: number;
  /** vzcreate, vzstart, vzshutdown, vzstop, vzdestroy, ociregistrypull, auth-realm-sync, ... */
  type: string;
  /** The object it works on: a vmid, a storage, a realm; may be empty. */
  id: string;
  /** `user@realm`; a token's tasks carry `user@realm!token` here. */
  user: string;
  /** The token name, when a token started it. */
  tokenName?: string;
}

const UPID_RE =
  /^UPID:([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-Fa-f]{8}):([0-9A-Fa-f]{8,9}):([0-9A-Fa-f]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$/;

/** The parts of a UPID; undefined when the text is not one. */
export function parseUpid(text: string): Upid | undefined {
  const m = UPID_RE.exec(text);
  if (!m) return undefined;
  const user = m[7]!;
  const bang = user.indexOf("!");
  return {
    upid: text,
    node: m[1]!,
    pid: parseInt(m[2]!, 16),
    pstart: parseInt(m[3]!, 16),
    starttime: parseInt(m[4]!, 16),
    type: m[5]!,
    id: m[6]!,
    user,
    ...(bang >= 0 ? { tokenName: user.slice(bang + 1) } : {}),
  };
}

export class InvalidUpidError extends Error {
  override name = "InvalidUpidError";
  constructor(readonly text: string) {
    super(
      `not a Proxmox task id (UPID:node:pid:pstart:starttime:type:id:user:): ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
}

export function requireUpid(text: string): Upid {
  const u = parseUpid(text);
  if (!u) throw new InvalidUpidError(text);
  return u;
}
