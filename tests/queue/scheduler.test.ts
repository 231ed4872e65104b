// Scheduler decisions (pure), and the run/job protocol on a real libsql file with the SQL queue: threshold and
// cron triggers, at most one active run per project under concurrent triggers, recovery of half-made runs,
// dead jobs failing their runs, and the worker-side gate.
import { eq, sql } from 'drizzle-orm';
import type { LibSQLDatabase } from 'drizzle-orm/libsql';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { JobQueue } from '../../shared/queue/contract';
import { SqlJobQueue } from '../../shared/queue/sql-queue';
import { decide, type ProjectState, projectScheduleSchema, schedulerTick } from '../../shared/scheduler';
import { feedback, jobs, projects, trainingRuns } from '../../shared/schema';
import {
  beginRunAttempt,
  enqueueTrainingRun,
  onTrainingJobFailed,
  TRAINING_QUEUE,
  type TrainingJobPayload,
  type TrainingQueueDeps,
} from '../../shared/training-queue';
import { runQueue } from '../../worker/queue-runner';
import { makeTestDb, type TestDb } from './helpers';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 25, 9, 30); // 09:30 UTC

describe('decide (pure)', () => {
  const base: ProjectState = {
    projectId: 'proj_a',
    schedule: projectScheduleSchema.parse({ minNewFeedback: 10 }),
    projectCreatedAt: T0 - 24 * HOUR,
    lastRunAt: T0 - HOUR,
    newEvents: 0,
    hasActiveRun: false,
  };

  it('threshold: due at N new events, not at N - 1, never while a run is active', () => {
    expect(decide({ ...base, newEvents: 9 }, T0).due).toBe(false);
    expect(decide({ ...base, newEvents: 10 }, T0)).toMatchObject({ due: true, trigger: 'threshold' });
    expect(decide({ ...base, newEvents: 500, hasActiveRun: true }, T0)).toMatchObject({ due: false, reason: 'a run is active' });
    const off = { ...base, schedule: projectScheduleSchema.parse({ minNewFeedback: null }) };
    expect(decide({ ...off, newEvents: 10_000 }, T0).due).toBe(false);
  });

  it('cron: due once a tick passed since the last run, with new events; uses creation time before any run', () => {
    const hourly = { ...base, schedule: projectScheduleSchema.parse({ minNewFeedback: null, cron: '0 * * * *' }) };
    // Last run 09:10, now 09:30: the 10:00 tick has not come.
    expect(decide({ ...hourly, lastRunAt: T0 - 20 * 60_000, newEvents: 5 }, T0).due).toBe(false);
    // Last run 08:50: the 09:00 tick passed.
    expect(decide({ ...hourly, lastRunAt: T0 - 40 * 60_000, newEvents: 5 }, T0)).toMatchObject({ due: true, trigger: 'cron' });
    // Same, but nothing new to learn from.
    expect(decide({ ...hourly, lastRunAt: T0 - 40 * 60_000, newEvents: 0 }, T0)).toMatchObject({ due: false });
    // No run yet: counted from the project's creation.
    expect(decide({ ...hourly, lastRunAt: null, projectCreatedAt: T0 - 5 * 60_000, newEvents: 5 }, T0).due).toBe(false);
    expect(decide({ ...hourly, lastRunAt: null, projectCreatedAt: T0 - 45 * 60_000, newEvents: 5 }, T0).due).toBe(true);
  });

  it('cron reads the expression in the project time zone', () => {
    // 10:00 in Berlin (UTC+1 in November) is 09:00 UTC: passed at 09:30 UTC for a run at 08:45 UTC.
    const berlin = { ...base, schedule: projectScheduleSchema.parse({ minNewFeedback: null, cron: '0 10 * * *', timezone: 'Europe/Berlin' }) };
    expect(decide({ ...berlin, lastRunAt: T0 - 45 * 60_000, newEvents: 1 }, T0).due).toBe(true);
    const utc = { ...berlin, schedule: { ...berlin.schedule, timezone: 'UTC' } };
    expect(decide({ ...utc, lastRunAt: T0 - 45 * 60_000, newEvents: 1 }, T0).due).toBe(false);
  });

  it('refuses invalid schedules: unknown keys, bad cron, bad time zone', () => {
    expect(projectScheduleSchema.safeParse({ minNewFeedbacks: 3 }).success).toBe(false);
    expect(projectScheduleSchema.safeParse({ cron: 'every tuesday' }).success).toBe(false);
    expect(projectScheduleSchema.safeParse({ cron: '0 3 * * *', timezone: 'Mars/Olympus' }).success).toBe(false);
    expect(projectScheduleSchema.safeParse({ minNewFeedback: 0 }).success).toBe(false);
    expect(projectScheduleSchema.parse({})).toEqual({ minNewFeedback: 100, cron: null, timezone: 'UTC', cronMinNewFeedback: 1 });
  });
});

describe('training runs on the SQL queue', () => {
  let tdb: TestDb;
  let db: LibSQLDatabase;
  let db2: LibSQLDatabase;
  let t: number;
  let queue: SqlJobQueue<TrainingJobPayload>;
  let deps: TrainingQueueDeps;
  let fbCount = 0;
  let projCount = 0;
  // Each test its own queue name, so one test's leftover jobs are never claimed by another.
  let qname = TRAINING_QUEUE;
  let qCount = 0;

  beforeAll(async () => {
    tdb = await makeTestDb();
    db = await tdb.connect();
    db2 = await tdb.connect();
  });
  afterAll(() => tdb?.close());
  beforeEach(() => {
    t = T0;
    qname = `${TRAINING_QUEUE}-${++qCount}`;
    queue = new SqlJobQueue<TrainingJobPayload>(db, { queue: qname, now: () => t, maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0, jitter: 0 } });
    deps = { db, queue, now: () => t };
  });

  async function project(schedule: Record<string, unknown>, createdAt = T0 - 24 * HOUR): Promise<string> {
    const id = `proj_${++projCount}_${Math.random().toString(36).slice(2, 8)}`;
    await db.insert(projects).values({ id, name: id, config: { schedule }, createdAt });
    return id;
  }
  async function addFeedback(projectId: string, n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      await db.insert(feedback).values({
        id: `fb_${++fbCount}`,
        projectId,
        type: 'thumbs',
        prompt: 'p',
        response: 'r',
        value: 1,
        bodyHash: `h${fbCount}`,
        createdAt: t,
      });
    }
  }
  const runsOf = (projectId: string) => db.select().from(trainingRuns).where(eq(trainingRuns.projectId, projectId));
  const jobsFor = (runId: string) => db.select().from(jobs).where(eq(jobs.dedupeKey, runId));
  async function finish(projectId: string): Promise<void> {
    // Stand-in for the worker: take the job, pass the gate, succeed, complete.
    const lease = (await queue.claim({ workerId: 'w', leaseMs: 60_000 }))!;
    expect(lease.payload.projectId).toBe(projectId);
    const begun = await beginRunAttempt(db, lease.jobId, lease.payload, t);
    expect(begun.proceed).toBe(true);
    await db.update(trainingRuns).set({ status: 'succeeded', finishedAt: t }).where(eq(trainingRuns.id, lease.payload.runId));
    await queue.complete(lease);
  }

  it('threshold: queues one run with a fixed watermark and a confirmed job; re-arms above the watermark', async () => {
    const p = await project({ minNewFeedback: 3 });
    await addFeedback(p, 2);
    expect((await schedulerTick(deps)).enqueued.filter((e) => e.projectId === p)).toEqual([]);
    await addFeedback(p, 1);
    const r1 = await schedulerTick(deps);
    const mine = r1.enqueued.filter((e) => e.projectId === p);
    expect(mine).toHaveLength(1);
    expect(mine[0].trigger).toBe('threshold');
    const [run] = await runsOf(p);
    const [{ maxSeq }] = await db.select({ maxSeq: sql<number>`max(${feedback.seq})` }).from(feedback).where(eq(feedback.projectId, p));
    expect(run).toMatchObject({ status: 'queued', trigger: 'threshold', feedbackWatermark: maxSeq });
    const [job] = await jobsFor(run.id);
    expect(run.jobId).toBe(job.id);
    expect(job).toMatchObject({ queue: qname, status: 'ready', payload: { runId: run.id, projectId: p } });
    // Active: more feedback does not queue a second run.
    await addFeedback(p, 10);
    await schedulerTick(deps);
    expect(await runsOf(p)).toHaveLength(1);
    // Once it finished, the 10 events above its watermark trigger the next one, with a higher watermark.
    await finish(p);
    t += 1_000;
    const r3 = await schedulerTick(deps);
    expect(r3.enqueued.filter((e) => e.projectId === p)).toHaveLength(1);
    const runs = (await runsOf(p)).sort((a, b) => a.createdAt - b.createdAt);
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'queued']);
    expect(runs[1].feedbackWatermark).toBe(maxSeq + 10);
  });

  it('cron: queues at the tick, once, and not without new feedback', async () => {
    const p = await project({ minNewFeedback: null, cron: '0 * * * *' }, T0 - 10 * 60_000);
    await addFeedback(p, 1);
    expect((await schedulerTick(deps)).enqueued.filter((e) => e.projectId === p)).toEqual([]); // 09:30, created 09:20
    t = T0 + 31 * 60_000; // 10:01
    const r = await schedulerTick(deps);
    expect(r.enqueued.filter((e) => e.projectId === p).map((e) => e.trigger)).toEqual(['cron']);
    await finish(p);
    t = T0 + 91 * 60_000; // 11:01, but nothing new since the 10:01 run
    expect((await schedulerTick(deps)).enqueued.filter((e) => e.projectId === p)).toEqual([]);
    await addFeedback(p, 1);
    expect((await schedulerTick(deps)).enqueued.filter((e) => e.projectId === p)).toHaveLength(1);
  });

  it('concurrent triggers from two connections create exactly one run and one job', async () => {
    const p = await project({ minNewFeedback: null });
    const depsB: TrainingQueueDeps = { db: db2, queue: new SqlJobQueue<TrainingJobPayload>(db2, { queue: qname, now: () => t }), now: () => t };
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => enqueueTrainingRun(i % 2 ? depsB : deps, { projectId: p, trigger: 'manual' })),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.run.id)).size).toBe(1);
    const runs = await runsOf(p);
    expect(runs).toHaveLength(1);
    expect(await jobsFor(runs[0].id)).toHaveLength(1);
  });

  it('the database refuses a second active run from any writer (unique index)', async () => {
    const p = await project({});
    await enqueueTrainingRun(deps, { projectId: p, trigger: 'manual' });
    const err = await db
      .insert(trainingRuns)
      .values({ id: `run_x${projCount}`, projectId: p, status: 'running', trigger: 'manual', createdAt: t })
      .then(() => null, (e: Error) => e);
    expect(String((err as { cause?: unknown } | null)?.cause ?? err)).toMatch(/UNIQUE constraint failed: training_runs.project_id/);
  });

  it('a failed enqueue fails the run at once: no row waits for a job', async () => {
    const p = await project({});
    const broken: JobQueue<TrainingJobPayload> = { ...queue, enqueue: async () => Promise.reject(new Error('SQS unreachable')) } as never;
    await expect(enqueueTrainingRun({ ...deps, queue: broken }, { projectId: p, trigger: 'manual' })).rejects.toThrow('SQS unreachable');
    const [run] = await runsOf(p);
    expect(run).toMatchObject({ status: 'failed', jobId: null });
    expect(run.error).toContain('SQS unreachable');
    // The project is free again.
    expect((await enqueueTrainingRun(deps, { projectId: p, trigger: 'manual' })).created).toBe(true);
  });

  it('a creator that died after inserting the run: the tick re-enqueues it once; later ones give up', async () => {
    const p = await project({ minNewFeedback: null });
    const q = await project({ minNewFeedback: null });
    // As if the process died between step 1 (row) and step 2 (enqueue).
    await db.insert(trainingRuns).values({ id: `run_orphan_${p}`, projectId: p, status: 'queued', trigger: 'manual', createdAt: t });
    await db.insert(trainingRuns).values({ id: `run_late_${q}`, projectId: q, status: 'queued', trigger: 'manual', createdAt: t - 5 * 60_000 });
    t += 31_000;
    const r = await schedulerTick(deps);
    expect(r.recovery.requeued).toContain(`run_orphan_${p}`);
    expect(r.recovery.abandoned).toContain(`run_late_${q}`);
    const [run] = await runsOf(p);
    const found = await jobsFor(run.id);
    expect(found).toHaveLength(1);
    expect(run.jobId).toBe(found[0].id);
    expect((await runsOf(q))[0]).toMatchObject({ status: 'failed', error: 'enqueue was never confirmed' });
    // A second tick changes nothing (the run is confirmed now).
    t += 31_000;
    expect((await schedulerTick(deps)).recovery.requeued).not.toContain(`run_orphan_${p}`);
    expect(await jobsFor(run.id)).toHaveLength(1);
    // A job that turns up late for the abandoned run is turned away by the gate.
    const late = await beginRunAttempt(db, 'job_late', { runId: `run_late_${q}`, projectId: q }, t);
    expect(late).toEqual({ proceed: false, reason: 'run is failed' });
  });

  it('the gate: the first delivery binds the run, its redelivery resumes, a duplicate job is turned away', async () => {
    const p = await project({});
    const { run } = await enqueueTrainingRun(deps, { projectId: p, trigger: 'manual' });
    const lease = (await queue.claim({ workerId: 'w1', leaseMs: 1_000 }))!;
    const first = await beginRunAttempt(db, lease.jobId, lease.payload, t);
    expect(first).toMatchObject({ proceed: true, run: { status: 'running', attempts: 1, startedAt: t, jobId: run.jobId } });
    t += 2_000; // worker w1 died; the lease ran out
    const again = (await queue.claim({ workerId: 'w2', leaseMs: 1_000 }))!;
    expect(again.jobId).toBe(lease.jobId);
    const second = await beginRunAttempt(db, again.jobId, again.payload, t);
    expect(second).toMatchObject({ proceed: true, run: { attempts: 2, startedAt: T0 } });
    const dup = await beginRunAttempt(db, 'job_duplicate', again.payload, t);
    expect(dup).toEqual({ proceed: false, reason: `run belongs to job ${run.jobId}` });
    await queue.complete(again);
  });

  it('a dead job fails its run: through the runner hook, and through the tick when no hook ran', async () => {
    // Through the runner: the handler always throws; maxAttempts 2.
    const p = await project({});
    const { run } = await enqueueTrainingRun(deps, { projectId: p, trigger: 'manual' });
    const realClock = { ...deps, queue: new SqlJobQueue<TrainingJobPayload>(db, { queue: qname, maxAttempts: 2, backoff: { baseMs: 0, maxMs: 0, jitter: 0 } }) };
    const runner = runQueue(
      realClock.queue,
      async (payload, helpers) => {
        const gate = await beginRunAttempt(db, helpers.job.id, payload, Date.now());
        if (!gate.proceed) return;
        throw new Error('trainer exploded');
      },
      { workerId: 'w', leaseMs: 60_000, pollMs: 10, waitMs: 0, log: () => {}, onFailed: onTrainingJobFailed(deps) },
    );
    const deadline = Date.now() + 5_000;
    while ((await runsOf(p))[0].status !== 'failed' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await runner.stop();
    const [failed] = await runsOf(p);
    expect(failed.status).toBe('failed');
    expect(failed.error).toContain('trainer exploded');
    expect(failed.id).toBe(run.id);

    // No hook: the worker died on the last attempt; the reaper dead-letters the job, the tick fails the run.
    const q = await project({});
    const { run: run2 } = await enqueueTrainingRun(deps, { projectId: q, trigger: 'manual' });
    await db.update(jobs).set({ maxAttempts: 1 }).where(eq(jobs.id, run2.jobId!));
    const l = (await queue.claim({ workerId: 'w', leaseMs: 1_000 }))!;
    expect((await beginRunAttempt(db, l.jobId, l.payload, t)).proceed).toBe(true);
    t += 2_000;
    expect(await queue.claim({ workerId: 'w', leaseMs: 1_000 })).toBeNull(); // reaps
    const r = await schedulerTick(deps);
    expect(r.recovery.deadRunsFailed).toContain(run2.id);
    expect((await runsOf(q))[0]).toMatchObject({ status: 'failed' });
    // And the project can train again.
    expect((await enqueueTrainingRun(deps, { projectId: q, trigger: 'manual' })).created).toBe(true);
  });
});
