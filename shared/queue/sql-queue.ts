// The embedded durable queue: the `jobs` table, through drizzle. It runs unchanged on libsql files (Node)
// and on Cloudflare D1 (workerd), so it uses only what both drivers share: single statements with RETURNING,
// no interactive transactions (D1 has none) and no driver-specific calls.
//
// Why every state change is ONE statement: SQLite runs each statement atomically and serializes writers
// (libsql takes the write lock for the statement; D1 executes one statement at a time per database), so a
// conditional `UPDATE ... WHERE <I still hold the lease> RETURNING` is a compare-and-swap. No read-then-write
// pair, hence no window in which two consumers both see a job as free.
//
// Lifecycle: ready --claim--> leased --complete--> done
//                                    --fail------> ready (run_at = now + backoff) | dead (out of attempts)
//                                    --lease expires--> claimable again (same row, attempts bumped on claim)
// A leased job whose lease expired on its LAST attempt is dead-lettered by the reap step in `claim` rather
// than delivered an (N+1)th time — the SQS redrive policy does the same with maxReceiveCount.
import { and, asc, desc, eq, gt, inArray, lt, lte, or, sql } from 'drizzle-orm';
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import { jobs } from '../schema';
import {
  type BackoffConfig,
  backoffDelayMs,
  type ClaimOptions,
  type Clock,
  type DeadJob,
  defaultBackoff,
  type EnqueueOptions,
  type EnqueueResult,
  type FailResult,
  type JobQueue,
  type Lease,
  LeaseLostError,
  systemClock,
} from './contract';

/** Any async drizzle SQLite database: `drizzle-orm/libsql` (Node) or `drizzle-orm/d1` (workerd). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type QueueDb = BaseSQLiteDatabase<'async', any, any>;

export interface SqlQueueConfig {
  /** Value of the `queue` column this instance reads and writes. */
  queue: string;
  /** Attempts before dead-lettering, when enqueue does not say. graphile-worker's default is 25; training
   *  runs are minutes to hours long, so a handful of attempts is the useful range. */
  maxAttempts: number;
  /** Retry backoff after a failure. */
  backoff: BackoffConfig;
  /** Injectable clock (epoch ms). */
  now: Clock;
  /** Injectable uniform [0, 1) source for backoff jitter. */
  random: () => number;
  /** Id generator for jobs and lease nonces. */
  newId: () => string;
}

export const defaultSqlQueueConfig: Omit<SqlQueueConfig, 'queue'> = {
  maxAttempts: 5,
  backoff: defaultBackoff,
  now: systemClock,
  random: Math.random,
  newId: () => crypto.randomUUID(),
};

type JobRow = typeof jobs.$inferSelect;

export class SqlJobQueue<P = unknown> implements JobQueue<P> {
  readonly cfg: SqlQueueConfig;

  constructor(
    private readonly db: QueueDb,
    cfg: Partial<SqlQueueConfig> & Pick<SqlQueueConfig, 'queue'>,
  ) {
    this.cfg = { ...defaultSqlQueueConfig, ...cfg };
  }

  async enqueue(payload: P, opts: EnqueueOptions = {}): Promise<EnqueueResult> {
    const now = this.cfg.now();
    // Insert-or-find in a loop: the partial unique index (queue, dedupe_key) WHERE status in (ready, leased)
    // turns a duplicate insert into a no-op; the follow-up select finds the holder. If the holder finished in
    // between (no row found), the next insert succeeds, so the loop ends within two turns in practice.
    for (let turn = 0; turn < 5; turn++) {
      const id = `job_${this.cfg.newId()}`;
      const inserted = await this.db
        .insert(jobs)
        .values({
          id,
          queue: this.cfg.queue,
          payload: payload as unknown,
          dedupeKey: opts.dedupeKey ?? null,
          status: 'ready',
          attempts: 0,
          maxAttempts: opts.maxAttempts ?? this.cfg.maxAttempts,
          runAt: now,
          createdAt: now,
          updatedAt: now,
        })
        .onConflictDoNothing()
        .returning({ id: jobs.id });
      if (inserted.length === 1) return { id, created: true };
      if (opts.dedupeKey === undefined) throw new Error('job insert ignored without a dedupe key (id collision?)');
      const existing = await this.db
        .select({ id: jobs.id })
        .from(jobs)
        .where(and(eq(jobs.queue, this.cfg.queue), eq(jobs.dedupeKey, opts.dedupeKey), inArray(jobs.status, ['ready', 'leased'])))
        .limit(1);
      if (existing.length === 1) return { id: existing[0].id, created: false };
    }
    throw new Error(`enqueue with dedupe key ${opts.dedupeKey} kept racing; giving up`);
  }

  async claim(opts: ClaimOptions): Promise<Lease<P> | null> {
    const now = this.cfg.now();
    await this.reapExpiredLastAttempts(now);
    const lockedBy = `${opts.workerId}#${this.cfg.newId().slice(0, 8)}`;
    const lockedUntil = now + opts.leaseMs;
    // Ready and due, or leased with an expired lease (redelivery; the reap above removed those out of
    // attempts). Oldest run_at first, so a job waiting out its backoff does not starve older ones.
    const next = this.db
      .select({ id: jobs.id })
      .from(jobs)
      .where(
        and(
          eq(jobs.queue, this.cfg.queue),
          or(
            and(eq(jobs.status, 'ready'), lte(jobs.runAt, now)),
            and(eq(jobs.status, 'leased'), lte(jobs.lockedUntil, now), lt(jobs.attempts, jobs.maxAttempts)),
          ),
        ),
      )
      .orderBy(asc(jobs.runAt), asc(jobs.createdAt))
      .limit(1);
    const rows = await this.db
      .update(jobs)
      .set({ status: 'leased', attempts: sql`${jobs.attempts} + 1`, lockedBy, lockedUntil, updatedAt: now })
      .where(inArray(jobs.id, next))
      .returning();
    if (rows.length === 0) return null;
    return toLease<P>(rows[0]);
  }

  async heartbeat(lease: Lease<P>, leaseMs: number): Promise<Lease<P>> {
    const now = this.cfg.now();
    const lockedUntil = now + leaseMs;
    const rows = await this.db
      .update(jobs)
      .set({ lockedUntil, updatedAt: now })
      .where(this.holds(lease, now))
      .returning({ id: jobs.id });
    if (rows.length === 0) throw new LeaseLostError(lease.jobId, 'heartbeat after the lease ended');
    return { ...lease, lockedUntil };
  }

  async complete(lease: Lease<P>): Promise<void> {
    const now = this.cfg.now();
    const rows = await this.db
      .update(jobs)
      .set({ status: 'done', lockedBy: null, lockedUntil: null, updatedAt: now })
      .where(this.holds(lease, now))
      .returning({ id: jobs.id });
    if (rows.length === 0) throw new LeaseLostError(lease.jobId, 'complete by a consumer that no longer holds the lease');
  }

  async fail(lease: Lease<P>, error: string): Promise<FailResult> {
    const now = this.cfg.now();
    const dead = lease.attempts >= lease.maxAttempts;
    const runAt = dead ? now : now + backoffDelayMs(lease.attempts, this.cfg.backoff, this.cfg.random);
    const rows = await this.db
      .update(jobs)
      .set({
        status: dead ? 'dead' : 'ready',
        runAt,
        lastError: error.slice(0, 8_000),
        lockedBy: null,
        lockedUntil: null,
        updatedAt: now,
      })
      .where(this.holds(lease, now))
      .returning({ id: jobs.id });
    if (rows.length === 0) throw new LeaseLostError(lease.jobId, 'fail by a consumer that no longer holds the lease');
    return dead ? { status: 'dead' } : { status: 'retry', runAt };
  }

  async deadLetters(limit = 100): Promise<DeadJob<P>[]> {
    const rows = await this.db
      .select()
      .from(jobs)
      .where(and(eq(jobs.queue, this.cfg.queue), eq(jobs.status, 'dead')))
      .orderBy(desc(jobs.updatedAt))
      .limit(limit);
    return rows.map((r) => ({ id: r.id, payload: r.payload as P, attempts: r.attempts, lastError: r.lastError }));
  }

  /** One job row, for operators and tests (not part of the portable contract: SQS cannot look up by id). */
  async get(id: string): Promise<JobRow | undefined> {
    const rows = await this.db.select().from(jobs).where(eq(jobs.id, id)).limit(1);
    return rows[0];
  }

  /**
   * The lease check every mutation carries: still leased, by this very claim (nonce in locked_by, and the
   * attempt number), and not expired. Strict on expiry even when nobody has re-claimed yet, because from that
   * moment any consumer may claim it; both adapters behave the same way here.
   */
  private holds(lease: Lease<P>, now: number) {
    return and(
      eq(jobs.id, lease.jobId),
      eq(jobs.status, 'leased'),
      eq(jobs.lockedBy, lease.token),
      eq(jobs.attempts, lease.attempts),
      gt(jobs.lockedUntil, now),
    );
  }

  /** Dead-letters jobs whose holder vanished (crash, lost lease) on their last attempt. */
  private async reapExpiredLastAttempts(now: number): Promise<void> {
    await this.db
      .update(jobs)
      .set({
        status: 'dead',
        lastError: sql`coalesce(${jobs.lastError} || '; ', '') || 'lease expired on the last attempt'`,
        lockedBy: null,
        lockedUntil: null,
        updatedAt: now,
      })
      .where(
        and(
          eq(jobs.queue, this.cfg.queue),
          eq(jobs.status, 'leased'),
          lte(jobs.lockedUntil, now),
          sql`${jobs.attempts} >= ${jobs.maxAttempts}`,
        ),
      );
  }
}

function toLease<P>(r: JobRow): Lease<P> {
  return {
    jobId: r.id,
    payload: r.payload as P,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    token: r.lockedBy ?? '',
    lockedUntil: r.lockedUntil ?? 0,
  };
}
