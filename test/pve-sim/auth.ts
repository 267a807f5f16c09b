/**
 * Authentication (API tokens, tickets) and privilege checks on ACL paths.
 * Simplification (inferred): a caller's privileges on a path are the union of its ACL entries on that path
 * and, when they propagate, on its parents; real PVE lets a deeper entry override inherited roles.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { PveError, permError } from "./errors.js";
import type { AclEntry, TokenDef, UserDef } from "./config.js";

export const ALL_PRIVILEGES = [
  "Datastore.Allocate",
  "Datastore.AllocateSpace",
  "Datastore.AllocateTemplate",
  "Datastore.Audit",
  "Pool.Allocate",
  "Pool.Audit",
  "Realm.Allocate",
  "Realm.AllocateUser",
  "Sys.AccessNetwork",
  "Sys.Audit",
  "Sys.Console",
  "Sys.Modify",
  "Sys.PowerMgmt",
  "Sys.Syslog",
  "User.Modify",
  "Permissions.Modify",
  "VM.Allocate",
  "VM.Audit",
  "VM.Backup",
  "VM.Clone",
  "VM.Config.CDROM",
  "VM.Config.CPU",
  "VM.Config.Cloudinit",
  "VM.Config.Disk",
  "VM.Config.HWType",
  "VM.Config.Memory",
  "VM.Config.Network",
  "VM.Config.Options",
  "VM.Console",
  "VM.Migrate",
  "VM.PowerMgmt",
  "VM.Snapshot",
  "VM.Snapshot.Rollback",
];

export interface Identity {
  /** `user@realm` */
  userid: string;
  /** Token name when authenticated by token. */
  tokenid?: string;
  /** `user@realm` or `user@realm!token`: what tasks record and what root-only checks compare. */
  authid: string;
  acl: AclEntry[];
  /** Ticket sessions must send the CSRF token on writes. */
  csrf?: string;
}

interface Ticket {
  userid: string;
  csrf: string;
}

export class Auth {
  private readonly tokens = new Map<string, TokenDef>();
  private readonly users = new Map<string, UserDef>();
  private readonly tickets = new Map<string, Ticket>();

  addToken(token: TokenDef): void {
    this.tokens.set(token.id, token);
  }

  addUser(user: UserDef): void {
    this.users.set(user.userid, user);
  }

  /** Identity from the request's headers; throws 401 (no credentials, bad token, bad ticket, bad CSRF). */
  authenticate(method: string, headers: Record<string, string | string[] | undefined>): Identity {
    const authz = headers["authorization"];
    if (typeof authz === "string" && authz.startsWith("PVEAPIToken")) {
      // `PVEAPIToken=USER@REALM!ID=SECRET`; a space after the prefix instead of `=` is accepted too.
      const m = /^PVEAPIToken[= ]([^!=\s]+@[^!=\s]+)!([^=\s]+)[= ](\S+)$/.exec(authz.trim());
      const token = m ? this.tokens.get(`${m[1]}!${m[2]}`) : undefined;
      if (!m || !token || token.secret !== m[3]) throw new PveError(401, "authentication failure");
      return { userid: m[1]!, tokenid: m[2]!, authid: token.id, acl: token.acl };
    }
    const cookie = typeof headers["cookie"] === "string" ? headers["cookie"] : "";
    const ticketText = /(?:^|;\s*)PVEAuthCookie=([^;]+)/.exec(cookie)?.[1];
    if (ticketText === undefined) throw new PveError(401, "No ticket");
    const ticket = this.tickets.get(decodeURIComponent(ticketText));
    if (!ticket) throw new PveError(401, "authentication failure");
    if (method !== "GET" && headers["csrfpreventiontoken"] !== ticket.csrf)
      throw new PveError(401, "Permission denied - invalid csrf token");
    const user = this.users.get(ticket.userid);
    return { userid: ticket.userid, authid: ticket.userid, acl: user?.acl ?? [], csrf: ticket.csrf };
  }

  /** POST /access/ticket */
  login(
    username: string,
    password: string,
    realm?: string,
  ): { ticket: string; CSRFPreventionToken: string; username: string } {
    const userid = username.includes("@") ? username : `${username}@${realm ?? "pam"}`;
    const user = this.users.get(userid);
    if (!user || user.password !== password) throw new PveError(401, "authentication failure");
    const ticket = `PVE:${userid}:${Math.floor(Date.now() / 1000)
      .toString(16)
      .toUpperCase()}::${randomBytes(48).toString("base64")}`;
    const csrf = `${Math.floor(Date.now() / 1000)
      .toString(16)
      .toUpperCase()}:${randomBytes(24).toString("base64url")}`;
    this.tickets.set(ticket, { userid, csrf });
    return { ticket, CSRFPreventionToken: csrf, username: userid };
  }

  static newSecret(): string {
    return randomUUID();
  }
}

export function isRoot(id: Identity): boolean {
  return id.authid === "root@pam";
}

function covers(entry: AclEntry, path: string): boolean {
  if (entry.path === path) return true;
  if (entry.propagate === false) return false;
  return entry.path === "/" || path.startsWith(entry.path.replace(/\/$/, "") + "/");
}

export function hasPriv(id: Identity, path: string, priv: string): boolean {
  if (isRoot(id)) return true;
  return id.acl.some((e) => covers(e, path) && e.privs.includes(priv));
}

/** Demands every privilege in `privs` on `path`; 403 naming the first one missing. */
export function checkPriv(id: Identity, path: string, privs: string[]): void {
  for (const p of privs) if (!hasPriv(id, path, p)) throw permError(`${path}, ${p}`);
}

/** A guest's privilege: on `/vms/{vmid}`, or on `/pool/{pool}` when the guest is a member of that pool. */
export function hasVmPriv(id: Identity, vmid: number, pool: string | undefined, priv: string): boolean {
  return hasPriv(id, `/vms/${vmid}`, priv) || (pool !== undefined && hasPriv(id, `/pool/${pool}`, priv));
}

/** Demands every privilege on a guest (see hasVmPriv); 403 naming `/vms/{vmid}` and the first one missing. */
export function checkVmPriv(id: Identity, vmid: number, pool: string | undefined, privs: string[]): void {
  for (const p of privs) if (!hasVmPriv(id, vmid, pool, p)) throw permError(`/vms/${vmid}, ${p}`);
}

/** Demands any one of `privs` on `path`; 403 naming them joined by `|`. */
export function checkAnyPriv(id: Identity, path: string, privs: string[]): void {
  if (!privs.some((p) => hasPriv(id, path, p))) throw permError(`${path}, ${privs.join("|")}`);
}

/** Root-only operations: a token never passes, not even one owned by root@pam. */
export function checkRoot(id: Identity, what: string): void {
  if (!isRoot(id)) throw permError(what);
}
