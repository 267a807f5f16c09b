// The database preflight: before anything is taken down, connect with the
// gateways' SQL URI and run their four queries the way the gateway does
// (`?` bound to one value), so a wrong password, a database that is down or a
// broken query is found while the running servers still serve.
//
// The URI's password never leaves this module: every message is scrubbed of
// it, and the URI itself is never echoed.
import { performance } from "node:perf_hooks";
import pg from "pg";
import type { GatewayQueries } from "../gateway/queries.js";
import { Redactor } from "../observability/redact.js";
import { toPgPlaceholders } from "./sql-placeholders.js";

export type QueryVariable = keyof GatewayQueries;

/** Run order, and which queries take the user name as their parameter (as the gateway binds it). */
export const PREFLIGHT_QUERIES: ReadonlyArray<{ variable: QueryVariable; takesUser: boolean }> = [
  { variable: "SQL_QUERY_ALL_USERS", takesUser: false },
  { variable: "SQL_QUERY_ONE_USER", takesUser: true },
  { variable: "SQL_QUERY_ALL_GROUPS", takesUser: false },
  { variable: "SQL_QUERY_GROUPS_BY_MEMBER", takesUser: true },
];

export interface PreflightOptions {
  /** Bound on TCP connect, TLS and authentication. */
  connectTimeoutMs?: number;
  /** The server cancels a query after this; the client gives up shortly after, should the server not answer at all. */
  statementTimeoutMs?: number;
  /** TLS to the database, as the gateway's SQL_SSL would set it; default: what the URI says. */
  ssl?: pg.ClientConfig["ssl"];
}

export const DEFAULT_PREFLIGHT_OPTIONS = { connectTimeoutMs: 5_000, statementTimeoutMs: 5_000 } as const;

/** How long past the server's statement timeout the client waits before calling the database unresponsive. */
const CLIENT_GRACE_MS = 1_000;

export interface QueryReport {
  variable: QueryVariable;
  status: "passed" | "failed" | "notRun";
  durationMs?: number;
  rows?: number;
  /** `<VARIABLE>: <the database's message>`, password removed. */
  error?: string;
}

export interface PreflightResult {
  reachable: boolean;
  /** Why the connection failed, password removed. */
  connectError?: string;
  /** Rows of SQL_QUERY_ALL_USERS: what a full listing of the gateway returns. */
  userCount?: number;
  /** The first row's `username` from SQL_QUERY_ALL_USERS, for the probe's `(uid=...)` search. */
  knownUser?: string;
  groupCount?: number;
  queries: QueryReport[];
  /** Reachable and all four queries ran. */
  ok: boolean;
  /** One sentence for a condition message, absent when ok. */
  problem?: string;
  durationMs: number;
}

export async function preflight(
  sqlUri: string,
  queries: GatewayQueries,
  options: PreflightOptions = {},
): Promise<PreflightResult> {
  const started = performance.now();
  const finish = (partial: Omit<PreflightResult, "ok" | "problem" | "durationMs">): PreflightResult => {
    const durationMs = Math.round(performance.now() - started);
    const problem = preflightProblem(partial);
    return { ...partial, ok: problem === undefined, ...(problem ? { problem } : {}), durationMs };
  };
  const scrub = uriPasswordScrubber(sqlUri);
  if (!isPostgresUri(sqlUri)) {
    return finish({
      reachable: false,
      connectError: "the SQL URI is not a postgres:// or postgresql:// URI with a host",
      queries: notRun("the SQL URI is malformed"),
    });
  }
  const { connectTimeoutMs, statementTimeoutMs } = { ...DEFAULT_PREFLIGHT_OPTIONS, ...options };
  const clientTimeoutMs = statementTimeoutMs + CLIENT_GRACE_MS;
  let client: pg.Client | undefined;
  try {
    // Inside the try: pg reads the files a URI names (sslrootcert, sslcert, sslkey) as it is built.
    client = new pg.Client({
      connectionString: sqlUri,
      connectionTimeoutMillis: connectTimeoutMs,
      statement_timeout: statementTimeoutMs,
      query_timeout: clientTimeoutMs,
      ...(options.ssl === undefined ? {} : { ssl: options.ssl }),
    });
    // A connection dropped mid-run surfaces through the failed query; this keeps it from crashing the process.
    client.on("error", () => undefined);
    await client.connect();
  } catch (err) {
    if (client) await closeWithin(client, CLIENT_GRACE_MS);
    return finish({
      reachable: false,
      connectError: scrub(messageOf(err)),
      queries: notRun("database unreachable"),
    });
  }
  try {
    return finish({ reachable: true, ...(await runQueries({ client, scrub, clientTimeoutMs }, queries)) });
  } finally {
    await closeWithin(client, CLIENT_GRACE_MS);
  }
}

/** One connected run: the client, how to clean messages, and when the client gives up on an answer. */
interface Run {
  client: pg.Client;
  scrub: (text: string) => string;
  clientTimeoutMs: number;
}

/** A server that stopped answering may never acknowledge the goodbye; do not wait on it. */
async function closeWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)));
  await Promise.race([client.end().catch(() => undefined), gaveUp]);
  clearTimeout(timer);
}

async function runQueries(run: Run, queries: GatewayQueries) {
  const reports: QueryReport[] = [];
  const found: { userCount?: number; knownUser?: string; groupCount?: number } = {};
  let unresponsive = false;
  for (const { variable, takesUser } of PREFLIGHT_QUERIES) {
    if (unresponsive) {
      reports.push({
        variable,
        status: "notRun",
        error: `${variable}: not run, the database stopped answering`,
      });
      continue;
    }
    // Without a known user the parameterised queries still run, to prove they parse and plan.
    const params = takesUser ? [found.knownUser ?? ""] : [];
    const report = await runQuery(run, variable, queries[variable], params);
    reports.push(report.report);
    unresponsive = report.clientTimedOut;
    if (report.report.status !== "passed") continue;
    if (variable === "SQL_QUERY_ALL_USERS") {
      found.userCount = report.rows.length;
      const first = report.rows[0]?.username;
      if (typeof first === "string" && first !== "") found.knownUser = first;
    }
    if (variable === "SQL_QUERY_ALL_GROUPS") found.groupCount = report.rows.length;
  }
  return { ...found, queries: reports };
}

async function runQuery(
  { client, scrub, clientTimeoutMs }: Run,
  variable: QueryVariable,
  sql: string,
  params: string[],
): Promise<{ report: QueryReport; rows: pg.QueryResultRow[]; clientTimedOut: boolean }> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    const res = await client.query(toPgPlaceholders(sql).text, params);
    const report: QueryReport = { variable, status: "passed", durationMs: elapsed(), rows: res.rows.length };
    return { report, rows: res.rows, clientTimedOut: false };
  } catch (err) {
    // node-postgres's own words when query_timeout passes with no answer at all.
    const clientTimedOut = messageOf(err) === "Query read timeout";
    const message = clientTimedOut
      ? `no answer within ${clientTimeoutMs} ms: the database stopped answering`
      : scrub(messageOf(err));
    const report: QueryReport = {
      variable,
      status: "failed",
      durationMs: elapsed(),
      error: `${variable}: ${message}`,
    };
    return { report, rows: [], clientTimedOut };
  }
}

function notRun(why: string): QueryReport[] {
  return PREFLIGHT_QUERIES.map(({ variable }) => ({
    variable,
    status: "notRun" as const,
    error: `${variable}: not run, ${why}`,
  }));
}

/** The first thing wrong, for a condition message; undefined when the database is fit for the gateway. */
export function preflightProblem(result: Pick<PreflightResult, "reachable" | "connectError" | "queries">) {
  if (!result.reachable) return `database unreachable: ${result.connectError ?? "unknown error"}`;
  const failed = result.queries.find((q) => q.status !== "passed");
  if (failed) return failed.error ?? `${failed.variable} did not run`;
  if (result.queries.length < PREFLIGHT_QUERIES.length) return "not every query ran";
  return undefined;
}

export function isPostgresUri(uri: string): boolean {
  try {
    const url = new URL(uri);
    return (url.protocol === "postgres:" || url.protocol === "postgresql:") && url.hostname !== "";
  } catch {
    return false;
  }
}

/** Removes the URI's password, in every form it may take, and any URI-embedded password, from a text. */
export function uriPasswordScrubber(uri: string): (text: string) => string {
  const redactor = new Redactor();
  // To the last "@": an unescaped "@" in a password ends up in the password, not the host.
  const raw = /^[a-z][a-z0-9+.-]*:\/\/[^:/@]*:(.*)@[^@]*$/is.exec(uri)?.[1];
  if (raw !== undefined) {
    redactor.registerSecret(raw);
    redactor.registerSecret(safeDecode(raw));
  }
  return (text) => redactor.redactText(text);
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
