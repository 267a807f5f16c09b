/** Time as an injected dependency, so queue and election timing can be tested without sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The longest delay one Node timer honours: a longer one (a `requeueAfter`
 * of 30 days) fires after 1 ms, which turns a long wait into a hot loop.
 */
export const maxTimerMs = 2_147_483_647;

/** The raw timer calls a chained timer is built on; a test can record what gets armed. */
export interface TimerPrimitives {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export const nodeTimers: TimerPrimitives = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** Node timers that do not keep a shutting-down process alive. */
export const unrefTimers: TimerPrimitives = {
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: nodeTimers.clear,
};

export interface Timer {
  cancel(): void;
}

/**
 * Calls `fn` once `ms` have passed, arming one timer after another when `ms`
 * exceeds `maxTimerMs`. An infinite delay never fires; NaN or a negative one
 * fires at once, as Node does.
 */
export function startTimer(fn: () => void, ms: number, timers: TimerPrimitives = nodeTimers): Timer {
  let handle: unknown;
  let cancelled = false;
  const arm = (remaining: number): void => {
    const step = Math.min(remaining, maxTimerMs);
    handle = timers.set(() => {
      if (cancelled) return;
      if (remaining > maxTimerMs) arm(remaining - maxTimerMs);
      else fn();
    }, step);
  };
  arm(ms > 0 ? ms : 0);
  return {
    cancel: () => {
      cancelled = true;
      timers.clear(handle);
    },
  };
}

export const systemClock: Clock = {
  now: () => Date.now(),
  // A pending delayed add must not keep a shutting-down process alive.
  setTimeout: (fn, ms) => startTimer(fn, ms, unrefTimers),
  clearTimeout: (handle) => (handle as Timer | undefined)?.cancel(),
};

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = startTimer(done, ms);
    function done(): void {
      timer.cancel();
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Settles with `work`'s value, or with `fallback` once `ms` have passed (or
 * at once when `ms` <= 0, or when `work` fails), so a hung API call cannot
 * hold up a deadline. The work itself is not cancelled: use `withDeadline`
 * for work that can be.
 */
export function withTimeout<T>(work: Promise<T> | undefined, ms: number, fallback: T): Promise<T> {
  if (!work || ms <= 0) return Promise.resolve(fallback);
  return new Promise((resolve) => {
    const timer = startTimer(() => resolve(fallback), ms);
    const settle = (value: T): void => {
      timer.cancel();
      resolve(value);
    };
    work.then(settle, () => settle(fallback));
  });
}

/**
 * Runs `work` with a signal that is aborted once `ms` have passed (or when
 * `parent` aborts), and settles with `fallback` at that moment or when the
 * work fails. Unlike `withTimeout`, the work is told to stop, so a request
 * that outlived its deadline cannot take effect afterwards.
 */
export function withDeadline<T>(
  work: (signal: AbortSignal) => Promise<T>,
  ms: number,
  fallback: T,
  parent?: AbortSignal,
): Promise<T> {
  const deadline = new AbortController();
  const abort = (): void => deadline.abort();
  if (ms <= 0 || parent?.aborted) return Promise.resolve(fallback);
  const timer = startTimer(abort, ms);
  parent?.addEventListener("abort", abort, { once: true });
  return new Promise<T>((resolve) => {
    deadline.signal.addEventListener("abort", () => resolve(fallback), { once: true });
    work(deadline.signal).then(resolve, () => resolve(fallback));
  }).finally(() => {
    timer.cancel();
    parent?.removeEventListener("abort", abort);
  });
}
