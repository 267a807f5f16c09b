import {
  CoordinationV1Api,
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type KubeConfig,
  type V1Lease,
} from "@kubernetes/client-node";
import type { Logger } from "winston";
import { performance } from "node:perf_hooks";
import { sleep, withDeadline } from "./clock.js";
import { errorMessage, isConflict, isNotFound } from "./errors.js";
import {
  decide,
  defaultTiming,
  jitterFactor,
  nextRecord,
  observe,
  releasedRecord,
  renewalExpired,
  validateTiming,
  type ElectionTiming,
  type LeaseRecord,
  type Observation,
} from "./leaderdecision.js";

export interface LeaderElectorOptions {
  kubeConfig: KubeConfig;
  leaseName: string;
  leaseNamespace: string;
  identity: string;
  logger: Logger;
  timing?: ElectionTiming;
  onStartedLeading(): void;
  /** Leadership lost without a release: the process must stop working at once. */
  onStoppedLeading(): void;
  onLeaderChange?(holder: string): void;
  /** Wall-clock time, written into the lease record and never used to judge it. */
  now?: () => number;
  /**
   * A clock that never jumps, for the renew deadline and for a held lease's
   * expiry; performance.now() unless a test stands in.
   */
  monotonicNow?: () => number;
}

/** Request options that tie one API call to `signal`: aborting it cancels the request in flight. */
function abortableBy(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (request) => {
          request.setSignal(signal);
          return new Observable(Promise.resolve(request));
        },
        post: (response) => new Observable(Promise.resolve(response)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

function toRecord(lease: V1Lease): LeaseRecord {
  const spec = lease.spec ?? {};
  return {
    holderIdentity: spec.holderIdentity ?? "",
    leaseDurationSeconds: spec.leaseDurationSeconds ?? 0,
    acquireTime: spec.acquireTime ? new Date(spec.acquireTime).getTime() : 0,
    renewTime: spec.renewTime ? new Date(spec.renewTime).getTime() : 0,
    leaseTransitions: spec.leaseTransitions ?? 0,
  };
}

function toSpec(record: LeaseRecord): V1Lease["spec"] {
  return {
    holderIdentity: record.holderIdentity,
    leaseDurationSeconds: record.leaseDurationSeconds,
    acquireTime: new V1MicroTime(record.acquireTime),
    renewTime: new V1MicroTime(record.renewTime),
    leaseTransitions: record.leaseTransitions,
  };
}

/**
 * Leader election on a coordination.k8s.io Lease. Each write carries the
 * resourceVersion that was read, so of two candidates racing for an expired
 * lease exactly one wins (the other gets 409).
 */
export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private readonly timing: ElectionTiming;
  private readonly abort = new AbortController();
  private observation: Observation | undefined;
  private lease: V1Lease | undefined;
  private leading = false;
  private lastHolder: string | undefined;
  private running: Promise<void> | undefined;
  private readonly now: () => number;
  private readonly monotonicNow: () => number;

  constructor(private readonly options: LeaderElectorOptions) {
    this.now = options.now ?? (() => Date.now());
    this.monotonicNow = options.monotonicNow ?? (() => performance.now());
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
    this.timing = options.timing ?? defaultTiming;
    const problem = validateTiming(this.timing);
    if (problem) throw new Error(`leader election: ${problem}`);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.running ??= this.run();
  }

  /** Stops campaigning; a leader hands the lease back so a standby takes over at once. */
  async stop(release = true): Promise<void> {
    this.abort.abort();
    await this.running;
    if (this.leading && release) await this.release();
    this.leading = false;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted && !this.leading) {
      // A hung request must not stop a standby from campaigning.
      if (await this.attempt(this.timing.renewDeadlineMs)) {
        this.leading = true;
        // Won just as shutdown began: hold no work, `stop` hands the lease back.
        if (signal.aborted) return;
        this.options.logger.info("became leader", {
          lease: this.leaseRef(),
          identity: this.options.identity,
        });
        this.options.onStartedLeading();
        break;
      }
      await sleep(this.jittered(), signal);
    }
    if (this.leading) await this.renewLoop();
  }

  private async renewLoop(): Promise<void> {
    const signal = this.abort.signal;
    // Measured on a monotonic clock: a wall-clock step must neither end nor extend leadership.
    let lastRenewed = this.monotonicNow();
    while (!signal.aborted) {
      await sleep(this.timing.retryPeriodMs, signal);
      if (signal.aborted) return;
      const remaining = this.timing.renewDeadlineMs - (this.monotonicNow() - lastRenewed);
      // A hung request must not let a leader outlive its renew deadline.
      if (await this.attempt(remaining)) {
        lastRenewed = this.monotonicNow();
        continue;
      }
      // Stopping cut the attempt short: `stop` decides about the lease, this is no loss.
      if (signal.aborted) return;
      if (renewalExpired(lastRenewed, this.monotonicNow(), this.timing) || !this.holdsObservedLease()) {
        this.leading = false;
        this.options.logger.error("leadership lost", {
          lease: this.leaseRef(),
          identity: this.options.identity,
        });
        this.options.onStoppedLeading();
        return;
      }
    }
  }

  private holdsObservedLease(): boolean {
    const holder = this.observation?.record.holderIdentity;
    return holder === undefined || holder === this.options.identity;
  }

  /**
   * One acquire-or-renew, cancelled at the deadline: a request that outlived
   * it must not renew the lease after this replica has declared itself lost.
   */
  private attempt(deadlineMs: number): Promise<boolean> {
    return withDeadline((signal) => this.tryAcquireOrRenew(signal), deadlineMs, false, this.abort.signal);
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    try {
      const lease = await this.read(signal);
      // Taken after the read, as client-go does: a slow GET must not make the lease look older than it is.
      // Expiry is judged on the monotonic clock: a wall-clock step must not make a live leader's lease look expired.
      const observedAt = this.monotonicNow();
      if (lease) this.noteObserved(lease, observedAt);
      const decision = decide(this.options.identity, this.observation, observedAt);
      if (decision.action === "wait" || signal.aborted) return false;
      const current = this.observation?.record;
      const record = nextRecord(this.options.identity, current, this.timing, this.now());
      const written = lease ? await this.replace(lease, record, signal) : await this.create(record, signal);
      this.lease = written;
      this.observation = { record: toRecord(written), observedAt: this.monotonicNow() };
      this.lastHolder = this.options.identity;
      return true;
    } catch (err) {
      // A conflict is a lost race and an abort the deadline: the caller decides what either means.
      if (isConflict(err) || signal.aborted) return false;
      this.options.logger.warn("lease update failed", { lease: this.leaseRef(), error: errorMessage(err) });
      return false;
    }
  }

  private noteObserved(lease: V1Lease, observedAt: number): void {
    this.lease = lease;
    this.observation = observe(this.observation, toRecord(lease), observedAt);
    const holder = this.observation.record.holderIdentity;
    if (holder !== this.lastHolder) {
      this.lastHolder = holder;
      if (holder) this.options.logger.info("lease holder observed", { holder, lease: this.leaseRef() });
      this.options.onLeaderChange?.(holder);
    }
  }

  private async read(signal: AbortSignal): Promise<V1Lease | undefined> {
    try {
      return await this.api.readNamespacedLease(
        { name: this.options.leaseName, namespace: this.options.leaseNamespace },
        abortableBy(signal),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  private create(record: LeaseRecord, signal: AbortSignal): Promise<V1Lease> {
    return this.api.createNamespacedLease(
      {
        namespace: this.options.leaseNamespace,
        body: { metadata: { name: this.options.leaseName }, spec: toSpec(record) },
      },
      abortableBy(signal),
    );
  }

  private replace(lease: V1Lease, record: LeaseRecord, signal: AbortSignal): Promise<V1Lease> {
    return this.api.replaceNamespacedLease(
      {
        name: this.options.leaseName,
        namespace: this.options.leaseNamespace,
        body: { metadata: { ...lease.metadata, name: this.options.leaseName }, spec: toSpec(record) },
      },
      abortableBy(signal),
    );
  }

  /** Hands the lease back, within the renew deadline: a hung release must not hold up the exit. */
  private async release(): Promise<void> {
    const { lease, observation } = this;
    if (!lease || !observation) return;
    const record = releasedRecord(observation.record, this.now());
    const outcome = await withDeadline(
      (signal) =>
        this.replace(lease, record, signal).then(
          (written) => ((this.lease = written), "released"),
          (err: unknown) => errorMessage(err),
        ),
      this.timing.renewDeadlineMs,
      "timed out",
    );
    if (outcome === "released") this.options.logger.info("lease released", { lease: this.leaseRef() });
    else this.options.logger.warn("lease release failed", { lease: this.leaseRef(), error: outcome });
  }

  private jittered(): number {
    return this.timing.retryPeriodMs * (1 + Math.random() * (jitterFactor - 1));
  }

  private leaseRef(): string {
    return `${this.options.leaseNamespace}/${this.options.leaseName}`;
  }
}
