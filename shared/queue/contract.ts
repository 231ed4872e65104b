// The job queue contract every adapter implements (graphile-worker semantics): the embedded SQL queue
// (sql-queue.ts, the default, on libsql files and Cloudflare D1) and SQS (sqs-queue.ts). One contract test
// suite (tests/queue/contract.ts) runs against both, so callers can swap adapters without changing code.
//
// Delivery is at-least-once: a job is handed to one consumer at a time under a lease; if the lease runs out
// before the consumer completes or fails it, the job is delivered again. Handlers must therefore be
// idempotent (the training worker keys everything on the run id).
//
// An instance is bound to ONE named queue (an SQS queue URL, or the `queue` column of `jobs`): that keeps
// every call site free of queue names and maps 1:1 onto SQS, where a queue is the unit of redrive policy.

/** Options for `enqueue`. */
export interface EnqueueOptions {
  /**
   * Idempotency key. While a job with this key is unfinished, enqueueing again returns that job and creates
   * nothing. SQL: for as long as the job is ready or leased (a partial unique index). SQS FIFO: for SQS's
   * 5-minute deduplication window. Callers needing longer guarantees keep their own guard (the scheduler
   * does: training_runs_one_active_uq).
   */
  dedupeKey?: string;
  /** Attempts before the job is dead-lettered. SQL: per job (default from the adapter). SQS: the queue's
   *  redrive policy `maxReceiveCount` decides; a different value here is refused. */
  maxAttempts?: number;
}

export interface EnqueueResult {
  /** Job id (SQL row id; SQS MessageId). A deduplicated enqueue returns the existing job's id. */
  id: string;
  /** True when a new job was queued; false when the dedupe key matched an unfinished job; undefined when the
   *  adapter cannot tell (SQS answers a deduplicated send like a fresh one, with the original MessageId). */
  created: boolean | undefined;
}

/** Options for `claim`. */
export interface ClaimOptions {
  /** Identifies the consumer holding the lease (process/host name); recorded for operators. */
  workerId: string;
  /** How long the lease lasts before the job is delivered again, unless extended by `heartbeat`. SQS rounds
   *  up to whole seconds. */
  leaseMs: number;
  /** Long-poll up to this long for a job (SQS WaitTimeSeconds, max 20 s). The SQL adapter answers at once;
   *  the runner's poll interval does the waiting there. */
  waitMs?: number;
  /** Aborts a long poll (graceful stop must not wait 20 s). */
  signal?: AbortSignal;
}

/**
 * A claimed job. The lease is identified by `token`: SQL stores `${workerId}#${nonce}` in locked_by (a fresh
 * nonce per claim, so a re-claim by the same worker id is still a different lease) and also checks attempts;
 * SQS uses the receipt handle.
 */
export interface Lease<P = unknown> {
  readonly jobId: string;
  readonly payload: P;
  /** 1 on the first delivery; bumped by every claim (SQS: ApproximateReceiveCount). */
  readonly attempts: number;
  readonly maxAttempts: number;
  readonly token: string;
  /** Lease end as this process's clock sees it (epoch ms). Operations after it throw LeaseLostError. */
  readonly lockedUntil: number;
}

export type FailResult =
  /** Delivered again no earlier than `runAt` (epoch ms), after backoff. */
  | { status: 'retry'; runAt: number }
  /** Out of attempts: dead-lettered (SQS moves it to the DLQ on its next receive, by the redrive policy). */
  | { status: 'dead' };

/** A dead-lettered job, for operators and for the scheduler's reconciliation of runs whose job died. */
export interface DeadJob<P = unknown> {
  id: string;
  payload: P;
  attempts: number;
  /** The last handler error. SQS cannot annotate a message, so its adapter reports null here (the error is
   *  logged and, for training runs, written to training_runs.error by the handler). */
  lastError: string | null;
}

/** Thrown by complete/fail/heartbeat when the caller no longer holds the lease (it expired, or another consumer
 *  claimed the job since). The job is not changed; it will be (or already was) delivered again. */
export class LeaseLostError extends Error {
  readonly code = 'lease_lost';
  constructor(jobId: string, why: string) {
    super(`lease on job ${jobId} lost: ${why}`);
    this.name = 'LeaseLostError';
  }
}

export interface JobQueue<P = unknown> {
  /** Adds a job (idempotently when `dedupeKey` is given). */
  enqueue(payload: P, opts?: EnqueueOptions): Promise<EnqueueResult>;
  /** Atomically leases the next available job (ready and due, or whose lease expired), or returns null. */
  claim(opts: ClaimOptions): Promise<Lease<P> | null>;
  /** Extends the lease to now + leaseMs; returns the extended lease. Throws LeaseLostError. */
  heartbeat(lease: Lease<P>, leaseMs: number): Promise<Lease<P>>;
  /** Marks the job done. Only the lease holder can; anyone else gets LeaseLostError. */
  complete(lease: Lease<P>): Promise<void>;
  /** Records the error and releases the lease: retry after backoff, or dead-letter when out of attempts. */
  fail(lease: Lease<P>, error: string): Promise<FailResult>;
  /** Dead-lettered jobs, newest first (SQS: a peek at up to `limit` DLQ messages, at most 10 per call). */
  deadLetters(limit?: number): Promise<DeadJob<P>[]>;
}

/** Retry backoff after a failure (graphile-worker style exponential, with bounded jitter). */
export interface BackoffConfig {
  /** Delay after the first failure, ms. */
  baseMs: number;
  /** Cap on the delay before jitter, ms. */
  maxMs: number;
  /** Jitter bound as a fraction: the delay is d·(1 + u·jitter), u uniform in [0, 1). Spreads retries of jobs
   *  that failed together (a database blip) so they do not come back in lockstep. */
  jitter: number;
}

export const defaultBackoff: BackoffConfig = { baseMs: 5_000, maxMs: 10 * 60_000, jitter: 0.25 };

/**
 * Delay before attempt `attempts + 1` after attempt `attempts` (1-based) failed:
 * min(maxMs, baseMs·2^(attempts−1)) · (1 + u·jitter). With the defaults: 5 s, 10 s, 20 s ... capped at 10 min,
 * each up to 25% later. `random` is injectable so tests can pin u.
 */
export function backoffDelayMs(attempts: number, cfg: BackoffConfig, random: () => number = Math.random): number {
  const exp = Math.min(cfg.maxMs, cfg.baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.round(exp * (1 + random() * cfg.jitter));
}

/** "Now" as epoch ms; injectable so lease and backoff tests need no sleeping. */
export type Clock = () => number;
export const systemClock: Clock = () => Date.now();
