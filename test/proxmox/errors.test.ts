import { describe, expect, it } from "vitest";
import {
  classify,
  OutcomeUnknown,
  parsePermissionDenial,
  ProxmoxAuthError,
  ProxmoxPermissionError,
  proxmoxError,
  type ErrorClass,
  type ErrorReason,
  type Failure,
} from "../../src/proxmox/errors.js";

const http = (status: number, message: string): Failure => ({ type: "response", status, message });
const net = (f: Omit<Extract<Failure, { type: "network" }>, "type">): Failure => ({ type: "network", ...f });

describe("classify", () => {
  const rows: [string, string, Failure, ErrorClass, ErrorReason][] = [
    // Answers: the status and Proxmox's text decide.
    ["5xx, unknown text", "GET", http(500, "got timeout"), "transient", "server-error"],
    ["503", "POST", http(503, "Service Unavailable"), "transient", "server-error"],
    ["595 proxy to node", "GET", http(595, "Connection refused"), "transient", "node-unreachable"],
    [
      "596 proxy TLS",
      "POST",
      http(596, "tls_process_server_certificate: certificate verify failed"),
      "transient",
      "node-unreachable",
    ],
    [
      "lock file timeout",
      "PUT",
      http(500, "can't lock file '/run/lock/lxc/pve-config-101.lock' - got timeout"),
      "transient",
      "lock-timeout",
    ],
    ["CT locked", "POST", http(500, "CT is locked (create)"), "transient", "locked"],
    ["VM locked", "DELETE", http(500, "VM is locked (backup)"), "transient", "locked"],
    ["400 parameters", "POST", http(400, "Parameter verification failed."), "permanent", "bad-request"],
    ["400 even with an 'exists' text", "GET", http(400, "VM 101 already exists"), "permanent", "bad-request"],
    ["401", "GET", http(401, "authentication failure"), "permanent", "unauthorized"],
    ["403", "POST", http(403, "Permission check failed (/vms/100, VM.Allocate)"), "permanent", "forbidden"],
    ["CT exists", "POST", http(500, "CT 101 already exists on node 'pve'"), "permanent", "already-exists"],
    [
      "realm exists",
      "POST",
      http(500, "add auth server failed: domain 'ldap' already exists"),
      "permanent",
      "already-exists",
    ],
    [
      "pull target exists",
      "POST",
      http(500, "refusing to override existing file '/var/lib/vz/template/cache/x.tar'"),
      "permanent",
      "already-exists",
    ],
    [
      "config missing",
      "GET",
      http(500, "Configuration file 'nodes/pve/lxc/101.conf' does not exist"),
      "permanent",
      "does-not-exist",
    ],
    [
      "realm missing",
      "DELETE",
      http(500, "delete auth server failed: authentication domain 'x' does not exist"),
      "permanent",
      "does-not-exist",
    ],
    ["unknown node", "GET", http(500, "no such cluster node 'pve9'"), "permanent", "does-not-exist"],
    ["already running", "POST", http(500, "CT 101 already running"), "permanent", "already-running"],
    ["not running", "POST", http(500, "CT 101 not running"), "permanent", "not-running"],
    [
      "destroy a running CT",
      "DELETE",
      http(500, "unable to destroy CT 101 - container is running"),
      "permanent",
      "running",
    ],
    [
      "digest mismatch",
      "PUT",
      http(500, "detected modified configuration - file changed by other user? Try again."),
      "permanent",
      "config-changed",
    ],
    [
      "empty PUT",
      "PUT",
      http(500, "update auth server failed: no options specified"),
      "permanent",
      "refused",
    ],
    [
      "required option",
      "PUT",
      http(500, "unable to delete required option 'memory'"),
      "permanent",
      "refused",
    ],
    [
      "missing option",
      "POST",
      http(500, "add auth server failed: missing value for required option 'user_attr'"),
      "permanent",
      "refused",
    ],
    ["skiplock", "PUT", http(500, "Only root may use this option."), "permanent", "refused"],
    [
      "not implemented",
      "GET",
      http(501, "Method 'GET /api2/json/x' not implemented"),
      "permanent",
      "not-implemented",
    ],
    ["404", "GET", http(404, "Not Found"), "permanent", "does-not-exist"],
    ["429", "GET", http(429, "Too Many Requests"), "transient", "server-error"],
    // Network: whether the request may have arrived, and the method, decide.
    ["refused", "POST", net({ code: "ECONNREFUSED", sent: false }), "transient", "network"],
    ["connect timeout", "POST", net({ sent: false, timedOut: true }), "transient", "timeout"],
    ["GET reset", "GET", net({ code: "ECONNRESET", sent: true }), "transient", "connection-reset"],
    ["PUT timeout", "PUT", net({ sent: true, timedOut: true }), "transient", "timeout"],
    ["POST reset", "POST", net({ code: "ECONNRESET", sent: true }), "outcome-unknown", "connection-reset"],
    ["POST timeout", "POST", net({ sent: true, timedOut: true }), "outcome-unknown", "timeout"],
    ["DELETE timeout", "DELETE", net({ sent: true, timedOut: true }), "outcome-unknown", "timeout"],
    [
      "POST garbled 200",
      "POST",
      net({ sent: true, malformed: true }),
      "outcome-unknown",
      "malformed-response",
    ],
    ["GET garbled 200", "GET", net({ sent: true, malformed: true }), "transient", "malformed-response"],
    [
      "POST cancelled in flight",
      "POST",
      net({ sent: true, cancelled: true }),
      "outcome-unknown",
      "cancelled",
    ],
    ["POST cancelled before", "POST", net({ sent: false, cancelled: true }), "cancelled", "cancelled"],
    ["GET cancelled", "GET", net({ sent: true, cancelled: true }), "cancelled", "cancelled"],
    [
      "self-signed",
      "GET",
      net({ code: "DEPTH_ZERO_SELF_SIGNED_CERT", sent: false }),
      "permanent",
      "tls-untrusted",
    ],
    [
      "wrong CA",
      "POST",
      net({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE", sent: false }),
      "permanent",
      "tls-untrusted",
    ],
    [
      "wrong name",
      "GET",
      net({ code: "ERR_TLS_CERT_ALTNAME_INVALID", sent: false }),
      "permanent",
      "tls-untrusted",
    ],
    [
      "plain HTTP port",
      "GET",
      net({ code: "ERR_SSL_WRONG_VERSION_NUMBER", sent: false }),
      "permanent",
      "tls",
    ],
  ];
  it.each(rows)("%s (%s)", (_name, method, failure, errorClass, reason) => {
    expect(classify(method, failure)).toEqual({ errorClass, reason });
  });

  // A PUT against a digest: a repeat after it was applied would be refused as modified by someone else.
  const unrepeatable: [string, Failure, ErrorClass, ErrorReason][] = [
    ["reset", net({ code: "ECONNRESET", sent: true }), "outcome-unknown", "connection-reset"],
    ["timeout", net({ sent: true, timedOut: true }), "outcome-unknown", "timeout"],
    ["never sent", net({ code: "ECONNREFUSED", sent: false }), "transient", "network"],
    ["lock timeout", http(500, "can't lock file 'x' - got timeout"), "transient", "lock-timeout"],
  ];
  it.each(unrepeatable)("an unrepeatable PUT: %s", (_name, failure, errorClass, reason) => {
    expect(classify("PUT", failure, false)).toEqual({ errorClass, reason });
  });
});

describe("parsePermissionDenial", () => {
  it.each([
    ["Permission check failed (/vms/100, VM.Allocate)", { aclPath: "/vms/100", privileges: ["VM.Allocate"] }],
    [
      "Permission check failed (/storage/local, Datastore.Audit|Datastore.AllocateSpace)",
      { aclPath: "/storage/local", privileges: ["Datastore.Audit", "Datastore.AllocateSpace"] },
    ],
    ["Permission check failed (/, Sys.Modify)", { aclPath: "/", privileges: ["Sys.Modify"] }],
    [
      "Permission check failed (changing feature flags (except nesting) is only allowed for root@pam)",
      { privileges: [] },
    ],
    ["Permission check failed", { privileges: [] }],
  ])("%s", (text, expected) => {
    expect(parsePermissionDenial(text)).toEqual(expected);
  });
});

describe("proxmoxError", () => {
  const ctx = {
    method: "POST",
    path: "/nodes/pve1/lxc",
    endpoint: "https://pve:8006",
    tokenId: "op@pve!k8s",
  };

  it("401: an auth error naming the token id", () => {
    const e = proxmoxError(
      { ...ctx, method: "GET", path: "/version" },
      http(401, "authentication failure\n"),
    );
    expect(e).toBeInstanceOf(ProxmoxAuthError);
    expect(e.message).toBe(
      "Proxmox at https://pve:8006 refused API token op@pve!k8s (401 authentication failure) on GET /version: check the token id and secret",
    );
    expect(e).toMatchObject({ status: 401, pveMessage: "authentication failure", tokenId: "op@pve!k8s" });
  });

  it("403: names the token id, the privilege and the path", () => {
    const e = proxmoxError(ctx, http(403, "Permission check failed (/vms/100, VM.Allocate)"));
    expect(e).toBeInstanceOf(ProxmoxPermissionError);
    expect(e.message).toBe(
      "API token op@pve!k8s lacks privilege VM.Allocate on /vms/100: POST /nodes/pve1/lxc answered 403 Permission check failed (/vms/100, VM.Allocate)",
    );
    expect(e).toMatchObject({ privileges: ["VM.Allocate"], aclPath: "/vms/100" });
  });

  it("403 without a privilege in the text still names the token", () => {
    const e = proxmoxError(ctx, http(403, "Permission check failed (only root@pam may do this)"));
    expect(e.message).toMatch(/^API token op@pve!k8s is not allowed to do this: /);
  });

  it("400: the per-parameter errors in the message and on the error", () => {
    const errors = { vmid: "value must have a minimum value of 100", net0: "invalid format" };
    const e = proxmoxError(ctx, http(400, "Parameter verification failed."), { errors });
    expect(e.message).toBe(
      "POST /nodes/pve1/lxc: 400 Parameter verification failed. (vmid: value must have a minimum value of 100; net0: invalid format) (permanent)",
    );
    expect(e.errors).toEqual(errors);
  });

  it("a POST with no answer is OutcomeUnknown and says it was not repeated", () => {
    const e = proxmoxError(ctx, net({ code: "ECONNRESET", sent: true }));
    expect(e).toBeInstanceOf(OutcomeUnknown);
    expect(e.message).toBe(
      "POST /nodes/pve1/lxc at https://pve:8006: outcome unknown, connection lost (ECONNRESET); not repeated: look at Proxmox to see whether it happened",
    );
  });

  it("a GET with no answer is a transient ProxmoxError, not OutcomeUnknown", () => {
    const e = proxmoxError({ ...ctx, method: "GET" }, net({ sent: true, timedOut: true }));
    expect(e).not.toBeInstanceOf(OutcomeUnknown);
    expect(e.transient).toBe(true);
  });

  it("JSON of an error carries what a caller needs", () => {
    const e = proxmoxError(ctx, http(500, "CT is locked (create)"));
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      name: "ProxmoxError",
      errorClass: "transient",
      reason: "locked",
      method: "POST",
      path: "/nodes/pve1/lxc",
      endpoint: "https://pve:8006",
      tokenId: "op@pve!k8s",
      status: 500,
      pveMessage: "CT is locked (create)",
    });
  });
});
