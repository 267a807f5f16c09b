import { describe, expect, it } from "vitest";
import {
  isOwnedBy,
  mergeTags,
  operatorTags,
  parseTags,
  renderTags,
  splitTags,
  tagsEqual,
  type OperatorTags,
} from "../../src/proxmox/tags.js";

const UID = "3f2b8c1e-9a4d-4e7b-8f00-1c2d3e4f5a6b";
const OTHER = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
const HASH = "0123456789abcdef";
const ours: OperatorTags = { owner: UID, server: "ldap1", configHash: HASH };
const OWNER = `ldappair-owner-${UID}`;
const SERVER = "ldappair-server-ldap1";
const CONFIG = `ldappair-config-${HASH}`;
/** Proxmox's pve-tag format (case-insensitive). */
const PVE_TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

describe("renderTags", () => {
  it("renders owner, server and hash as valid lower-case Proxmox tags", () => {
    const tags = renderTags(ours);
    expect(tags).toEqual([OWNER, SERVER, CONFIG]);
    for (const t of tags) {
      expect(t).toMatch(PVE_TAG);
      expect(t).not.toMatch(/[=:A-Z]/);
    }
  });

  it("lower-cases what it is given, so a stored tag reads back the same", () => {
    expect(renderTags({ owner: UID.toUpperCase(), server: "LDAP1", configHash: HASH.toUpperCase() })).toEqual(
      [OWNER, SERVER, CONFIG],
    );
  });

  it.each([
    ["a space", { ...ours, server: "ldap 1" }],
    ["an equals sign", { ...ours, owner: "a=b" }],
    ["a colon", { ...ours, configHash: "ab:cd" }],
  ])("refuses a value with %s", (_, tags) => {
    expect(() => renderTags(tags)).toThrow(/not a valid Proxmox tag/);
  });
});

describe("splitTags", () => {
  it.each([
    ["a;b;c", ["a", "b", "c"]],
    ["web;beta,alpha alpha", ["web", "beta", "alpha", "alpha"]],
    [" a ,, b ;", ["a", "b"]],
    ["", []],
    [undefined, []],
  ])("%j -> %j", (input, expected) => {
    expect(splitTags(input)).toEqual(expected);
  });
});

describe("parseTags", () => {
  it.each([
    {
      name: "the stored form",
      stored: [CONFIG, OWNER, SERVER, "prod"].sort().join(";"),
      expected: { owners: [UID], servers: ["ldap1"], configHashes: [HASH], foreign: ["prod"] },
    },
    {
      name: "comma and space separated, repeated",
      stored: `prod, ${OWNER} ${OWNER},${SERVER};${CONFIG}`,
      expected: { owners: [UID], servers: ["ldap1"], configHashes: [HASH], foreign: ["prod"] },
    },
    {
      name: "kept case (tag-style case-sensitive): ours read case-blind, foreign kept as is",
      stored: `${OWNER.toUpperCase()};Prod;web`,
      expected: { owners: [UID], servers: [], configHashes: [], foreign: ["Prod", "web"] },
    },
    {
      name: "two owners (edited by hand)",
      stored: `ldappair-owner-${OTHER};${OWNER}`,
      expected: { owners: [UID, OTHER].sort(), servers: [], configHashes: [], foreign: [] },
    },
    {
      name: "a bare prefix is no value of ours",
      stored: "ldappair-owner-;ldappair-server-",
      expected: {
        owners: [],
        servers: [],
        configHashes: [],
        foreign: ["ldappair-owner-", "ldappair-server-"],
      },
    },
    {
      name: "no tags",
      stored: undefined,
      expected: { owners: [], servers: [], configHashes: [], foreign: [] },
    },
  ])("$name", ({ stored, expected }) => {
    expect(parseTags(stored)).toEqual(expected);
  });

  it("reads back what renderTags wrote, through Proxmox's lower-case sorted form", () => {
    const stored = [...renderTags(ours), "zeta"].sort().join(";");
    expect(operatorTags(stored)).toEqual(ours);
  });
});

describe("isOwnedBy", () => {
  it.each([
    ["our owner tag", `${OWNER};${SERVER}`, UID, true],
    ["our owner tag, asked with an upper-case uid", OWNER, UID.toUpperCase(), true],
    ["another pair's owner tag", `ldappair-owner-${OTHER};${SERVER}`, UID, false],
    ["our server tag and the right hostname but no owner tag", SERVER, UID, false],
    ["two owner tags, ours among them", `${OWNER};ldappair-owner-${OTHER}`, UID, false],
    ["the uid as a foreign tag", UID, UID, false],
    ["no tags", undefined, UID, false],
  ])("%s", (_, stored, uid, expected) => {
    expect(isOwnedBy(stored, uid)).toBe(expected);
  });
});

describe("operatorTags", () => {
  it.each([
    ["all three once", `${OWNER};${SERVER};${CONFIG}`, ours],
    ["no hash", `${OWNER};${SERVER}`, undefined],
    ["two servers", `${OWNER};${SERVER};ldappair-server-ldap2;${CONFIG}`, undefined],
    ["foreign only", "prod;web", undefined],
  ])("%s", (_, stored, expected) => {
    expect(operatorTags(stored)).toEqual(expected);
  });
});

describe("mergeTags", () => {
  it.each([
    {
      name: "a container without tags gets ours",
      stored: undefined,
      expected: [CONFIG, OWNER, SERVER].join(";"),
    },
    {
      name: "foreign tags stay untouched, in case too",
      stored: "Prod;backup",
      expected: ["Prod", "backup", CONFIG, OWNER, SERVER].sort().join(";"),
    },
    {
      name: "an old hash is replaced, not added",
      stored: `ldappair-config-ffffffffffffffff;${OWNER};${SERVER};web`,
      expected: [CONFIG, OWNER, SERVER, "web"].sort().join(";"),
    },
    {
      name: "a stale second owner or server tag is dropped",
      stored: `ldappair-owner-${OTHER};ldappair-server-ldap2;web`,
      expected: [CONFIG, OWNER, SERVER, "web"].sort().join(";"),
    },
  ])("$name", ({ stored, expected }) => {
    expect(mergeTags(stored, ours)).toBe(expected);
  });

  it("is steady: merging into what it wrote, as Proxmox re-stores it, changes nothing", () => {
    const written = mergeTags("web,Prod", ours);
    const restored = splitTags(written)
      .map((t) => t.toLowerCase())
      .sort()
      .join(";");
    expect(tagsEqual(mergeTags(restored, ours), restored)).toBe(true);
  });
});

describe("tagsEqual", () => {
  it.each([
    ["same order", "a;b", "a;b", true],
    ["Proxmox's sorted, lower-cased, de-duplicated form", "web;beta,alpha alpha", "alpha;beta;web", true],
    ["kept case", "Prod;web", "prod;web", true],
    ["kept order (tag-style ordering=config)", "web;alpha", "alpha;web", true],
    ["one tag more", "a;b", "a;b;c", false],
    ["one tag different", "a;b", "a;c", false],
    ["repeats do not hide a missing tag", "a;a", "a;b", false],
    ["both empty", undefined, "", true],
    ["empty and one", "", "a", false],
  ])("%s", (_, a, b, expected) => {
    expect(tagsEqual(a, b)).toBe(expected);
    expect(tagsEqual(b, a)).toBe(expected);
  });
});

describe("the build-hash tag", () => {
  const BUILD_HASH = "fedcba9876543210";
  const BUILD = `ldappair-build-${BUILD_HASH}`;
  const built: OperatorTags = { ...ours, buildHash: BUILD_HASH };

  it("is rendered beside owner, server and config, and read back", () => {
    expect(renderTags(built)).toEqual([OWNER, SERVER, CONFIG, BUILD]);
    const stored = [...renderTags(built), "zeta"].sort().join(";");
    expect(parseTags(stored)).toEqual({
      owners: [UID],
      servers: ["ldap1"],
      configHashes: [HASH],
      buildHashes: [BUILD_HASH],
      foreign: ["zeta"],
    });
    expect(operatorTags(stored)).toEqual(built);
  });

  it.each([
    ["no build tag (tagged before build hashes)", `${OWNER};${SERVER};${CONFIG}`, ours],
    [
      "two build tags (edited by hand)",
      `${OWNER};${SERVER};${CONFIG};${BUILD};ldappair-build-0000`,
      undefined,
    ],
  ])("operatorTags with %s", (_, stored, expected) => {
    expect(operatorTags(stored)).toEqual(expected);
  });

  it("replaces an old build tag and adds one where none was", () => {
    expect(mergeTags(`ldappair-build-0000000000000000;${OWNER};web`, built)).toBe(
      [BUILD, CONFIG, OWNER, SERVER, "web"].sort().join(";"),
    );
    expect(mergeTags(`${OWNER};${SERVER};${CONFIG}`, built)).toBe(
      [BUILD, CONFIG, OWNER, SERVER].sort().join(";"),
    );
  });
});
