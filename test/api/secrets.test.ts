import { describe, expect, it } from "vitest";
import { secretValue, SecretValueError, trimLineEnd } from "../../src/api/secrets.js";
import { secretOf } from "../support/secrets.js";

describe("trimLineEnd", () => {
  it.each([
    ["token\n", "token"],
    ["token\r\n", "token"],
    ["token", "token"],
    ["token\n\n", "token\n"],
    ["token \n", "token "],
    ["token\t", "token\t"],
    [" token", " token"],
    ["\ntoken", "\ntoken"],
    ["line1\nline2", "line1\nline2"],
    [
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
    ],
    ["token\r", "token\r"],
    ["\n", ""],
  ])("%j -> %j", (text, trimmed) => {
    expect(trimLineEnd(text)).toBe(trimmed);
  });
});

describe("secretValue", () => {
  const uri = "postgres://manager:s3cr3t@db:5432/manager";

  it("decodes the base64 data the API server returns", () => {
    expect(secretValue(secretOf({ uri }), "uri")).toBe(uri);
  });

  it.each([
    ["newline", `${uri}\n`],
    ["CR LF", `${uri}\r\n`],
  ])("trims the trailing %s of a Secret made from a file", (_what, stored) => {
    expect(secretValue(secretOf({ uri: stored }), "uri")).toBe(uri);
  });

  it.each([
    ["a missing key", secretOf({ other: uri }), /^key "uri" of Secret ns\/manager-db does not exist$/],
    ["an empty value", secretOf({ uri: "" }), /is empty/],
    ["a value that is only a newline", secretOf({ uri: "\n" }), /is empty/],
    [
      "no data at all",
      { metadata: { name: "manager-db" } },
      /^key "uri" of Secret manager-db does not exist$/,
    ],
    [
      "a value that is not UTF-8",
      { metadata: { name: "manager-db" }, data: { uri: Buffer.from([0x70, 0xff, 0xfe]).toString("base64") } },
      /is not UTF-8 text/,
    ],
  ])("refuses %s, naming the Secret and key", (_what, secret, message) => {
    let error: unknown;
    try {
      secretValue(secret, "uri");
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(SecretValueError);
    expect((error as SecretValueError).message).toMatch(message);
    expect(JSON.stringify(error) + String(error)).not.toContain("s3cr3t");
  });
});
