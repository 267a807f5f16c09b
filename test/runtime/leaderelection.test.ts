import type { IncomingMessage, ServerResponse } from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { withTimeout } from "../../src/runtime/clock.js";
import { LeaderElector } from "../../src/runtime/leaderelection.js";
import { fakeApiServer, sendJson } from "./helpers/fakeapi.js";
import { eventually } from "./helpers/kube.js";

const silent = createLogger({ level: "error" });

/**
 * One Lease in memory, with optimistic locking; `beforeGet` may delay or hang a read. `seen.abandoned`
 * counts requests whose client closed them before an answer.
 */
function leaseApi(beforeGet: (n: number) => Promise<void> | "hang" = async () => undefined) {
  let lease: Record<string, unknown> | undefined;
  let rv = 1;
  const seen = { gets: 0, writes: 0, abandoned: 0 };
  const body = async (req: IncomingMessage) => {
    let text = "";
    for await (const chunk of req) text += String(chunk);
    return JSON.parse(text) as Record<string, unknown> & { metadata: Record<string, unknown> };
  };
  const store = (b: Record<string, unknown> & { metadata: Record<string, unknown> }) => {
    rv += 1;
    lease = { ...b, metadata: { ...b.metadata, namespace: "ns", resourceVersion: String(rv) } };
    return lease;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    res.on("close", () => {
      if (!res.writableEnded) seen.abandoned += 1;
    });
    if (req.method === "GET") {
      seen.gets += 1;
      const wait = beforeGet(seen.gets);
      if (wait === "hang") return;
      await wait;
      return lease ? sendJson(res, 200, lease) : sendJson(res, 404, { kind: "Status", code: 404 });
    }
    seen.writes += 1;
    const b = await body(req);
    const current = (lease?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion;
    if (req.method === "PUT" && b.metadata.resourceVersion !== current)
      return sendJson(res, 409, { kind: "Status", code: 409 });
    sendJson(res, req.method === "POST" ? 201 : 200, store(b));
  };
  const held = (holder: string) => {
    const now = new Date(0).toISOString();
    lease = {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "lease", namespace: "ns", resourceVersion: String(rv) },
      spec: {
        holderIdentity: holder,
        leaseDurationSeconds: 15,
        acquireTime: now,
        renewTime: now,
        leaseTransitions: 0,
      },
    };
  };
  return { handle: (req: IncomingMessage, res: ServerResponse) => void handle(req, res), seen, held };
}

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const done of cleanup.splice(0)) await done();
});

async function elector(
  api: ReturnType<typeof leaseApi>,
  extra: Partial<ConstructorParameters<typeof LeaderElector>[0]>,
) {
  const server = await fakeApiServer(api.handle);
  const events = { started: 0, stopped: 0 };
  const e = new LeaderElector({
    kubeConfig: server.kubeConfig,
    leaseName: "lease",
    leaseNamespace: "ns",
    identity: "me",
    logger: silent,
    onStartedLeading: () => (events.started += 1),
    onStoppedLeading: () => (events.stopped += 1),
    ...extra,
  });
  cleanup.push(async () => {
    // Bounded, so an elector stuck on a hung read fails its test instead of hanging the run.
    await withTimeout(e.stop(false), 2_000, undefined);
    await server.close();
  });
  return { e, events };
}

describe("LeaderElector", () => {
  it("a standby whose lease read hangs gives up on it and campaigns again", async () => {
    const api = leaseApi((n) => (n === 1 ? "hang" : Promise.resolve()));
    const { e, events } = await elector(api, {
      timing: { leaseDurationMs: 3_000, renewDeadlineMs: 200, retryPeriodMs: 50 },
    });
    e.start();
    await eventually(() => events.started === 1, 10_000);
    expect(api.seen.gets).toBeGreaterThanOrEqual(2);
  });

  it("judges a held lease's age from when its read returned, not when it was sent", async () => {
    // Fake monotonic clock that only moves while a read is in flight: the first read takes 10 s, the second 6 s.
    let clock = 0;
    const api = leaseApi(async (n) => {
      clock += n === 1 ? 10_000 : n === 2 ? 6_000 : 0;
    });
    api.held("other");
    const { e } = await elector(api, {
      timing: { leaseDurationMs: 15_000, renewDeadlineMs: 100, retryPeriodMs: 20 },
      monotonicNow: () => clock,
    });
    e.start();
    await eventually(() => api.seen.gets >= 4, 10_000);
    // First seen at 10 s, unchanged since: it expires at 25 s, and the clock stands at 16 s.
    expect(api.seen.writes).toBe(0);
    expect(e.isLeader).toBe(false);
  });

  it("a standby does not take over a live lease when the wall clock jumps ahead", async () => {
    // Every reading of the wall clock finds it 20 s further on, past the whole 15 s lease.
    let wall = 0;
    const api = leaseApi();
    api.held("other");
    const { e } = await elector(api, {
      timing: { leaseDurationMs: 15_000, renewDeadlineMs: 100, retryPeriodMs: 20 },
      now: () => (wall += 20_000),
    });
    e.start();
    await eventually(() => api.seen.gets >= 5, 10_000);
    expect(api.seen.writes).toBe(0);
    expect(e.isLeader).toBe(false);
  });

  it("cancels a renewal that outlives the renew deadline, so it cannot renew after leadership is lost", async () => {
    // The first renewal's read answers after 1 s, long after the 300 ms renew deadline.
    const api = leaseApi((n) => (n === 2 ? new Promise((r) => setTimeout(r, 1_000)) : Promise.resolve()));
    const { e, events } = await elector(api, {
      timing: { leaseDurationMs: 1_500, renewDeadlineMs: 300, retryPeriodMs: 100 },
    });
    e.start();
    await eventually(() => events.stopped === 1, 10_000, 10);
    const writesAtLoss = api.seen.writes;
    expect(writesAtLoss).toBe(1);
    // Past the moment the slow read answers: no renewal may follow it.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(api.seen.writes).toBe(writesAtLoss);
    expect(e.isLeader).toBe(false);
  });

  it("aborts a lease request still in flight at the renew deadline: the API server sees it closed", async () => {
    // The first renewal's read never answers. Ignoring its answer is not enough: the request itself must
    // end, or a write stuck the same way could still land after leadership was given up.
    const api = leaseApi((n) => (n === 2 ? "hang" : Promise.resolve()));
    const { e, events } = await elector(api, {
      timing: { leaseDurationMs: 1_500, renewDeadlineMs: 300, retryPeriodMs: 100 },
    });
    e.start();
    await eventually(() => events.stopped === 1, 10_000, 10);
    await eventually(() => api.seen.abandoned === 1, 2_000, 10);
  });

  it("keeps leading while renewals succeed even if the wall clock jumps ahead", async () => {
    // Every reading of the wall clock finds it stepped 5 s ahead, past the whole renew deadline.
    let wall = 0;
    const api = leaseApi();
    const { e, events } = await elector(api, {
      timing: { leaseDurationMs: 1_500, renewDeadlineMs: 1_000, retryPeriodMs: 20 },
      now: () => (wall += 5_000),
    });
    e.start();
    await eventually(() => events.started === 1, 10_000);
    const before = api.seen.writes;
    await eventually(() => api.seen.writes >= before + 5, 10_000);
    expect(events.stopped).toBe(0);
    expect(e.isLeader).toBe(true);
  });
});
