import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { QueueObserver, UnfinishedWork } from "../runtime/workqueue.js";

/** client-go's workqueue buckets: 1 µs to ~16 min, by factors of 10. */
const queueBuckets = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1, 10, 100, 1000];
const reconcileBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60];

/** "requeue_after" for a `requeueAfter` result; there is no bare "requeue" (no `Requeue: true` here). */
const RECONCILE_RESULTS = ["success", "error", "requeue_after"] as const;
export type ReconcileResult = (typeof RECONCILE_RESULTS)[number];

/**
 * The controller-runtime and client-go metric names, so dashboards and alerts
 * written for Go operators work unchanged.
 */
export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconcileTotal: Counter<"controller" | "result">;
  readonly reconcileErrors: Counter<"controller">;
  readonly terminalErrors: Counter<"controller">;
  readonly reconcilePanics: Counter<"controller">;
  readonly reconcileTime: Histogram<"controller">;
  readonly activeWorkers: Gauge<"controller">;
  readonly maxConcurrent: Gauge<"controller">;
  readonly depth: Gauge<"name" | "controller">;
  readonly adds: Counter<"name" | "controller">;
  readonly queueDuration: Histogram<"name" | "controller">;
  readonly workDuration: Histogram<"name" | "controller">;
  readonly retries: Counter<"name" | "controller">;
  readonly unfinishedWork: Gauge<"name" | "controller">;
  readonly longestRunning: Gauge<"name" | "controller">;
  readonly leaderStatus: Gauge<"name">;
  /** Each controller's queue, read at scrape time: a stuck worker shows without any event. */
  private readonly inProgress = new Map<string, () => UnfinishedWork>();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.reconcileTotal = new Counter({
      name: "controller_runtime_reconcile_total",
      help: "Total number of reconciliations per controller",
      labelNames: ["controller", "result"],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: "controller_runtime_reconcile_errors_total",
      help: "Total number of reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.terminalErrors = new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcilePanics = new Counter({
      name: "controller_runtime_reconcile_panics_total",
      help: "Total number of reconciliation panics per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new Histogram({
      name: "controller_runtime_reconcile_time_seconds",
      help: "Length of time per reconciliation per controller",
      labelNames: ["controller"],
      buckets: reconcileBuckets,
      registers,
    });
    this.activeWorkers = new Gauge({
      name: "controller_runtime_active_workers",
      help: "Number of currently used workers per controller",
      labelNames: ["controller"],
      registers,
    });
    this.maxConcurrent = new Gauge({
      name: "controller_runtime_max_concurrent_reconciles",
      help: "Maximum number of concurrent reconciles per controller",
      labelNames: ["controller"],
      registers,
    });
    this.depth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name", "controller"],
      registers,
    });
    this.adds = new Counter({
      name: "workqueue_adds_total",
      help: "Total number of adds handled by workqueue",
      labelNames: ["name", "controller"],
      registers,
    });
    this.queueDuration = new Histogram({
      name: "workqueue_queue_duration_seconds",
      help: "How long in seconds an item stays in workqueue before being requested",
      labelNames: ["name", "controller"],
      buckets: queueBuckets,
      registers,
    });
    this.workDuration = new Histogram({
      name: "workqueue_work_duration_seconds",
      help: "How long in seconds processing an item from workqueue takes",
      labelNames: ["name", "controller"],
      buckets: queueBuckets,
      registers,
    });
    this.retries = new Counter({
      name: "workqueue_retries_total",
      help: "Total number of retries handled by workqueue",
      labelNames: ["name", "controller"],
      registers,
    });
    const inProgress = this.inProgress;
    const queueLabels = (controller: string) => ({ name: controller, controller });
    this.unfinishedWork = new Gauge({
      name: "workqueue_unfinished_work_seconds",
      help:
        "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
        "Large values indicate stuck threads. One can deduce the number of stuck threads by observing the rate at which this increases.",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        for (const [controller, read] of inProgress) this.set(queueLabels(controller), read().totalSeconds);
      },
    });
    this.longestRunning = new Gauge({
      name: "workqueue_longest_running_processor_seconds",
      help: "How many seconds has the longest running processor for workqueue been running.",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        for (const [controller, read] of inProgress) this.set(queueLabels(controller), read().longestSeconds);
      },
    });
    this.leaderStatus = new Gauge({
      name: "leader_election_master_status",
      help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
      labelNames: ["name"],
      registers,
    });
  }

  /**
   * Every series of a starting controller at 0, as controller-runtime's initMetrics does: a counter first
   * seen at 1 shows no increase, so an alert on the first panic or error would never fire.
   */
  controllerStarted(controller: string, workers: number): void {
    const labels = { controller };
    for (const result of RECONCILE_RESULTS) this.reconcileTotal.inc({ controller, result }, 0);
    this.reconcileErrors.inc(labels, 0);
    this.terminalErrors.inc(labels, 0);
    this.reconcilePanics.inc(labels, 0);
    this.activeWorkers.set(labels, 0);
    this.maxConcurrent.set(labels, workers);
  }

  /** Reports `controller`'s work in progress on every scrape. */
  trackInProgress(controller: string, read: () => UnfinishedWork): void {
    this.inProgress.set(controller, read);
  }

  queueObserver(controller: string): QueueObserver {
    const labels = { name: controller, controller };
    return {
      added: () => this.adds.inc(labels),
      depth: (n) => this.depth.set(labels, n),
      queued: (s) => this.queueDuration.observe(labels, s),
      worked: (s) => this.workDuration.observe(labels, s),
      retried: () => this.retries.inc(labels),
    };
  }
}
