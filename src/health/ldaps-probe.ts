// Runs the probe of probe-plan.ts against one gateway: a fresh TLS connection
// of its own (no pooling, so a live listener is proven each time), then
// anonymous searches over it through ldapts, each step under its own timeout.
// The probe holds no credential, so nothing secret can reach its result.
import net from "node:net";
import { performance } from "node:perf_hooks";
import tls from "node:tls";
import { Client, ResultCodeError, type Entry } from "ldapts";
import {
  judgeProbe,
  knownUserFilter,
  probePlan,
  stepFailure,
  type FoundEntry,
  type PlannedStep,
  type ProbeExpectation,
  type ProbeTimeouts,
  type ProbeVerdict,
  type StepFault,
  type StepObservations,
  type StepOutcome,
} from "./probe-plan.js";

export const LDAPS_PORT = 636;

export interface ProbeTarget {
  host: string;
  port?: number;
  /**
   * PEM CA bundle. Without it the certificate is accepted unchecked, as the
   * realm's verify=0 does: the gateway makes its own self-signed one.
   */
  ca?: string | Buffer;
  /** The name the certificate must carry when `ca` is given (the gateway's LDAP_COMMON_NAME); default: host. */
  serverName?: string;
}

export interface ProbeOptions {
  timeouts?: Partial<ProbeTimeouts>;
  signal?: AbortSignal;
}

export interface ProbeResult extends ProbeVerdict {
  /** host:port as probed. */
  address: string;
  durationMs: number;
}

export async function probeServer(
  target: ProbeTarget,
  expectation: ProbeExpectation,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  const port = target.port ?? LDAPS_PORT;
  const plan = probePlan(expectation, options.timeouts);
  const started = performance.now();
  const outcomes: StepOutcome[] = [];
  const session = new Session(target, port, options.signal);
  try {
    for (const planned of plan) {
      const outcome = await runStep(session, planned, expectation);
      outcomes.push(outcome);
      if (stepFailure(outcome, expectation) !== undefined) break;
    }
  } finally {
    await session.close();
  }
  return {
    ...judgeProbe(plan, outcomes, expectation),
    address: `${target.host}:${port}`,
    durationMs: Math.round(performance.now() - started),
  };
}

function runStep(session: Session, { step, timeoutMs }: PlannedStep, expectation: ProbeExpectation) {
  switch (step) {
    case "connect":
      return timed(step, timeoutMs, session, () => session.connect());
    case "rootDse":
      return timed(step, timeoutMs, session, () => session.rootDse());
    case "knownUser":
      return timed(step, timeoutMs, session, () =>
        session.findUser(expectation.baseDn, expectation.knownUser),
      );
    case "userCount":
      return timed(step, timeoutMs, session, () => session.countUsers(expectation.baseDn));
  }
}

/** Runs one step under its timeout; a step that overruns has its connection torn down. */
async function timed<S extends keyof StepObservations>(
  step: S,
  timeoutMs: number,
  session: Session,
  work: () => Promise<StepObservations[S]>,
): Promise<StepOutcome> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  const result = await session.within(timeoutMs, work());
  const durationMs = elapsed();
  // The casts pair `step` with its own observation type, which TypeScript
  // cannot follow through the generic S into the union.
  if ("fault" in result) {
    const fault: StepFault =
      result.fault === "timeout"
        ? { kind: "timeout", message: session.timeoutMessage(step, timeoutMs) }
        : result.fault;
    return { step, durationMs, fault } as StepOutcome;
  }
  return { step, durationMs, observed: result.value } as StepOutcome;
}

type Settled<T> = { value: T } | { fault: "timeout" | StepFault };

/** One probe's connection and client; closed on every path. */
class Session {
  private socket: tls.TLSSocket | undefined;
  private client: Client | undefined;
  private tcpConnected = false;

  constructor(
    private readonly target: ProbeTarget,
    private readonly port: number,
    private readonly signal: AbortSignal | undefined,
  ) {}

  /** TCP and the TLS handshake, which a server can accept and then never answer. */
  connect(): Promise<StepObservations["connect"]> {
    return new Promise((resolve, reject) => {
      const socket = tls.connect({
        host: this.target.host,
        port: this.port,
        ...this.tlsOptions(),
      });
      this.socket = socket;
      socket.once("connect", () => (this.tcpConnected = true));
      socket.once("secureConnect", () => resolve({ protocol: socket.getProtocol() ?? "unknown" }));
      socket.once("error", (err) => reject(err));
    });
  }

  private tlsOptions(): tls.ConnectionOptions {
    const { ca, serverName, host } = this.target;
    if (ca === undefined) return { rejectUnauthorized: false };
    const name = serverName ?? host;
    // SNI takes names only; an address is still checked against the certificate's IP SANs.
    return {
      ca,
      rejectUnauthorized: true,
      ...(net.isIP(name) !== 0 ? {} : { servername: name }),
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(name, cert),
    };
  }

  private ldap(): Client {
    this.client ??= this.clientOverConnection();
    return this.client;
  }

  private clientOverConnection(): Client {
    const socket = this.socket;
    if (!socket) throw new Error("not connected");
    let handedOver = false;
    return new Client({
      url: `ldaps://${urlHost(this.target.host)}:${this.port}`,
      // ldapts takes the connection the connect step made; it must never dial
      // a second one behind the probe's back.
      createSecureConnection: () => {
        if (handedOver) throw new Error("the connection was lost; the probe does not reconnect");
        handedOver = true;
        return socket;
      },
    });
  }

  async rootDse(): Promise<StepObservations["rootDse"]> {
    // No attribute list: the gateway drops requested names with upper case letters.
    const { searchEntries } = await this.ldap().search("", { scope: "base", filter: "(objectClass=*)" });
    const dse = searchEntries[0];
    return { namingContexts: dse ? values(dse, "namingContexts") : [] };
  }

  async findUser(baseDn: string, uid: string): Promise<StepObservations["knownUser"]> {
    const { searchEntries } = await this.ldap().search(baseDn, {
      scope: "sub",
      filter: knownUserFilter(uid),
      attributes: ["uid"],
    });
    return { entries: searchEntries.map((e): FoundEntry => ({ dn: e.dn, uid: values(e, "uid") })) };
  }

  async countUsers(baseDn: string): Promise<StepObservations["userCount"]> {
    const { searchEntries } = await this.ldap().search(baseDn, {
      scope: "sub",
      filter: "(objectClass=posixAccount)",
      attributes: ["uid"],
    });
    return { count: searchEntries.length };
  }

  /** Settles with the work's value, its failure as a fault, a timeout, or cancellation. */
  within<T>(timeoutMs: number, work: Promise<T>): Promise<Settled<T>> {
    return new Promise((resolve) => {
      const finish = (result: Settled<T>) => {
        clearTimeout(timer);
        this.signal?.removeEventListener("abort", cancel);
        if ("fault" in result) this.socket?.destroy();
        resolve(result);
      };
      const cancel = () => finish({ fault: { kind: "cancelled", message: "the probe was cancelled" } });
      const timer = setTimeout(() => finish({ fault: "timeout" }), timeoutMs);
      if (this.signal?.aborted) return cancel();
      this.signal?.addEventListener("abort", cancel, { once: true });
      work.then(
        (value) => finish({ value }),
        (err: unknown) => finish({ fault: { kind: "error", message: describeError(err) } }),
      );
    });
  }

  timeoutMessage(step: string, timeoutMs: number): string {
    if (step !== "connect") return `no answer within ${timeoutMs} ms`;
    return this.tcpConnected
      ? `TCP connection accepted, but no TLS handshake within ${timeoutMs} ms`
      : `no TCP connection within ${timeoutMs} ms`;
  }

  /** Unbinds politely when the connection is still up, so a stopping gateway is not held open by us. */
  async close(): Promise<void> {
    const socket = this.socket;
    if (!socket) return;
    if (this.client && !socket.destroyed) {
      await Promise.race([this.client.unbind().catch(() => undefined), delay(250)]);
    }
    socket.destroy();
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function values(entry: Entry, attribute: string): string[] {
  // The gateway sends names in its own case; LDAP attribute names are case-insensitive.
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  const raw = key === undefined ? undefined : entry[key];
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map((v) => (Buffer.isBuffer(v) ? v.toString("utf8") : String(v)));
}

/** IPv6 literals need brackets in a URL. */
function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

function describeError(err: unknown): string {
  if (err instanceof ResultCodeError) return `LDAP result code ${err.code}: ${err.message}`;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code === "ECONNRESET") return "connection reset by the server";
  const message = err instanceof Error ? err.message : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
