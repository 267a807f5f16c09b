import { systemClock, type Clock } from "./clock.js";
import { Fifo } from "./fifo.js";
import { RateLimiter } from "./ratelimit.js";

/** Hooks for the controller-runtime workqueue metrics; times are in seconds. */
export interface QueueObserver {
  added(): void;
  depth(depth: number): void;
  queued(seconds: number): void;
  worked(seconds: number): void;
  retried(): void;
}

/** Work started but not yet done, in seconds, as client-go's unfinished-work metrics report it. */
export interface UnfinishedWork {
  /** Summed over every key being processed: large when workers are stuck. */
  totalSeconds: number;
  longestSeconds: number;
}

export function unfinishedWork(startedAt: Iterable<number>, now: number): UnfinishedWork {
  let totalSeconds = 0;
  let longestSeconds = 0;
  for (const started of startedAt) {
    const seconds = Math.max(0, now - started) / 1000;
    totalSeconds += seconds;
    longestSeconds = Math.max(longestSeconds, seconds);
  }
  return { totalSeconds, longestSeconds };
}

export interface WorkQueueOptions {
  clock?: Clock;
  rateLimiter?: RateLimiter;
  observer?: QueueObserver;
}

/**
 * A keyed queue with client-go's semantics: a key is queued at most once
 * (`dirty`), is never handed to two workers at once (`processing`), and a key
 * added while it is being processed is queued again when `done` is called.
 */
export class WorkQueue {
  private readonly queue = new Fifo<string>();
  /** Keys waiting to be processed, with the time they were added. */
  private readonly dirty = new Map<string, number>();
  /** Keys being processed, with the time processing started. */
  private readonly processing = new Map<string, number>();
  private readonly delayed = new Map<string, { readyAt: number; handle: unknown }>();
  private readonly waiters: Array<(key: string | undefined) => void> = [];
  private readonly idleWaiters: Array<() => void> = [];
  private shuttingDown = false;
  private readonly clock: Clock;
  private readonly limiter: RateLimiter;
  private readonly observer: QueueObserver | undefined;

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.limiter = options.rateLimiter ?? new RateLimiter(undefined, undefined, this.clock.now());
    this.observer = options.observer;
  }

  get length(): number {
    return this.queue.length;
  }

  get inFlight(): number {
    return this.processing.size;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.observer?.added();
    this.dirty.set(key, this.clock.now());
    if (this.processing.has(key)) return;
    this.enqueue(key);
  }

  /** Adds the key once `delayMs` has passed; an earlier pending time wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const readyAt = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.readyAt <= readyAt) return;
    if (pending) this.clock.clearTimeout(pending.handle);
    const handle = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.delayed.set(key, { readyAt, handle });
  }

  /** Adds the key after its backoff, which grows with each call until `forget`. */
  addRateLimited(key: string): void {
    this.observer?.retried();
    this.addAfter(key, this.limiter.when(key, this.clock.now()));
  }

  forget(key: string): void {
    this.limiter.forget(key);
  }

  retries(key: string): number {
    return this.limiter.retries(key);
  }

  unfinishedWork(): UnfinishedWork {
    return unfinishedWork(this.processing.values(), this.clock.now());
  }

  /** The next key to work on, or undefined once shut down (keys still queued are dropped, not handed out). */
  get(): Promise<string | undefined> {
    const key = this.take();
    if (key !== undefined || this.shuttingDown) return Promise.resolve(key);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    const started = this.processing.get(key);
    this.processing.delete(key);
    if (started !== undefined) this.observer?.worked((this.clock.now() - started) / 1000);
    if (this.dirty.has(key)) this.enqueue(key);
    if (this.processing.size === 0) this.idleWaiters.splice(0).forEach((wake) => wake());
  }

  /** Stops handing out work; keys already queued are dropped, delayed adds cancelled. */
  shutDown(): void {
    this.shuttingDown = true;
    for (const { handle } of this.delayed.values()) this.clock.clearTimeout(handle);
    this.delayed.clear();
    this.waiters.splice(0).forEach((wake) => wake(undefined));
  }

  /** Resolves once no key is being processed. */
  drained(): Promise<void> {
    if (this.processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private enqueue(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      this.start(key);
      waiter(key);
      return;
    }
    this.queue.push(key);
    this.observer?.depth(this.queue.length);
  }

  private take(): string | undefined {
    if (this.shuttingDown) return undefined;
    const key = this.queue.shift();
    if (key === undefined) return undefined;
    this.observer?.depth(this.queue.length);
    this.start(key);
    return key;
  }

  private start(key: string): void {
    const now = this.clock.now();
    const enqueued = this.dirty.get(key);
    this.dirty.delete(key);
    this.processing.set(key, now);
    if (enqueued !== undefined) this.observer?.queued((now - enqueued) / 1000);
  }
}
