// The worker's job loop over any JobQueue adapter (shared/queue/contract.ts), graphile-worker style:
// a handler is `(payload, helpers) => Promise<void>`; resolving completes the job, throwing fails it (retry
// with backoff, dead-letter when out of attempts). Each attempt ends with exactly ONE call, complete or fail;
// if that call is refused (LeaseLostError: the lease ran out and the job was, or will be, delivered again) it
// is logged and nothing else is tried — calling fail after a refused complete would be a second outcome.
//
// While the handler runs, a heartbeat extends the lease every `heartbeatMs` (a third of the lease by default,
// so two consecutive heartbeats can fail before the lease is lost). When the lease is lost anyway,
// `helpers.signal` aborts so a long training stage can stop early: its work would be redone by the next
// delivery, and its outcome will be refused.
//
// stop() is graceful: no new claims (a pending long poll is aborted), in-flight handlers run to the end and
// their outcome is recorded. A crash instead of a stop is covered by the lease: the job comes back.
import { type ClaimOptions, type FailResult, type JobQueue, type Lease, LeaseLostError } from '../shared/queue/contract';

export interface JobHelpers {
  job: { id: string; attempts: number; maxAttempts: number };
  /** Aborted when this attempt lost its lease (the job is no longer ours). */
  signal: AbortSignal;
  log: Logger;
}

export type JobHandler<P> = (payload: P, helpers: JobHelpers) => Promise<void>;

export type Logger = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export const consoleLogger: Logger = (level, msg, fields) => {
  const line = JSON.stringify({ t: new Date().toISOString(), level, msg, ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
};

export interface RunnerConfig<P> {
  /** Recorded as the lease holder (locked_by); host name + pid is a good value. */
  workerId: string;
  /** Jobs run at once by this process. Training runs use both cores each, so 1 is right on this machine. */
  concurrency: number;
  /** Lease length. Long enough to ride out a slow heartbeat, short enough that a crashed worker's job comes
   *  back soon: 60 s means a crash costs at most a minute of waiting. */
  leaseMs: number;
  /** Heartbeat period; derived as leaseMs / 3 when not given. */
  heartbeatMs?: number;
  /** Wait between claims when the queue was empty (the SQL adapter answers at once). */
  pollMs: number;
  /** Long-poll duration per claim (SQS; max 20 s). Aborted by stop(). */
  waitMs: number;
  /** Called after a failed attempt with the queue's decision, e.g. to mark a training run failed when its
   *  job is dead-lettered. Errors here are logged, never rethrown. */
  onFailed?: (lease: Lease<P>, error: string, result: FailResult) => Promise<void>;
  log: Logger;
}

export const defaultRunnerConfig: Omit<RunnerConfig<unknown>, 'workerId'> = {
  concurrency: 1,
  leaseMs: 60_000,
  pollMs: 1_000,
  waitMs: 20_000,
  log: consoleLogger,
};

export interface Runner {
  /** Stops claiming, waits for in-flight jobs to finish and be recorded. Idempotent. */
  stop(): Promise<void>;
  /** Settles when every slot has exited (after stop()). */
  readonly done: Promise<void>;
}

/** Starts `concurrency` claim loops on `queue`; returns at once. */
export function runQueue<P>(
  queue: JobQueue<P>,
  handler: JobHandler<P>,
  config: Partial<RunnerConfig<P>> & Pick<RunnerConfig<P>, 'workerId'>,
): Runner {
  const cfg: RunnerConfig<P> = { ...(defaultRunnerConfig as Omit<RunnerConfig<P>, 'workerId'>), ...config };
  const heartbeatMs = cfg.heartbeatMs ?? Math.floor(cfg.leaseMs / 3); // derived
  const stopping = new AbortController();

  async function slot(n: number): Promise<void> {
    const claimOpts: ClaimOptions = { workerId: cfg.workerId, leaseMs: cfg.leaseMs, waitMs: cfg.waitMs, signal: stopping.signal };
    while (!stopping.signal.aborted) {
      let lease: Lease<P> | null;
      try {
        lease = await queue.claim(claimOpts);
      } catch (e) {
        if (stopping.signal.aborted) break;
        cfg.log('error', 'claim failed', { slot: n, error: String(e) });
        await sleep(cfg.pollMs, stopping.signal);
        continue;
      }
      if (!lease) {
        await sleep(cfg.pollMs, stopping.signal);
        continue;
      }
      await attempt(lease);
    }
  }

  async function attempt(first: Lease<P>): Promise<void> {
    let lease = first;
    const lost = new AbortController();
    const log: Logger = (level, msg, fields) => cfg.log(level, msg, { jobId: first.jobId, attempt: first.attempts, ...fields });

    // Heartbeat: one at a time; the current lease object is replaced by each extension.
    let beating: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      beating = beating.then(async () => {
        if (lost.signal.aborted) return;
        try {
          lease = await queue.heartbeat(lease, cfg.leaseMs);
        } catch (e) {
          if (e instanceof LeaseLostError) {
            log('warn', 'lease lost while running', { error: e.message });
            lost.abort(e);
          } else {
            log('warn', 'heartbeat failed; will retry', { error: String(e) }); // transient: next tick retries
          }
        }
      });
    }, heartbeatMs);

    let error: string | null = null;
    try {
      await handler(first.payload, { job: { id: first.jobId, attempts: first.attempts, maxAttempts: first.maxAttempts }, signal: lost.signal, log });
    } catch (e) {
      error = e instanceof Error ? (e.stack ?? e.message) : String(e);
    } finally {
      clearInterval(timer);
      await beating; // never record the outcome with a lease a heartbeat is about to replace
    }

    // Exactly one outcome call.
    try {
      if (error === null) {
        await queue.complete(lease);
        log('info', 'job completed');
      } else {
        const result = await queue.fail(lease, error);
        log(result.status === 'dead' ? 'error' : 'warn', result.status === 'dead' ? 'job dead-lettered' : 'job failed; will retry', {
          error,
          ...(result.status === 'retry' ? { runAt: result.runAt } : {}),
        });
        if (cfg.onFailed) await cfg.onFailed(lease, error, result).catch((e) => log('error', 'onFailed hook threw', { error: String(e) }));
      }
    } catch (e) {
      if (e instanceof LeaseLostError) log('warn', 'outcome refused: lease lost; the job will be delivered again', { error: e.message });
      else log('error', 'recording the outcome failed; the lease will expire and the job will be delivered again', { error: String(e) });
    }
  }

  const done = Promise.all(Array.from({ length: cfg.concurrency }, (_, n) => slot(n))).then(() => undefined);
  return {
    done,
    async stop() {
      stopping.abort();
      await done;
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
