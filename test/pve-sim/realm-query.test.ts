// The search requests of the realm sync, compared with what Proxmox sends (reference text).
import { describe, expect, it } from "vitest";
import { groupQuery, parseSyncAttributes, userQuery } from "./realm-sync.js";

const seed = { server1: "ldap1", user_attr: "uid", sync_attributes: "email=mail" };

describe("realm sync queries", () => {
  it("builds Proxmox's user filter and attributes for the seed's realm", () => {
    expect(userQuery(seed)).toEqual({
      filter:
        "(&(|(uid=*)(enable=*)(expire=*)(firstname=*)(lastname=*)(email=*)(comment=*)(keys=*)(mail=*))(|(objectclass=inetorgperson)(objectclass=posixaccount)(objectclass=person)(objectclass=user)))",
      attributes: [
        "uid",
        "enable",
        "expire",
        "firstname",
        "lastname",
        "email",
        "comment",
        "keys",
        "mail",
        "memberOf",
      ],
    });
  });

  it("builds the group filter from group_classes and reads only member and uniqueMember", () => {
    expect(groupQuery(seed)).toEqual({
      filter:
        "(|(objectclass=groupOfNames)(objectclass=group)(objectclass=univentionGroup)(objectclass=ipausergroup))",
      attributes: ["member", "uniqueMember"],
    });
    expect(
      groupQuery({ ...seed, group_filter: "cn=dev*", group_name_attr: "cn", group_classes: "posixGroup" }),
    ).toEqual({
      filter: "(&(cn=dev*)(|(objectclass=posixGroup)))",
      attributes: ["member", "uniqueMember", "cn"],
    });
  });

  it("adds the realm's filter and the mapped sync attributes", () => {
    const q = userQuery({
      ...seed,
      sync_attributes: "email=mail,firstname=givenname",
      filter: "(status=active)",
    });
    expect(q.filter.startsWith("(&(status=active)(&(|(uid=*)")).toBe(true);
    expect(q.attributes).toContain("givenname");
    expect(parseSyncAttributes("email=mail, lastname=sn,bogus=x")).toEqual({ email: "mail", lastname: "sn" });
  });
});
