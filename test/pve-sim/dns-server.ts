// The site's DNSMasq in miniature: a UDP DNS server on loopback that answers
// A queries for registered hostnames, bare (`ldap1`) and under the search
// domain (`ldap1.example.com`). Records change at runtime as containers
// start, stop and change address. Anything else gets NXDOMAIN (there is no
// upstream to forward to); a known name asked for another type gets an empty
// answer so resolvers do not treat it as missing.
import dgram from "node:dgram";
import { Resolver } from "node:dns/promises";

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE_OK = 0;
const RCODE_FORMERR = 1;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

export interface DnsServerOptions {
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  /** Names under this domain resolve like the bare name. */
  searchDomain?: string;
  ttl?: number;
}

interface Question {
  name: string;
  type: number;
  cls: number;
  /** Byte offset just past the question section. */
  end: number;
}

function parseQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  const labels: string[] = [];
  let off = 12;
  for (;;) {
    const len = msg[off];
    if (len === undefined || len > 63) return undefined; // no compression in questions
    off++;
    if (len === 0) break;
    if (off + len > msg.length) return undefined;
    labels.push(msg.toString("latin1", off, off + len));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return {
    name: labels.join(".").toLowerCase(),
    type: msg.readUInt16BE(off),
    cls: msg.readUInt16BE(off + 2),
    end: off + 4,
  };
}

export class DnsServer {
  private readonly socket = dgram.createSocket("udp4");
  private readonly records = new Map<string, string>();
  private readonly opts: Required<DnsServerOptions>;
  private bound: { host: string; port: number } | undefined;
  /** Every query received, for tests that check what was resolved. */
  readonly queries: { name: string; type: number; at: number }[] = [];

  constructor(opts: DnsServerOptions = {}) {
    this.opts = {
      host: opts.host ?? "127.0.0.1",
      port: opts.port ?? 0,
      searchDomain: (opts.searchDomain ?? "").toLowerCase().replace(/^\.|\.$/g, ""),
      ttl: opts.ttl ?? 0, // records move between tests: let nobody cache them
    };
    this.socket.on("message", (msg, rinfo) => this.answer(msg, rinfo));
  }

  get searchDomain(): string {
    return this.opts.searchDomain;
  }

  /** host:port as accepted by dns.Resolver#setServers. */
  get address(): { host: string; port: number; server: string } {
    if (!this.bound) throw new Error("DNS server not started");
    return { ...this.bound, server: `${this.bound.host}:${this.bound.port}` };
  }

  async start(): Promise<{ host: string; port: number; server: string }> {
    await new Promise<void>((resolve, reject) => {
      this.socket.once("error", reject);
      this.socket.bind(this.opts.port, this.opts.host, () => {
        this.socket.off("error", reject);
        resolve();
      });
    });
    const a = this.socket.address();
    this.bound = { host: a.address, port: a.port };
    return this.address;
  }

  async stop(): Promise<void> {
    if (!this.bound) return;
    this.bound = undefined;
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private key(name: string): string {
    let n = name.toLowerCase().replace(/\.$/, "");
    const d = this.opts.searchDomain;
    if (d && n.endsWith(`.${d}`)) n = n.slice(0, -d.length - 1);
    return n;
  }

  /** Registers or moves a hostname. */
  setRecord(hostname: string, ipv4: string): void {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ipv4)) throw new Error(`not an IPv4 address: ${ipv4}`);
    this.records.set(this.key(hostname), ipv4);
  }

  removeRecord(hostname: string, onlyIfIp?: string): void {
    const k = this.key(hostname);
    if (onlyIfIp === undefined || this.records.get(k) === onlyIfIp) this.records.delete(k);
  }

  lookup(hostname: string): string | undefined {
    return this.records.get(this.key(hostname));
  }

  listRecords(): Record<string, string> {
    return Object.fromEntries(this.records);
  }

  private answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length < 12 || msg[2]! & 0x80) return; // too short, or a response
    const id = msg.readUInt16BE(0);
    const flagsIn = msg.readUInt16BE(2);
    const opcode = (flagsIn >> 11) & 0xf;
    const q = parseQuestion(msg);
    let rcode = RCODE_OK;
    let ip: string | undefined;
    if (opcode !== 0) rcode = RCODE_NOTIMP;
    else if (!q) rcode = RCODE_FORMERR;
    else {
      this.queries.push({ name: q.name, type: q.type, at: Date.now() });
      ip = this.lookup(q.name);
      if (ip === undefined) rcode = RCODE_NXDOMAIN;
      else if (q.type !== TYPE_A || q.cls !== CLASS_IN) ip = undefined; // NODATA
    }
    const question = q ? msg.subarray(12, q.end) : Buffer.alloc(0);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id, 0);
    // QR, opcode echoed, AA, RD echoed, RA, rcode.
    header.writeUInt16BE(0x8000 | (opcode << 11) | 0x0400 | (flagsIn & 0x0100) | 0x0080 | rcode, 2);
    header.writeUInt16BE(q ? 1 : 0, 4);
    header.writeUInt16BE(ip ? 1 : 0, 6);
    const parts = [header, question];
    if (ip) {
      const rr = Buffer.alloc(16);
      rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
      rr.writeUInt16BE(TYPE_A, 2);
      rr.writeUInt16BE(CLASS_IN, 4);
      rr.writeUInt32BE(this.opts.ttl, 6);
      rr.writeUInt16BE(4, 10);
      ip.split(".").forEach((o, i) => rr.writeUInt8(Number(o), 12 + i));
      parts.push(rr);
    }
    this.socket.send(Buffer.concat(parts), rinfo.port, rinfo.address);
  }
}

/** A resolver that asks only the given DNS server (as a node configured with it would). */
export async function resolveVia(server: string, hostname: string, timeoutMs = 1000): Promise<string> {
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  r.setServers([server]);
  const [ip] = await r.resolve4(hostname);
  if (!ip) throw new Error(`no A record for ${hostname}`);
  return ip;
}
