// The client's pure parts: UPIDs, versions, task outcomes, OCI volume names, parameters, retry policy.
import { describe, expect, it } from "vitest";
import { encodeParams, paramsInQuery } from "../../src/proxmox/form.js";
import { isPullableReference, ociFilename, ociVolid } from "../../src/proxmox/oci.js";
import { isRepeatable, isRetryable } from "../../src/proxmox/retry.js";
import { taskOutcome } from "../../src/proxmox/tasks.js";
import { endpointOrigin, ProxmoxConfigError, Transport } from "../../src/proxmox/transport.js";
import { parseUpid, requireUpid } from "../../src/proxmox/upid.js";
import { versionVerdict } from "../../src/proxmox/version.js";
import { expectNoSecret } from "./support.js";

describe("parseUpid", () => {
  it("reads every part; the node is the one to ask", () => {
    expect(parseUpid("UPID:pve-2:0000C0DE:0012D687:6752A1B0:vzcreate:101:root@pam!operator:")).toEqual({
      upid: "UPID:pve-2:0000C0DE:0012D687:6752A1B0:vzcreate:101:root@pam!operator:",
      node: "pve-2",
      pid: 0xc0de,
      pstart: 0x12d687,
      starttime: 0x6752a1b0,
      type: "vzcreate",
      id: "101",
      user: "root@pam!operator",
      tokenName: "operator",
    });
  });

  it.each([
    [
      "an empty id",
      "UPID:pve1:00001234:0ABCDEF12:6752A1B0:auth-realm-sync::root@pam:",
      { id: "", type: "auth-realm-sync" },
    ],
    [
      "a 9-digit pstart",
      "UPID:pve1:00001234:1ABCDEF12:6752A1B0:vzstart:100:root@pam:",
      { pstart: 0x1abcdef12 },
    ],
  ])("accepts %s", (_n, text, part) => {
    expect(parseUpid(text)).toMatchObject(part);
  });

  it.each([
    "",
    "UPID:pve1:nonsense",
    "UPID:pve1:00001234:0012D687:6752A1B0:vzcreate:101:root@pam", // no trailing colon
    "UPID:pve/1:00001234:0012D687:6752A1B0:vzcreate:101:root@pam:",
    "UPID:-pve:00001234:0012D687:6752A1B0:vzcreate:101:root@pam:",
    "TASK:pve1:00001234:0012D687:6752A1B0:vzcreate:101:root@pam:",
  ])("refuses %j", (text) => {
    expect(parseUpid(text)).toBeUndefined();
    expect(() => requireUpid(text)).toThrow(/not a Proxmox task id/);
  });
});

describe("versionVerdict", () => {
  it.each([
    [{ version: "9.1.1", release: "9.1" }, true],
    [{ version: "9.1", release: "9.1" }, true],
    [{ version: "9.2.0", release: "9.2" }, true],
    [{ version: "10.0~2", release: "10.0" }, true],
    [{ version: "9.0.11", release: "9.0" }, false],
    [{ version: "8.4.14", release: "8.4" }, false],
    [{ version: "", release: "9.1" }, true],
    [{ version: "unknown", release: "" }, false],
  ])("%j supported: %s", (v, supported) => {
    expect(versionVerdict(v).supported).toBe(supported);
  });

  it("says why an old one is refused", () => {
    expect(versionVerdict({ version: "8.4.1", release: "8.4" })).toEqual({
      supported: false,
      reason:
        "Proxmox VE 8.4.1 is older than 9.1: OCI containers (image pull, env, entrypoint) need 9.1 or newer",
    });
  });
});

describe("taskOutcome", () => {
  it.each([
    [{ status: "running" as const }, { state: "running" }],
    [
      { status: "stopped" as const, exitstatus: "OK" },
      { state: "ok", warnings: 0 },
    ],
    [
      { status: "stopped" as const, exitstatus: "WARNINGS: 3" },
      { state: "ok", warnings: 3 },
    ],
    [
      { status: "stopped" as const, exitstatus: "unexpected status" },
      { state: "failed", message: "unexpected status" },
    ],
    [
      { status: "stopped" as const, exitstatus: "CT is locked (create)" },
      { state: "failed", message: "CT is locked (create)" },
    ],
    [{ status: "stopped" as const }, { state: "failed", message: "unexpected status" }],
    [
      { status: "stopped" as const, exitstatus: "WARNINGS: x" },
      { state: "failed", message: "WARNINGS: x" },
    ],
  ])("%j -> %j", (status, outcome) => {
    expect(taskOutcome(status)).toEqual(outcome);
  });
});

describe("OCI references and volumes", () => {
  it.each([
    ["ghcr.io/mieweb/ldap-gateway:1.4.0", undefined, "ldap-gateway_1.4.0.tar"],
    ["ghcr.io/mieweb/ldap-gateway:latest", undefined, "ldap-gateway_latest.tar"],
    ["registry.local:5000/team/img:2024-01+b", undefined, "img_2024-01_b.tar"],
    [
      "ghcr.io/mieweb/ldap-gateway:latest",
      "ldap-gateway_latest-20260101",
      "ldap-gateway_latest-20260101.tar",
    ],
    ["ghcr.io/mieweb/ldap-gateway:1.4.0", "some/dir/name", "name.tar"],
  ])("%s (filename %s) -> %s", (reference, filename, file) => {
    expect(ociFilename(reference, filename)).toBe(file);
  });

  it("names the volume in the storage", () => {
    expect(ociVolid("local", "ghcr.io/mieweb/ldap-gateway:1.4.0")).toBe(
      "local:vztmpl/ldap-gateway_1.4.0.tar",
    );
  });

  it.each([
    ["ghcr.io/mieweb/ldap-gateway:1.4.0", true],
    ["ldap-gateway:1", true],
    ["ghcr.io/mieweb/ldap-gateway", false],
    ["ghcr.io/mieweb/ldap-gateway@sha256:" + "a".repeat(64), false],
    ["GHCR.io/Mieweb/x:1", false],
  ])("%s pullable: %s", (reference, ok) => {
    expect(isPullableReference(reference)).toBe(ok);
  });
});

describe("encodeParams", () => {
  it("form-encodes, booleans as 1/0, leaves undefined and null out, repeats arrays", () => {
    expect(
      encodeParams({
        a: true,
        b: false,
        c: 5,
        d: "x=y&z",
        e: undefined,
        f: null,
        g: ["1", 2],
        env: "A=1\0B=2",
      }),
    ).toBe("a=1&b=0&c=5&d=x%3Dy%26z&g=1&g=2&env=A%3D1%00B%3D2");
  });

  it("does not touch the caller's object", () => {
    const params = { a: undefined, b: null, c: true };
    encodeParams(params);
    expect(params).toEqual({ a: undefined, b: null, c: true });
    expect(Object.keys(params)).toEqual(["a", "b", "c"]);
  });

  it("query for GET and DELETE, body for POST and PUT", () => {
    expect(["GET", "delete", "POST", "put"].map(paramsInQuery)).toEqual([true, true, false, false]);
  });
});

describe("isRetryable", () => {
  it.each([
    ["GET", "/cluster/resources", true],
    ["GET", "/nodes/pve1/tasks/UPID:x/status", true],
    ["PUT", "/nodes/pve1/lxc/101/config", true],
    ["PUT", "/access/domains/ldap", true],
    ["PUT", "/nodes/pve1/dns", true],
    ["PUT", "/nodes/pve1/lxc/101/resize", false],
    ["POST", "/nodes/pve1/lxc", false],
    ["POST", "/nodes/pve1/lxc/101/status/start", false],
    ["POST", "/nodes/pve1/lxc/101/status/stop", false],
    ["POST", "/nodes/pve1/lxc/101/status/shutdown", false],
    ["POST", "/nodes/pve1/storage/local/oci-registry-pull", false],
    ["POST", "/access/domains/ldap/sync", false],
    ["POST", "/access/domains", false],
    ["DELETE", "/nodes/pve1/lxc/101", false],
    ["DELETE", "/access/domains/ldap", false],
  ])("%s %s: %s", (method, path, retry) => {
    expect(isRetryable(method, path)).toBe(retry);
  });
});

describe("isRepeatable", () => {
  it.each([
    ["GET", undefined, true],
    ["PUT", { cores: 2 }, true],
    ["PUT", { cores: 2, digest: "0a1b" }, false],
    ["PUT", { cores: 2, digest: undefined }, true],
    ["POST", { vmid: 100 }, false],
    ["DELETE", undefined, false],
  ])("%s %j: %s", (method, params, repeatable) => {
    expect(isRepeatable(method, params)).toBe(repeatable);
  });
});

describe("endpointOrigin", () => {
  it.each([
    ["https://pve.example.com:8006", "https://pve.example.com:8006"],
    ["https://pve.example.com:8006/", "https://pve.example.com:8006"],
    ["https://10.0.0.1:8006/api2/json", "https://10.0.0.1:8006"],
    ["https://pve.example.com", "https://pve.example.com"],
  ])("%s -> %s", (input, origin) => {
    expect(endpointOrigin(input)).toBe(origin);
  });

  it.each([
    "http://pve:8006",
    "https://root:secret@pve:8006",
    "https://pve:8006/other",
    "pve:8006",
    "not a url",
  ])("refuses %s", (input) => {
    expect(() => endpointOrigin(input)).toThrow(ProxmoxConfigError);
  });

  it.each([
    "https://root:hunter2secret@pve:8006",
    // Not a URL at all (a bad port, no scheme): the text is quoted back, its credentials not.
    "https://root:hunter2secret@pve:80x6",
    "root:hunter2secret@pve:8006",
    "hunter2secret@pve:8006",
  ])("never repeats a password given in %s", (input) => {
    expect(() => endpointOrigin(input)).toThrow(ProxmoxConfigError);
    expect(() => endpointOrigin(input)).not.toThrow(/hunter2secret/);
  });
});

describe("Transport configuration", () => {
  const secret = "0f3a9c1e-7d2b-4e8f-9a6c-5b4d3e2f1a0b";
  const options = { endpoint: "https://pve:8006", tokenId: "op@pve!k8s", tokenSecret: secret };
  const refusal = (o: Partial<typeof options>): Error => {
    try {
      new Transport({ ...options, ...o }).close();
    } catch (e) {
      return e as Error;
    }
    throw new Error("accepted");
  };

  it.each([
    ["the whole token pasted as its id", `op@pve!k8s=${secret}`],
    ["the header value pasted as its id", `PVEAPIToken=op@pve!k8s=${secret}`],
  ])("refuses %s without echoing the secret in it", (_name, tokenId) => {
    const e = refusal({ tokenId });
    expect(e).toBeInstanceOf(ProxmoxConfigError);
    expect(e.message).toMatch(/must look like user@realm!name/);
    expectNoSecret(e, secret);
  });

  it.each([
    ["empty", ""],
    ["with white space", "abc def-123"],
    // Not a header value: the request would throw a bare TypeError instead of a configuration error.
    ["with characters outside visible ASCII", "s\u20accret-0f3a9c1e-7d2b"],
    ["with a control character", "abc\u0001def-7d2b-4e8f"],
  ])("refuses a secret %s, naming the token id, not the secret", (_name, tokenSecret) => {
    const e = refusal({ tokenSecret });
    expect(e).toBeInstanceOf(ProxmoxConfigError);
    expect(e.message).toContain("op@pve!k8s");
    if (tokenSecret.length > 8) expectNoSecret(e, tokenSecret);
  });
});
