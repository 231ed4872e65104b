// How a training run and its queue job are created and kept in step: the one protocol every trigger uses
// (POST /v1/training-runs, the threshold/cron scheduler, the edge cron), on either queue adapter.
//
// The problem: the run row lives in the database, the job in a queue that may be another system (SQS), so
// no transaction covers both. The protocol, and why nothing is left half-made:
//
//   1. INSERT the run (status queued, job_id NULL, feedback_watermark = max(feedback.seq) now). The partial
//      unique index training_runs_one_active_uq makes this the ONE place that decides "at most one active run
//      per project", for every writer at once; a conflict returns the active run instead (idempotent trigger).
//   2. enqueue({ runId }) with dedupeKey = runId.
//   3. UPDATE the run SET job_id = <job id>: the enqueue is confirmed.
//   - If step 2 throws, the run is marked failed at once (no row without a job).
//   - If the process dies between 1 and 3, the row stays queued with job_id NULL. `recoverUnconfirmedRuns`
//     (every scheduler tick) re-enqueues it with the same dedupe key, which is a no-op if step 2 had in fact
//     succeeded: SQL dedupes while the job is unfinished, SQS FIFO for 5 minutes. Past `giveUpAfterMs`
//     (4 min, inside SQS's window) it marks the run failed instead; a job that still shows up for it later
//     is discarded by `beginRunAttempt` (the run is no longer queued).
//   - A job without a row cannot arise: the row is written first.
//   - A job that dies (dead-lettered) fails its run: the runner's onFailed hook (`onTrainingJobFailed`) at
//     once, and `reconcileDeadRuns` on every tick for deaths no hook saw (a crash on the last attempt; SQS
//     moving a message to the DLQ).
//
// On the worker side `beginRunAttempt` is the gate every delivery passes: it moves the run to running and
// binds it to the delivering job (job_id) in one conditional UPDATE; a delivery of any other job for the run
// (a duplicate) or for a finished run is told to complete without doing anything.
//
// The watermark is fixed when the run is created, so a redelivered job trains on exactly the same feedback
// (seq <= feedback_watermark) as the first attempt did, and the threshold trigger counts events above it.
import { and, eq, inArray, isNull, lt, sql } from 'drizzle-orm';
import { newId } from './ids';
import type { Clock, FailResult, JobQueue, Lease } from './queue/contract';
import type { QueueDb } from './queue/sql-queue';
import { feedback, runTriggers, trainingRuns } from './schema';

/** The queue name training jobs use in the `jobs` table. */
export const TRAINING_QUEUE = 'training';

/** A training job's payload: the run row holds everything else. */
export interface TrainingJobPayload {
  runId: string;
  projectId: string;
}

export type TrainingRun = typeof trainingRuns.$inferSelect;
export type RunTrigger = (typeof runTriggers)[number];

export interface TrainingQueueDeps {
  db: QueueDb;
  queue: JobQueue<TrainingJobPayload>;
  now: Clock;
  /** Run id generator (`run_...`). */
  newRunId?: () => string;
}

export interface EnqueueRunRequest {
  projectId: string;
  trigger: RunTrigger;
  /** Resolved hyperparameters to store on the run (validated by the caller). */
  config?: Record<string, unknown>;
}

export type EnqueueRunResult =
  /** A new run was queued. */
  | { created: true; run: TrainingRun }
  /** The project already had an active (queued or running) run; it is returned and nothing was queued. */
  | { created: false; run: TrainingRun };

/** Queues a training run for a project unless one is already active (steps 1–3 above). */
export async function enqueueTrainingRun(deps: TrainingQueueDeps, req: EnqueueRunRequest): Promise<EnqueueRunResult> {
  const { db } = deps;
  for (let turn = 0; turn < 3; turn++) {
    const now = deps.now();
    const [{ maxSeq }] = await db
      .select({ maxSeq: sql<number | null>`max(${feedback.seq})` })
      .from(feedback)
      .where(eq(feedback.projectId, req.projectId));
    const inserted = await db
      .insert(trainingRuns)
      .values({
        id: (deps.newRunId ?? (() => newId('run')))(),
        projectId: req.projectId,
        status: 'queued',
        trigger: req.trigger,
        config: req.config ?? {},
        feedbackWatermark: maxSeq ?? 0,
        createdAt: now,
      })
      .onConflictDoNothing()
      .returning();
    if (inserted.length === 1) {
      const run = inserted[0];
      const jobId = await sendJob(deps, run);
      return { created: true, run: { ...run, jobId } };
    }
    const active = await activeRun(db, req.projectId);
    if (active) return { created: false, run: active };
    // The active run finished between our insert and our select: try again.
  }
  throw new Error(`could not enqueue a run for ${req.projectId}: the active run kept changing`);
}

/** The project's queued or running run, if any. */
export async function activeRun(db: QueueDb, projectId: string): Promise<TrainingRun | undefined> {
  const rows = await db
    .select()
    .from(trainingRuns)
    .where(and(eq(trainingRuns.projectId, projectId), inArray(trainingRuns.status, ['queued', 'running'])))
    .limit(1);
  return rows[0];
}

/** Steps 2 and 3: enqueue, then confirm. A failed enqueue fails the run, so no row waits for a job forever. */
async function sendJob(deps: TrainingQueueDeps, run: TrainingRun): Promise<string> {
  let jobId: string;
  try {
    ({ id: jobId } = await deps.queue.enqueue({ runId: run.id, projectId: run.projectId }, { dedupeKey: run.id }));
  } catch (e) {
    await deps.db
      .update(trainingRuns)
      .set({ status: 'failed', error: `enqueue failed: ${String(e)}`, finishedAt: deps.now() })
      .where(and(eq(trainingRuns.id, run.id), eq(trainingRuns.status, 'queued'), isNull(trainingRuns.jobId)));
    throw e;
  }
  await deps.db
    .update(trainingRuns)
    .set({ jobId })
    .where(and(eq(trainingRuns.id, run.id), isNull(trainingRuns.jobId)));
  return jobId;
}

export interface RecoveryConfig {
  /** A queued run with no confirmed job this old is re-enqueued (its creator presumably died mid-way). */
  confirmAfterMs: number;
  /** ... and this old, failed instead: past SQS FIFO's 5-minute dedupe window a re-send could duplicate. */
  giveUpAfterMs: number;
}

export const defaultRecovery: RecoveryConfig = { confirmAfterMs: 30_000, giveUpAfterMs: 4 * 60_000 };

/** Re-enqueues (or gives up on) runs whose enqueue was never confirmed. Returns the run ids it touched. */
export async function recoverUnconfirmedRuns(
  deps: TrainingQueueDeps,
  cfg: RecoveryConfig = defaultRecovery,
): Promise<{ requeued: string[]; abandoned: string[] }> {
  const now = deps.now();
  const stale = await deps.db
    .select()
    .from(trainingRuns)
    .where(and(eq(trainingRuns.status, 'queued'), isNull(trainingRuns.jobId), lt(trainingRuns.createdAt, now - cfg.confirmAfterMs)));
  const out = { requeued: [] as string[], abandoned: [] as string[] };
  for (const run of stale) {
    if (run.createdAt < now - cfg.giveUpAfterMs) {
      await deps.db
        .update(trainingRuns)
        .set({ status: 'failed', error: 'enqueue was never confirmed', finishedAt: now })
        .where(and(eq(trainingRuns.id, run.id), eq(trainingRuns.status, 'queued'), isNull(trainingRuns.jobId)));
      out.abandoned.push(run.id);
    } else {
      await sendJob(deps, run).catch(() => undefined); // a failed re-send already failed the run
      out.requeued.push(run.id);
    }
  }
  return out;
}

/** Fails active runs whose job was dead-lettered (deaths the runner's hook did not see). */
export async function reconcileDeadRuns(deps: TrainingQueueDeps): Promise<string[]> {
  const failed: string[] = [];
  for (const dead of await deps.queue.deadLetters()) {
    if (typeof dead.payload?.runId !== 'string') continue;
    if (await failRun(deps, dead.payload.runId, `job dead-lettered after ${dead.attempts} attempts: ${dead.lastError ?? 'see worker logs'}`)) {
      failed.push(dead.payload.runId);
    }
  }
  return failed;
}

async function failRun(deps: TrainingQueueDeps, runId: string, error: string): Promise<boolean> {
  const rows = await deps.db
    .update(trainingRuns)
    .set({ status: 'failed', error: sql`coalesce(${trainingRuns.error}, ${error})`, finishedAt: deps.now() })
    .where(and(eq(trainingRuns.id, runId), inArray(trainingRuns.status, ['queued', 'running'])))
    .returning({ id: trainingRuns.id });
  return rows.length === 1;
}

/** The runner's `onFailed` hook for training jobs: a dead-lettered job fails its run at once. */
export function onTrainingJobFailed(deps: TrainingQueueDeps) {
  return async (lease: Lease<TrainingJobPayload>, error: string, result: FailResult): Promise<void> => {
    if (result.status === 'dead') await failRun(deps, lease.payload.runId, `failed after ${lease.attempts} attempts: ${error.slice(0, 2_000)}`);
  };
}

export type BeginResult =
  /** This delivery owns the run: train (resume if `run.attempts > 1` and stages were recorded). */
  | { proceed: true; run: TrainingRun }
  /** Duplicate or stale delivery (run finished, failed, canceled, or bound to another job): complete the job
   *  without doing anything. */
  | { proceed: false; reason: string };

/**
 * The gate at the start of every training job attempt (call it first in the handler with `helpers.job.id`
 * and the payload), in ONE conditional UPDATE: queued/running → running,
 * bind the run to this job (first delivery wins), count the attempt. A redelivery of the same job after a
 * crash passes (same job_id) and resumes; anything else does not.
 */
export async function beginRunAttempt(db: QueueDb, jobId: string, payload: TrainingJobPayload, now: number): Promise<BeginResult> {
  const rows = await db
    .update(trainingRuns)
    .set({
      status: 'running',
      jobId: sql`coalesce(${trainingRuns.jobId}, ${jobId})`,
      attempts: sql`${trainingRuns.attempts} + 1`,
      startedAt: sql`coalesce(${trainingRuns.startedAt}, ${now})`,
    })
    .where(
      and(
        eq(trainingRuns.id, payload.runId),
        inArray(trainingRuns.status, ['queued', 'running']),
        sql`(${trainingRuns.jobId} is null or ${trainingRuns.jobId} = ${jobId})`,
      ),
    )
    .returning();
  if (rows.length === 1) return { proceed: true, run: rows[0] };
  const [run] = await db.select().from(trainingRuns).where(eq(trainingRuns.id, payload.runId)).limit(1);
  if (!run) return { proceed: false, reason: 'no such run' };
  if (run.status !== 'queued' && run.status !== 'running') return { proceed: false, reason: `run is ${run.status}` };
  return { proceed: false, reason: `run belongs to job ${run.jobId}` };
}
