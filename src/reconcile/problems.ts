// How a failed adapter call becomes a Problem the planner can act on: a
// condition reason a person can search for, a message that says what to fix
// (never a secret: the Proxmox client's errors carry the token id, never its
// secret), and whether waiting can help. Pure, so the mapping is a table.
import {
  isProxmoxError,
  ProxmoxPermissionError,
  ProxmoxVersionError,
  type ErrorReason,
} from "../proxmox/errors.js";
import { InventoryPollError } from "../proxmox/inventory.js";
import { ProxmoxConfigError } from "../proxmox/transport.js";
import { InvalidUpidError } from "../proxmox/upid.js";
import { errorMessage } from "../runtime/errors.js";
import type { Problem } from "./model.js";

/** Condition reasons by the client's error reason; anything not listed is `ProxmoxError`. */
const REASONS: Partial<Record<ErrorReason, string>> = {
  unauthorized: "ProxmoxUnauthorized",
  forbidden: "ProxmoxForbidden",
  "unsupported-version": "ProxmoxVersionUnsupported",
  "tls-untrusted": "ProxmoxCertificateUntrusted",
  tls: "ProxmoxTlsFailed",
  network: "ProxmoxUnreachable",
  timeout: "ProxmoxUnreachable",
  "connection-reset": "ProxmoxUnreachable",
  "node-unreachable": "ProxmoxNodeUnreachable",
  "malformed-response": "ProxmoxBadResponse",
  locked: "ProxmoxLocked",
  "lock-timeout": "ProxmoxLocked",
  "server-error": "ProxmoxServerError",
  cancelled: "Cancelled",
};

/** The Problem for an error thrown by the Proxmox client (or the inventory poll wrapping one). */
export function proxmoxProblem(err: unknown, doing?: string): Problem {
  const prefix = doing ? `${doing}: ` : "";
  const cause = err instanceof InventoryPollError ? err.cause : err;
  if (cause instanceof ProxmoxConfigError || cause instanceof InvalidUpidError)
    return { reason: "ProxmoxConfigInvalid", message: prefix + cause.message, transient: false };
  if (!isProxmoxError(cause))
    return { reason: "ProxmoxError", message: prefix + errorMessage(err), transient: true };
  const message = prefix + (err instanceof InventoryPollError ? err.message : cause.message);
  if (cause instanceof ProxmoxPermissionError || cause instanceof ProxmoxVersionError)
    return { reason: REASONS[cause.reason]!, message, transient: false };
  const reason = notFoundReason(cause.reason, cause.pveMessage) ?? REASONS[cause.reason] ?? "ProxmoxError";
  return { reason, message, transient: cause.errorClass !== "permanent" };
}

/** `no such cluster node 'pve9'`, `storage 'x' does not exist`: bad input a person must fix. */
function notFoundReason(reason: ErrorReason, text: string | undefined): string | undefined {
  if (reason !== "does-not-exist" || !text) return undefined;
  if (/no such cluster node/.test(text)) return "NodeNotFound";
  if (/^storage '.*' does not exist/.test(text)) return "StorageNotFound";
  return undefined;
}

/** Whether the client's error says the object is not there (a vmid, a realm, a task). */
export function isNotThere(err: unknown): boolean {
  return isProxmoxError(err) && err.reason === "does-not-exist";
}
