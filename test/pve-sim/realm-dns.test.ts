// The site's DNS stand-in that the realm sync and the failover client use.
import dgram from "node:dgram";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DnsServer, resolveVia } from "./dns-server.js";

describe("DnsServer", () => {
  const dns = new DnsServer({ searchDomain: "example.com" });
  let server = "";
  beforeAll(async () => {
    server = (await dns.start()).server;
  });
  afterAll(() => dns.stop());

  it("answers A records for bare names and names under the search domain", async () => {
    dns.setRecord("ldap1", "127.0.0.11");
    expect(await resolveVia(server, "ldap1")).toBe("127.0.0.11");
    expect(await resolveVia(server, "LDAP1.example.com")).toBe("127.0.0.11");
  });

  it("answers NXDOMAIN for unknown names and names outside the search domain", async () => {
    await expect(resolveVia(server, "ldap9")).rejects.toMatchObject({ code: "ENOTFOUND" });
    await expect(resolveVia(server, "ldap1.other.org")).rejects.toMatchObject({ code: "ENOTFOUND" });
  });

  it("updates records at runtime", async () => {
    dns.setRecord("ldap2", "127.0.0.12");
    expect(await resolveVia(server, "ldap2")).toBe("127.0.0.12");
    dns.setRecord("ldap2.example.com", "127.0.0.22");
    expect(await resolveVia(server, "ldap2")).toBe("127.0.0.22");
    // Removing with a stale address leaves the new one alone.
    dns.removeRecord("ldap2", "127.0.0.12");
    expect(dns.lookup("ldap2")).toBe("127.0.0.22");
    dns.removeRecord("ldap2");
    await expect(resolveVia(server, "ldap2")).rejects.toMatchObject({ code: "ENOTFOUND" });
  });

  it("gives an empty answer, not NXDOMAIN, for other record types of a known name", async () => {
    const { Resolver } = await import("node:dns/promises");
    const r = new Resolver({ timeout: 1000, tries: 1 });
    r.setServers([server]);
    await expect(r.resolve6("ldap1")).rejects.toMatchObject({ code: "ENODATA" });
  });

  it("listens on loopback only and ignores garbage", async () => {
    expect(dns.address.host).toBe("127.0.0.1");
    const sock = dgram.createSocket("udp4");
    await new Promise<void>((r) =>
      sock.send(Buffer.from([1, 2, 3]), dns.address.port, "127.0.0.1", () => r()),
    );
    sock.close();
    expect(await resolveVia(server, "ldap1")).toBe("127.0.0.11");
  });
});
