import { describe, expect, it } from "vitest";
import {
  configUpdate,
  configValueEqual,
  desiredNodeDns,
  nodeDnsUpdate,
  normalizeNodeDns,
  parseEnv,
  parsePropertyString,
  propertiesEqual,
  realmCreateParams,
  realmUpdate,
  runbookRealm,
  type RealmSettingsInput,
} from "../../src/proxmox/normalize.js";

describe("parsePropertyString", () => {
  it.each([
    [
      "scope=both,enable-new=1",
      [
        ["scope", "both"],
        ["enable-new", "1"],
      ],
    ],
    [
      "email=mail, firstname=givenname",
      [
        ["email", "mail"],
        ["firstname", "givenname"],
      ],
    ],
    [
      "local-lvm:4,size=4G",
      [
        ["", "local-lvm:4"],
        ["size", "4G"],
      ],
    ],
    ["", []],
    [undefined, []],
  ])("%j", (text, entries) => {
    expect([...parsePropertyString(text)]).toEqual(entries);
  });
});

describe("propertiesEqual", () => {
  const NET = "name=eth0,bridge=vmbr0,ip=dhcp,host-managed=1";
  it.each([
    [
      "sync options re-printed with sorted keys",
      "scope=both,enable-new=1,remove-vanished=acl;entry;properties",
      "enable-new=1,remove-vanished=acl;entry;properties,scope=both",
      [],
      true,
    ],
    ["a boolean as true or 1", "enable-new=true", "enable-new=1", [], true],
    ["remove-vanished in another order", "remove-vanished=entry;acl", "remove-vanished=acl;entry", [], true],
    ["another scope", "scope=both", "scope=users", [], false],
    ["a key missing", "scope=both,enable-new=1", "scope=both", [], false],
    ["a key more", "scope=both", "scope=both,full=1", [], false],
    [
      "a network with the MAC and type Proxmox added",
      NET,
      "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,ip=dhcp,type=veth,host-managed=1",
      ["hwaddr", "type"],
      true,
    ],
    [
      "a MAC we chose, read back in upper case",
      `${NET},hwaddr=bc:24:11:aa:bb:cc`,
      `hwaddr=BC:24:11:AA:BB:CC,${NET}`,
      ["hwaddr", "type"],
      true,
    ],
    [
      "a MAC we chose, changed",
      `${NET},hwaddr=bc:24:11:aa:bb:cc`,
      `hwaddr=BC:24:11:AA:BB:00,${NET}`,
      ["hwaddr", "type"],
      false,
    ],
    ["another address", "name=eth0,ip=10.0.0.5/24", "name=eth0,ip=10.0.0.6/24", ["hwaddr"], false],
    ["a gateway left over", "name=eth0,ip=dhcp", "name=eth0,ip=dhcp,gw=10.0.0.1", ["hwaddr", "type"], false],
  ])("%s", (_, desired, actual, filledIn, expected) => {
    expect(propertiesEqual(desired, actual, filledIn)).toBe(expected);
  });
});

const REALM_INPUT: RealmSettingsInput = {
  baseDn: "dc=example,dc=com",
  servers: ["ldap1", "ldap2"],
  default: true,
  verifyCertificate: false,
  emailAttribute: "mail",
  syncScope: "both",
  comment: "managed by LdapPair ldap-operator/site-a",
};

/** The runbook's realm as GET /access/domains/ldap returns it after a create with realmCreateParams. */
const READ_BACK = {
  type: "ldap",
  base_dn: "dc=example,dc=com",
  user_attr: "uid",
  server1: "ldap1",
  server2: "ldap2",
  mode: "ldaps",
  verify: 0,
  default: 1,
  sync_attributes: "email=mail",
  "sync-defaults-options": "scope=both",
  comment: "managed by LdapPair ldap-operator/site-a",
  digest: "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567",
};

describe("runbookRealm", () => {
  it("maps the LdapPair to the runbook's realm table", () => {
    expect(realmCreateParams("ldap", runbookRealm(REALM_INPUT))).toEqual({
      realm: "ldap",
      type: "ldap",
      base_dn: "dc=example,dc=com",
      user_attr: "uid",
      server1: "ldap1",
      server2: "ldap2",
      mode: "ldaps",
      verify: "0",
      default: "1",
      sync_attributes: "email=mail",
      "sync-defaults-options": "scope=both",
      comment: "managed by LdapPair ldap-operator/site-a",
    });
  });

  it("owns the port and TFA as absent, and leaves the comment alone when given none", () => {
    const { comment: _, ...noComment } = REALM_INPUT;
    const settings = runbookRealm(noComment);
    expect("port" in settings && settings.port === undefined).toBe(true);
    expect("tfa" in settings && settings.tfa === undefined).toBe(true);
    expect("comment" in settings).toBe(false);
  });

  it("adds first and last names to the synced attributes with syncNames", () => {
    expect(runbookRealm({ ...REALM_INPUT, syncNames: true }).sync_attributes).toBe(
      "email=mail,firstname=givenname,lastname=sn",
    );
  });
});

describe("realmUpdate", () => {
  const desired = runbookRealm(REALM_INPUT);
  it.each([
    ["the read-back of a create", {}, undefined],
    ["booleans and numbers as strings", { verify: "0", default: "1" }, undefined],
    ["verify not stored (its default, off)", { verify: undefined }, undefined],
    ["the port stored at the mode's default", { port: 636 }, undefined],
    ["options the operator does not own", { filter: "(uid=*)", bind_dn: "cn=x,dc=y" }, undefined],
    ["another fallback server", { server2: "ldap3" }, { set: { server2: "ldap2" }, delete: [] }],
    [
      "another scope",
      { "sync-defaults-options": "scope=users" },
      { set: { "sync-defaults-options": "scope=both" }, delete: [] },
    ],
    [
      "an extra sync option",
      { "sync-defaults-options": "enable-new=0,scope=both" },
      { set: { "sync-defaults-options": "scope=both" }, delete: [] },
    ],
    ["no longer the default realm", { default: undefined }, { set: { default: "1" }, delete: [] }],
    ["a port set by hand", { port: 1636 }, { set: {}, delete: ["port"] }],
    ["a TFA set by hand", { tfa: "type=oath" }, { set: {}, delete: ["tfa"] }],
    [
      "mode plain ldap and a port of 636",
      { mode: "ldap", port: 636 },
      { set: { mode: "ldaps" }, delete: [] },
    ],
    [
      "several at once",
      { verify: 1, mode: undefined, comment: "mine" },
      { set: { verify: "0", mode: "ldaps", comment: REALM_INPUT.comment }, delete: [] },
    ],
  ])("%s", (_, drift, expected) => {
    const actual: Record<string, unknown> = { ...READ_BACK, ...drift };
    for (const [k, v] of Object.entries(drift)) if (v === undefined) delete actual[k];
    expect(realmUpdate(desired, actual)).toEqual(expected);
  });

  it("compares property strings re-printed with sorted keys as maps", () => {
    const written = {
      ...desired,
      sync_attributes: "email=mail,firstname=givenname",
      "sync-defaults-options": "scope=both,enable-new=1,remove-vanished=acl;entry;properties",
    };
    const readBack = {
      ...READ_BACK,
      sync_attributes: "firstname=givenname, email=mail",
      "sync-defaults-options": "enable-new=1,remove-vanished=acl;entry;properties,scope=both",
    };
    expect(realmUpdate(written, readBack)).toBeUndefined();
  });

  it("asks for no PUT when not a single setting differs (Proxmox: 500 no options specified)", () => {
    const params = realmCreateParams("ldap", desired);
    const { realm: _r, type: _t, ...stored } = params;
    expect(realmUpdate(desired, stored)).toBeUndefined();
  });

  it("turns verification on when the spec asks for it", () => {
    expect(realmUpdate(runbookRealm({ ...REALM_INPUT, verifyCertificate: true }), READ_BACK)).toEqual({
      set: { verify: "1" },
      delete: [],
    });
  });
});

describe("node DNS", () => {
  it.each([
    [
      { search: "a.example.com b.example.com", dns1: "10.0.0.53" },
      { search: "a.example.com", nameservers: ["10.0.0.53"] },
    ],
    [
      { search: "example.com", dns1: "10.0.0.53", dns3: "1.1.1.1" },
      { search: "example.com", nameservers: ["10.0.0.53", "1.1.1.1"] },
    ],
    [
      { search: "example.com", dns1: "10.0.0.53", dns2: "10.0.0.53" },
      { search: "example.com", nameservers: ["10.0.0.53"] },
    ],
    [{ search: "Example.COM" }, { search: "example.com", nameservers: [] }],
    [{}, { search: "", nameservers: [] }],
  ])("normalizes %j", (dns, expected) => {
    expect(normalizeNodeDns(dns)).toEqual(expected);
  });

  it.each([
    [
      "puts the site's nameserver first and keeps the others behind it",
      { search: "old.lan", dns1: "1.1.1.1", dns2: "10.0.0.53", dns3: "8.8.8.8" },
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1", dns3: "8.8.8.8" },
    ],
    ["a node without nameservers", { search: "old.lan" }, { search: "example.com", dns1: "10.0.0.53" }],
    [
      "drops the fourth when three were there",
      { search: "x", dns1: "1.1.1.1", dns2: "8.8.8.8", dns3: "9.9.9.9" },
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1", dns3: "8.8.8.8" },
    ],
  ])("desiredNodeDns %s", (_, current, expected) => {
    expect(desiredNodeDns(current, { nameserver: "10.0.0.53", search: "example.com" })).toEqual(expected);
  });

  it.each([
    [
      "read back as written",
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" },
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" },
      undefined,
    ],
    [
      "dns1 and dns3 renumbered to dns1 and dns2",
      { search: "example.com", dns1: "10.0.0.53", dns3: "1.1.1.1" },
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" },
      undefined,
    ],
    [
      "a nameserver given twice, written once",
      { search: "example.com", dns1: "10.0.0.53", dns2: "10.0.0.53" },
      { search: "example.com", dns1: "10.0.0.53" },
      undefined,
    ],
    [
      "only the first search domain kept",
      { search: "example.com other.com", dns1: "10.0.0.53" },
      { search: "example.com", dns1: "10.0.0.53" },
      undefined,
    ],
    [
      "another search domain",
      { search: "example.com", dns1: "10.0.0.53" },
      { search: "old.lan", dns1: "10.0.0.53" },
      { search: "example.com", dns1: "10.0.0.53" },
    ],
    [
      "the site's nameserver second: resolvers ask the first",
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" },
      { search: "example.com", dns1: "1.1.1.1", dns2: "10.0.0.53" },
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" },
    ],
    [
      "a gap in the desired numbering is closed in the PUT",
      { search: "example.com", dns1: "10.0.0.53", dns3: "1.1.1.1" },
      { search: "example.com", dns1: "10.0.0.53" },
      { search: "example.com", dns1: "10.0.0.53", dns2: "1.1.1.1" },
    ],
  ])("nodeDnsUpdate: %s", (_, desired, current, expected) => {
    expect(nodeDnsUpdate(desired, current)).toEqual(expected);
  });
});

describe("container config", () => {
  it.each([
    ["memory", 512, "512", true],
    ["memory", 1024, 512, false],
    ["memory", 512, undefined, true],
    ["swap", 256, undefined, false],
    ["cores", 2, undefined, false],
    ["onboot", true, 1, true],
    ["onboot", true, "1", true],
    ["onboot", false, undefined, true],
    ["onboot", true, 0, false],
    ["nameserver", "10.0.0.53 1.1.1.1", "10.0.0.53 1.1.1.1", true],
    ["nameserver", ["10.0.0.53", "1.1.1.1"], "10.0.0.53 1.1.1.1", true],
    ["nameserver", "10.0.0.53,1.1.1.1", "10.0.0.53 1.1.1.1", true],
    ["nameserver", "1.1.1.1 10.0.0.53", "10.0.0.53 1.1.1.1", false],
    ["env", "A=1\0B=2", "B=2\0A=1", true],
    ["env", ["A=1", "B=x=y"], "B=x=y\0A=1", true],
    ["env", "A=1\0B=2", "A=1\0B=3", false],
    ["env", "A=1\0B=2", "A=1", false],
    ["env", "A=1", "A=1\0B=2", false],
    ["tags", "b;a", "a;b", true],
    ["tags", "a;c", "a;b", false],
    [
      "net0",
      "name=eth0,bridge=vmbr0,ip=dhcp",
      "bridge=vmbr0,hwaddr=BC:24:11:00:00:01,ip=dhcp,name=eth0,type=veth",
      true,
    ],
    ["net0", "name=eth0,bridge=vmbr0,ip=dhcp", "name=eth0,bridge=vmbr1,ip=dhcp", false],
    ["features", "nesting=1", "nesting=true", true],
    ["description", "managed by LdapPair a/b", "managed by LdapPair a/b\n", true],
    ["description", "managed by LdapPair a/b", "managed by LdapPair a/c", false],
    ["hostname", "ldap1", "ldap1", true],
    ["hostname", "ldap1", "ldap2", false],
    ["entrypoint", "docker-entrypoint.sh node index.js", "docker-entrypoint.sh node index.js", true],
  ])("%s: %j vs read-back %j -> %s", (key, desired, actual, expected) => {
    expect(configValueEqual(key, desired, actual)).toBe(expected);
  });

  const readBack = {
    hostname: "ldap1",
    memory: 512,
    swap: 512,
    cores: 1,
    onboot: 1,
    nameserver: "10.0.0.53 1.1.1.1",
    env: "SQL_URI=postgres://u:p@db/x\0LDAP_COMMON_NAME=ldap1",
    tags: "ldappair-config-0123456789abcdef;ldappair-owner-u;ldappair-server-ldap1",
    description: "managed\n",
    digest: "ffffffffffffffffffffffffffffffffffffffff",
  };

  it("asks for no PUT when the read-back equals what was written", () => {
    expect(
      configUpdate(
        {
          hostname: "ldap1",
          memory: "512",
          cores: 1,
          onboot: true,
          nameserver: ["10.0.0.53", "1.1.1.1"],
          env: ["LDAP_COMMON_NAME=ldap1", "SQL_URI=postgres://u:p@db/x"],
          tags: "ldappair-server-ldap1;ldappair-owner-u;ldappair-config-0123456789abcdef",
          description: "managed",
          protection: undefined,
        },
        readBack,
      ),
    ).toBeUndefined();
  });

  it("PUTs only what differs, in Proxmox's form, and deletes what must go", () => {
    expect(
      configUpdate(
        {
          memory: 1024,
          onboot: true,
          nameserver: ["10.0.0.53"],
          env: ["LDAP_COMMON_NAME=ldap1", "SQL_URI=postgres://u:p@db/x", "LOG_LEVEL=debug"],
          description: undefined,
          swap: undefined,
        },
        readBack,
      ),
    ).toEqual({
      set: {
        memory: "1024",
        nameserver: "10.0.0.53",
        env: "LDAP_COMMON_NAME=ldap1\0SQL_URI=postgres://u:p@db/x\0LOG_LEVEL=debug",
      },
      delete: ["description", "swap"],
    });
  });

  it("keeps the last of two entries of one name, as the container's environment does", () => {
    expect([...parseEnv("A=1\0B=2\0A=3")]).toEqual([
      ["A", "3"],
      ["B", "2"],
    ]);
  });
});
