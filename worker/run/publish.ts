// The database side of publishing, written so that a crash or a redelivery can never make two versions for
// one run, nor touch the live policy before the gate said yes.
//
// Versions: a run's policy (and reward model) row is inserted by ONE statement,
//   INSERT ... SELECT max(version)+1 ... WHERE NOT EXISTS (a row of this project with training_run_id = run)
// SQLite (and D1) run a statement atomically under the database write lock, so two attempts of the same run
// (a redelivery racing a worker that lost its lease but did not notice yet) cannot both insert, and two runs
// of a project cannot take the same number (the primary key would refuse it anyway). A redelivered attempt
// that finds its run's row skips training and finishes the publication from the row (`finishPublication`).
//
// Activation is one batch (atomic): the current live row → retired, the candidate → live. It runs only for a
// row whose stored gate decision passed; rejected candidates are inserted as `rejected` and never activated.
import { and, desc, eq, sql } from 'drizzle-orm';
import type { QueueDb } from '../../shared/queue/sql-queue';
import { policies, rewardModels, trainingRuns } from '../../shared/schema';

export type PolicyRow = typeof policies.$inferSelect;
export type RewardModelRow = typeof rewardModels.$inferSelect;
type Metrics = Record<string, number | string | null>;

/** A database that can run statements atomically together (libsql and D1 drizzle both can). */
export type BatchDb = QueueDb & { batch(stmts: readonly unknown[]): Promise<unknown> };

export async function livePolicy(db: QueueDb, projectId: string): Promise<PolicyRow | undefined> {
  const rows = await db.select().from(policies).where(and(eq(policies.projectId, projectId), eq(policies.status, 'live')));
  return rows.sort((a, b) => (b.activatedAt ?? 0) - (a.activatedAt ?? 0))[0];
}

export async function latestRewardModel(db: QueueDb, projectId: string): Promise<RewardModelRow | undefined> {
  const [row] = await db.select().from(rewardModels).where(eq(rewardModels.projectId, projectId)).orderBy(desc(rewardModels.version)).limit(1);
  return row;
}

export async function policyOfRun(db: QueueDb, projectId: string, runId: string): Promise<PolicyRow | undefined> {
  const [row] = await db.select().from(policies).where(and(eq(policies.projectId, projectId), eq(policies.trainingRunId, runId))).limit(1);
  return row;
}

export async function rewardModelOfRun(db: QueueDb, projectId: string, runId: string): Promise<RewardModelRow | undefined> {
  const [row] = await db.select().from(rewardModels).where(and(eq(rewardModels.projectId, projectId), eq(rewardModels.trainingRunId, runId))).limit(1);
  return row;
}

/**
 * Version 1 = the base model, live, for a project that has no policy at all (the API's registry does the same
 * on first use; whichever comes first wins, the other's insert is a no-op on the primary key).
 */
export async function ensureBasePolicy(db: QueueDb, projectId: string, baseUri: string, sha256: string, now: number): Promise<void> {
  const any = await db.select({ v: policies.version }).from(policies).where(eq(policies.projectId, projectId)).limit(1);
  if (any.length) return;
  await db
    .insert(policies)
    .values({ projectId, version: 1, parentVersion: null, artifactUri: baseUri, sha256, status: 'live', metrics: {}, createdAt: now, activatedAt: now })
    .onConflictDoNothing();
}

/** Inserts the run's policy row unless it has one; returns the run's row either way. */
export async function insertRunPolicy(
  db: QueueDb,
  row: { projectId: string; runId: string; parentVersion: number | null; artifactUri: string; sha256: string; status: 'candidate' | 'rejected'; metrics: Metrics; now: number },
): Promise<PolicyRow> {
  await db.run(sql`
    INSERT INTO policies (project_id, version, parent_version, artifact_uri, sha256, status, metrics, training_run_id, created_at)
    SELECT ${row.projectId}, coalesce(max(version), 0) + 1, ${row.parentVersion}, ${row.artifactUri}, ${row.sha256}, ${row.status},
           ${JSON.stringify(row.metrics)}, ${row.runId}, ${row.now}
    FROM policies WHERE project_id = ${row.projectId}
      AND NOT EXISTS (SELECT 1 FROM policies WHERE project_id = ${row.projectId} AND training_run_id = ${row.runId})`);
  const out = await policyOfRun(db, row.projectId, row.runId);
  if (!out) throw new Error(`policy row of run ${row.runId} missing after insert`);
  return out;
}

/** Same protocol for the reward model the run trained. */
export async function insertRunRewardModel(
  db: QueueDb,
  row: { projectId: string; runId: string; parentVersion: number | null; artifactUri: string; sha256: string; metrics: Metrics; now: number },
): Promise<RewardModelRow> {
  await db.run(sql`
    INSERT INTO reward_models (project_id, version, parent_version, artifact_uri, sha256, metrics, training_run_id, created_at)
    SELECT ${row.projectId}, coalesce(max(version), 0) + 1, ${row.parentVersion}, ${row.artifactUri}, ${row.sha256},
           ${JSON.stringify(row.metrics)}, ${row.runId}, ${row.now}
    FROM reward_models WHERE project_id = ${row.projectId}
      AND NOT EXISTS (SELECT 1 FROM reward_models WHERE project_id = ${row.projectId} AND training_run_id = ${row.runId})`);
  const out = await rewardModelOfRun(db, row.projectId, row.runId);
  if (!out) throw new Error(`reward model row of run ${row.runId} missing after insert`);
  return out;
}

/** Live → retired and candidate → live, atomically. No-op unless the row is still a candidate. */
export async function activateCandidate(db: BatchDb, projectId: string, version: number, now: number): Promise<boolean> {
  const [row] = await db.select().from(policies).where(and(eq(policies.projectId, projectId), eq(policies.version, version)));
  if (!row || row.status !== 'candidate') return false;
  await db.batch([
    db.update(policies).set({ status: 'retired' }).where(and(eq(policies.projectId, projectId), eq(policies.status, 'live'))),
    db.update(policies).set({ status: 'live', activatedAt: now }).where(and(eq(policies.projectId, projectId), eq(policies.version, version), eq(policies.status, 'candidate'))),
  ]);
  return true;
}

/** Marks the run succeeded with its policy version (only while this job still owns it). */
export async function finishRun(db: QueueDb, runId: string, jobId: string, policyVersion: number | null, now: number): Promise<boolean> {
  const rows = await db
    .update(trainingRuns)
    .set({ status: 'succeeded', policyVersion, progress: 1, etaS: 0, stage: 'publish', finishedAt: now })
    .where(and(eq(trainingRuns.id, runId), eq(trainingRuns.status, 'running'), eq(trainingRuns.jobId, jobId)))
    .returning({ id: trainingRuns.id });
  return rows.length === 1;
}

/** Fails the run for a reason retrying cannot fix (no data, invalid config); the job then completes. */
export async function failRunPermanently(db: QueueDb, runId: string, jobId: string, error: string, now: number): Promise<void> {
  await db
    .update(trainingRuns)
    .set({ status: 'failed', error, finishedAt: now })
    .where(and(eq(trainingRuns.id, runId), eq(trainingRuns.status, 'running'), eq(trainingRuns.jobId, jobId)));
}
