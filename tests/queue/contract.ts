// ONE contract suite for every JobQueue adapter (shared/queue/contract.ts): the SQL queue on a real libsql file
// (sql-queue.test.ts) and the SQS adapter on the fauxqs emulator (sqs-queue.test.ts) both call
// `queueContract`. Time is advanced through the harness: the SQL harness moves an injected clock (no sleeping),
// the SQS harness really waits (SQS keeps its own time), so leases here are 1 s, SQS's smallest.
import { describe, expect, it } from 'vitest';
import { type BackoffConfig, type JobQueue, type Lease, LeaseLostError } from '../../shared/queue/contract';
import { runQueue } from '../../worker/queue-runner';

export interface TestPayload {
  n: number;
  tag?: string;
}

export interface QueueHarness {
  /** Consumer A. */
  queue: JobQueue<TestPayload>;
  /** Consumer B on the same queue through its own connection / client. */
  other: JobQueue<TestPayload>;
  /** Moves both consumers' "now" forward (SQL: injected clock; SQS: a real wait). */
  advance(ms: number): Promise<void>;
  /** "Now" as the consumers see it. */
  now(): number;
  /** The adapter stores the handler's error on dead jobs. */
  recordsLastError: boolean;
  /** Smallest unit the adapter keeps time in (SQS: visibility timeouts are whole seconds). */
  granularityMs: number;
}

export interface HarnessOptions {
  maxAttempts: number;
  backoff: BackoffConfig;
  /** Pinned jitter source, so backoff bounds can be asserted exactly. */
  random: () => number;
}

export type MakeQueue = (opts: HarnessOptions) => Promise<QueueHarness>;

const LEASE = 1_000;
const noBackoff: BackoffConfig = { baseMs: 0, maxMs: 0, jitter: 0 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function expectLost(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(LeaseLostError);
}

export function queueContract(name: string, makeQueue: MakeQueue): void {
  const make = (o: Partial<HarnessOptions> = {}) => makeQueue({ maxAttempts: 3, backoff: noBackoff, random: () => 0.5, ...o });

  describe(`JobQueue contract: ${name}`, () => {
    it('delivers a job once, to one consumer, and never again after complete', async () => {
      const h = await make();
      const { id } = await h.queue.enqueue({ n: 1, tag: 'hello' });
      const lease = await h.queue.claim({ workerId: 'a', leaseMs: LEASE });
      expect(lease).not.toBeNull();
      expect(lease!.jobId).toBe(id);
      expect(lease!.payload).toEqual({ n: 1, tag: 'hello' });
      expect(lease!.attempts).toBe(1);
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
      await h.queue.complete(lease!);
      await h.advance(LEASE + 300);
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
    });

    it('redelivers a job whose lease expired (at-least-once), bumping attempts', async () => {
      const h = await make();
      const { id } = await h.queue.enqueue({ n: 2 });
      const first = await h.queue.claim({ workerId: 'a', leaseMs: LEASE });
      expect(first?.jobId).toBe(id);
      await h.advance(LEASE + 300);
      const again = await h.other.claim({ workerId: 'b', leaseMs: LEASE });
      expect(again?.jobId).toBe(id);
      expect(again?.payload).toEqual({ n: 2 });
      expect(again?.attempts).toBe(2);
      await h.other.complete(again!);
    });

    it('refuses complete and fail from a consumer whose lease was re-claimed by another', async () => {
      const h = await make();
      await h.queue.enqueue({ n: 3 });
      const stale = (await h.queue.claim({ workerId: 'a', leaseMs: LEASE }))!;
      await h.advance(LEASE + 300);
      const holder = (await h.other.claim({ workerId: 'b', leaseMs: LEASE }))!;
      expect(holder.jobId).toBe(stale.jobId);
      await expectLost(h.queue.complete(stale));
      await expectLost(h.queue.fail(stale, 'late failure'));
      await expectLost(h.queue.heartbeat(stale, LEASE));
      // The holder is unaffected: its complete works and the job is gone.
      await h.other.complete(holder);
      await h.advance(LEASE + 300);
      expect(await h.queue.claim({ workerId: 'a', leaseMs: LEASE })).toBeNull();
    });

    it('refuses an outcome after the lease ran out even before anyone re-claimed, and redelivers', async () => {
      const h = await make();
      await h.queue.enqueue({ n: 4 });
      const lease = (await h.queue.claim({ workerId: 'a', leaseMs: LEASE }))!;
      await h.advance(LEASE + 300);
      await expectLost(h.queue.complete(lease));
      const again = await h.other.claim({ workerId: 'b', leaseMs: LEASE });
      expect(again?.jobId).toBe(lease.jobId);
      await h.other.complete(again!);
    });

    it('enqueue with a dedupe key is idempotent while the job is unfinished', async () => {
      const h = await make();
      const a = await h.queue.enqueue({ n: 5 }, { dedupeKey: 'run_1' });
      const b = await h.other.enqueue({ n: 5 }, { dedupeKey: 'run_1' });
      const c = await h.queue.enqueue({ n: 6 }, { dedupeKey: 'run_2' });
      expect(b.id).toBe(a.id);
      expect(b.created).not.toBe(true);
      expect(c.id).not.toBe(a.id);
      const got: number[] = [];
      for (let i = 0; i < 3; i++) {
        const l = await h.queue.claim({ workerId: 'a', leaseMs: LEASE });
        if (l) {
          got.push(l.payload.n);
          await h.queue.complete(l);
        }
      }
      expect(got.sort()).toEqual([5, 6]);
      // Still deduplicated while leased: a third enqueue during the run adds nothing.
      const d = await h.queue.enqueue({ n: 7 }, { dedupeKey: 'run_3' });
      const l = (await h.queue.claim({ workerId: 'a', leaseMs: LEASE }))!;
      const e = await h.other.enqueue({ n: 7 }, { dedupeKey: 'run_3' });
      expect(e.id).toBe(d.id);
      await h.queue.complete(l);
      expect(await h.queue.claim({ workerId: 'a', leaseMs: LEASE })).toBeNull();
    });

    it('backs off exponentially within the jitter bound before redelivering a failed job', async () => {
      const backoff: BackoffConfig = { baseMs: 1_000, maxMs: 60_000, jitter: 0.5 };
      const h = await make({ backoff, maxAttempts: 5 });
      await h.queue.enqueue({ n: 8 });
      const l1 = (await h.queue.claim({ workerId: 'a', leaseMs: LEASE }))!;
      const t1 = h.now();
      const r1 = await h.queue.fail(l1, 'boom 1');
      expect(r1.status).toBe('retry');
      if (r1.status !== 'retry') return;
      const up = (ms: number) => Math.ceil(ms / h.granularityMs) * h.granularityMs;
      expect(r1.runAt - t1).toBeGreaterThanOrEqual(backoff.baseMs);
      expect(r1.runAt - t1).toBeLessThanOrEqual(up(backoff.baseMs * (1 + backoff.jitter)) + 50);
      // Not before runAt ...
      await h.advance(r1.runAt - h.now() - 300);
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
      // ... and at runAt it is back, as attempt 2.
      await h.advance(r1.runAt - h.now() + 300);
      const l2 = (await h.other.claim({ workerId: 'b', leaseMs: LEASE }))!;
      expect(l2.jobId).toBe(l1.jobId);
      expect(l2.attempts).toBe(2);
      // The second delay doubles.
      const t2 = h.now();
      const r2 = await h.other.fail(l2, 'boom 2');
      expect(r2.status).toBe('retry');
      if (r2.status !== 'retry') return;
      expect(r2.runAt - t2).toBeGreaterThanOrEqual(2 * backoff.baseMs);
      expect(r2.runAt - t2).toBeLessThanOrEqual(up(2 * backoff.baseMs * (1 + backoff.jitter)) + 50);
    });

    it('dead-letters a job after maxAttempts failures and never delivers it again', async () => {
      const h = await make({ maxAttempts: 2 });
      const { id } = await h.queue.enqueue({ n: 9, tag: 'doomed' });
      const l1 = (await h.queue.claim({ workerId: 'a', leaseMs: LEASE }))!;
      expect(await h.queue.fail(l1, 'first error')).toEqual(expect.objectContaining({ status: 'retry' }));
      const l2 = (await h.other.claim({ workerId: 'b', leaseMs: LEASE }))!;
      expect(l2.attempts).toBe(2);
      expect(await h.other.fail(l2, 'second error')).toEqual({ status: 'dead' });
      expect(await h.queue.claim({ workerId: 'a', leaseMs: LEASE })).toBeNull();
      const dead = await h.queue.deadLetters();
      const mine = dead.find((d) => d.id === id);
      expect(mine?.payload).toEqual({ n: 9, tag: 'doomed' });
      if (h.recordsLastError) expect(mine?.lastError).toContain('second error');
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
    });

    it('dead-letters a job whose holder vanished on its last attempt', async () => {
      const h = await make({ maxAttempts: 1 });
      const { id } = await h.queue.enqueue({ n: 10 });
      expect(await h.queue.claim({ workerId: 'a', leaseMs: LEASE })).not.toBeNull();
      await h.advance(LEASE + 300);
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
      expect((await h.other.deadLetters()).map((d) => d.id)).toContain(id);
    });

    it('a heartbeat keeps the job invisible past the original lease; without one it comes back', async () => {
      const h = await make();
      await h.queue.enqueue({ n: 11 });
      let lease = (await h.queue.claim({ workerId: 'a', leaseMs: LEASE }))!;
      await h.advance(600);
      lease = await h.queue.heartbeat(lease, LEASE);
      await h.advance(600); // 1.2 s after the claim: past the original lease
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
      await h.advance(LEASE); // no heartbeat this time
      const taken = await h.other.claim({ workerId: 'b', leaseMs: LEASE });
      expect(taken?.jobId).toBe(lease.jobId);
      await expectLost(h.queue.heartbeat(lease, LEASE));
      await h.other.complete(taken!);
    });

    // ---- the runner (worker/queue-runner.ts) over this adapter ----

    it('runner: the heartbeat keeps a long job leased; it runs once', async () => {
      const h = await make();
      await h.queue.enqueue({ n: 12 });
      let runs = 0;
      let stolen: Lease<TestPayload> | null = null;
      const runner = runQueue(
        h.queue,
        async (_p, { signal }) => {
          runs++;
          // 2.4 s with a 1 s lease: the other consumer keeps trying meanwhile.
          for (let i = 0; i < 8; i++) {
            await sleep(300);
            stolen ??= await h.other.claim({ workerId: 'b', leaseMs: LEASE });
          }
          expect(signal.aborted).toBe(false);
        },
        { workerId: 'a', leaseMs: LEASE, heartbeatMs: 300, pollMs: 20, waitMs: 0, log: () => {} },
      );
      while (runs === 0) await sleep(20);
      await runner.stop();
      expect(stolen).toBeNull();
      expect(runs).toBe(1);
      await h.advance(LEASE + 300);
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
    });

    it('runner: stop() lets the in-flight job finish and records its completion', async () => {
      const h = await make();
      await h.queue.enqueue({ n: 13 });
      let started = false;
      let finished = false;
      const runner = runQueue(
        h.queue,
        async () => {
          started = true;
          await sleep(400);
          finished = true;
        },
        { workerId: 'a', leaseMs: LEASE, heartbeatMs: 300, pollMs: 20, waitMs: 0, log: () => {} },
      );
      while (!started) await sleep(10);
      await runner.stop();
      expect(finished).toBe(true);
      await h.advance(LEASE + 300);
      expect(await h.other.claim({ workerId: 'b', leaseMs: LEASE })).toBeNull();
    });

    it('runner: two consumers with concurrency 2 never run the same job at once; each job runs once', async () => {
      const h = await make();
      const N = 12;
      for (let n = 0; n < N; n++) await h.queue.enqueue({ n });
      const running = new Set<number>();
      const runs = new Map<number, number>();
      let overlap = false;
      const handler = async (p: TestPayload) => {
        if (running.has(p.n)) overlap = true;
        running.add(p.n);
        runs.set(p.n, (runs.get(p.n) ?? 0) + 1);
        await sleep(30 + (p.n % 3) * 20);
        running.delete(p.n);
      };
      const opts = { leaseMs: LEASE * 5, heartbeatMs: 1_000, pollMs: 20, waitMs: 0, concurrency: 2, log: () => {} };
      const r1 = runQueue(h.queue, handler, { ...opts, workerId: 'a' });
      const r2 = runQueue(h.other, handler, { ...opts, workerId: 'b' });
      const deadline = Date.now() + 10_000;
      while ([...runs.values()].reduce((s, v) => s + v, 0) < N && Date.now() < deadline) await sleep(20);
      await Promise.all([r1.stop(), r2.stop()]);
      expect(overlap).toBe(false);
      expect([...runs.keys()].sort((x, y) => x - y)).toEqual([...Array(N).keys()]);
      expect([...runs.values()].every((v) => v === 1)).toBe(true);
    });

    it('runner: a throwing handler is retried, then dead-lettered, and onFailed sees each decision', async () => {
      const h = await make({ maxAttempts: 2 });
      const { id } = await h.queue.enqueue({ n: 14 });
      const decisions: string[] = [];
      const runner = runQueue(
        h.queue,
        async (_p, { job }) => {
          throw new Error(`nope on attempt ${job.attempts}`);
        },
        {
          workerId: 'a',
          leaseMs: LEASE,
          pollMs: 20,
          waitMs: 0,
          log: () => {},
          onFailed: async (lease, error, result) => {
            decisions.push(`${lease.attempts}:${result.status}:${error.split('\n')[0]}`);
          },
        },
      );
      const deadline = Date.now() + 5_000;
      while (decisions.length < 2 && Date.now() < deadline) await sleep(20);
      await runner.stop();
      expect(decisions).toEqual(['1:retry:Error: nope on attempt 1', '2:dead:Error: nope on attempt 2']);
      expect((await h.queue.deadLetters()).map((d) => d.id)).toContain(id);
    });
  });
}
