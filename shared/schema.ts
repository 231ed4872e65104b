// Every table prefloop stores, in one file (drizzle, SQLite dialect so the same schema runs on libsql files and
// Cloudflare D1). Migrations in migrations/ are generated from this file by `npm run db:generate`; a test applies
// them to an empty database and checks they match this schema.
//
// Conventions: times are integer epoch milliseconds (the app's injectable clock writes them, so tests need no
// sleeping); JSON columns are TEXT holding JSON; ids are prefixed strings (`proj_`, `gen_`, `run_`...), except
// where an ordered integer is needed for cursors and watermarks (`seq`).
import { sql } from 'drizzle-orm';
import { index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const projects = sqliteTable('projects', {
  id: text('id').primaryKey(),
  name: text('name').notNull().unique(),
  /** Per-project training configuration overrides (JSON; validated by the worker's config schema). */
  config: text('config', { mode: 'json' }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
  createdAt: integer('created_at').notNull(),
});

export const apiKeys = sqliteTable(
  'api_keys',
  {
    id: text('id').primaryKey(),
    projectId: text('project_id').notNull().references(() => projects.id),
    name: text('name').notNull(),
    /** First characters of the key, shown in listings so a user can tell keys apart. Never enough to use. */
    prefix: text('prefix').notNull(),
    /** SHA-256 (hex) of the full key; the key itself is never stored. */
    keyHash: text('key_hash').notNull().unique(),
    scopes: text('scopes', { mode: 'json' }).$type<Array<'ingest' | 'admin'>>().notNull(),
    createdAt: integer('created_at').notNull(),
    revokedAt: integer('revoked_at'),
  },
  (t) => [index('api_keys_project_idx').on(t.projectId)],
);

export const generations = sqliteTable(
  'generations',
  {
    id: text('id').primaryKey(),
    projectId: text('project_id').notNull().references(() => projects.id),
    /** Outputs returned together (n > 1) share a request id: that is how an app offers a pairwise choice. */
    requestId: text('request_id').notNull(),
    policyVersion: integer('policy_version').notNull(),
    prompt: text('prompt').notNull(),
    output: text('output').notNull(),
    /** Sampling parameters as requested (temperature, top_p, top_k, max_tokens, stop, seed, n). */
    params: text('params', { mode: 'json' }).$type<Record<string, unknown>>().notNull(),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    finishReason: text('finish_reason', { enum: ['stop', 'length'] }).notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    index('generations_project_created_idx').on(t.projectId, t.createdAt),
    index('generations_request_idx').on(t.requestId),
  ],
);

export const feedbackTypes = ['thumbs', 'score', 'comparison', 'correction'] as const;
export type FeedbackType = (typeof feedbackTypes)[number];

export const feedback = sqliteTable(
  'feedback',
  {
    /** Insertion order: the pagination cursor and the training watermark. */
    seq: integer('seq').primaryKey({ autoIncrement: true }),
    /** Client-supplied idempotency id (or generated `fb_...`); unique within a project. */
    id: text('id').notNull(),
    projectId: text('project_id').notNull().references(() => projects.id),
    type: text('type', { enum: feedbackTypes }).notNull(),
    /** The rated generation, when the output came from prefloop; null for imported inline text. */
    generationId: text('generation_id').references(() => generations.id),
    /** For comparison events that reference generations. */
    rejectedGenerationId: text('rejected_generation_id').references(() => generations.id),
    /** Resolved prompt text (copied from the generation or given inline), so pairs never need a join. */
    prompt: text('prompt').notNull(),
    /** The rated output (thumbs, score, correction) or the chosen output (comparison). */
    response: text('response').notNull(),
    /** comparison: the rejected output. */
    rejected: text('rejected'),
    /** correction: the corrected output that beats `response`. */
    correction: text('correction'),
    /** thumbs: +1 up / -1 down; score: the numeric value. */
    value: real('value'),
    /** score: the metric's name. */
    name: text('name'),
    comment: text('comment'),
    userId: text('user_id'),
    metadata: text('metadata', { mode: 'json' }).$type<Record<string, unknown>>(),
    /** SHA-256 of the canonical request body: same id + same hash is a replay, another hash is a 409. Empty when the server chose the id (nothing can replay it). */
    bodyHash: text('body_hash').notNull(),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [
    uniqueIndex('feedback_project_id_uq').on(t.projectId, t.id),
    index('feedback_project_type_created_idx').on(t.projectId, t.type, t.createdAt),
    index('feedback_project_created_idx').on(t.projectId, t.createdAt),
    // Only rows that rate a prefloop generation: imported feedback on inline text (generation_id NULL) would add an
    // entry no query reads (lookups are by a given generation id). Measured with libsql: ~9% of a feedback row's
    // insert cost (instructions) for inline rows.
    index('feedback_generation_idx').on(t.generationId).where(sql`${t.generationId} IS NOT NULL`),
    // Keyset pagination (GET /v1/feedback) walks one project in seq order.
    index('feedback_project_seq_idx').on(t.projectId, t.seq),
    // The preference export streams one prompt group at a time (ORDER BY prompt, seq; seq is the rowid).
    index('feedback_project_prompt_idx').on(t.projectId, t.prompt),
  ],
);

export const policyStatuses = ['candidate', 'live', 'rejected', 'retired'] as const;
export type PolicyStatus = (typeof policyStatuses)[number];

/** Each project has its own lineage of policies, all descending from the shared base model. */
export const policies = sqliteTable(
  'policies',
  {
    projectId: text('project_id').notNull().references(() => projects.id),
    version: integer('version').notNull(),
    parentVersion: integer('parent_version'),
    /** Where the artifact directory lives: `file://...`, `s3://bucket/key`, or `base://` for the bundled model. */
    artifactUri: text('artifact_uri').notNull(),
    /** SHA-256 of the policy ONNX file; checked before a swap. */
    sha256: text('sha256').notNull(),
    status: text('status', { enum: policyStatuses }).notNull(),
    /** Gate numbers and evaluation metrics (slash-named keys). */
    metrics: text('metrics', { mode: 'json' }).$type<Record<string, number | string | null>>().notNull().default(sql`'{}'`),
    trainingRunId: text('training_run_id'),
    createdAt: integer('created_at').notNull(),
    activatedAt: integer('activated_at'),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.version] }), index('policies_project_status_idx').on(t.projectId, t.status)],
);

export const rewardModels = sqliteTable(
  'reward_models',
  {
    projectId: text('project_id').notNull().references(() => projects.id),
    version: integer('version').notNull(),
    parentVersion: integer('parent_version'),
    artifactUri: text('artifact_uri').notNull(),
    sha256: text('sha256').notNull(),
    metrics: text('metrics', { mode: 'json' }).$type<Record<string, number | string | null>>().notNull().default(sql`'{}'`),
    trainingRunId: text('training_run_id'),
    createdAt: integer('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.projectId, t.version] })],
);

export const runStatuses = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type RunStatus = (typeof runStatuses)[number];
export const runTriggers = ['manual', 'threshold', 'cron'] as const;

export const trainingRuns = sqliteTable(
  'training_runs',
  {
    id: text('id').primaryKey(),
    projectId: text('project_id').notNull().references(() => projects.id),
    status: text('status', { enum: runStatuses }).notNull(),
    trigger: text('trigger', { enum: runTriggers }).notNull(),
    /** pairs | reward_model | sft | ppo | evaluate | publish */
    stage: text('stage'),
    /** 0..1 within the whole run. */
    progress: real('progress').notNull().default(0),
    etaS: real('eta_s'),
    /** Resolved hyperparameters the run used. */
    config: text('config', { mode: 'json' }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    /** Latest value of each metric (slash-named keys); the full history is in run_metrics. */
    metrics: text('metrics', { mode: 'json' }).$type<Record<string, number | string | null>>().notNull().default(sql`'{}'`),
    /** Highest feedback.seq this run trained on; the next threshold trigger counts events above it. */
    feedbackWatermark: integer('feedback_watermark'),
    /** Policy version this run produced (candidate, live or rejected). */
    policyVersion: integer('policy_version'),
    error: text('error'),
    attempts: integer('attempts').notNull().default(0),
    /** Queue job that carries this run; null until the enqueue is confirmed (see shared/scheduler.ts). */
    jobId: text('job_id'),
    createdAt: integer('created_at').notNull(),
    startedAt: integer('started_at'),
    finishedAt: integer('finished_at'),
  },
  (t) => [
    index('training_runs_project_created_idx').on(t.projectId, t.createdAt),
    // At most one active run per project, enforced by the database for every writer (scheduler, API, edge).
    uniqueIndex('training_runs_one_active_uq').on(t.projectId).where(sql`status in ('queued', 'running')`),
  ],
);

/** One row per metric per logged step (PPO iteration, RM epoch...), for curves. */
export const runMetrics = sqliteTable(
  'run_metrics',
  {
    runId: text('run_id').notNull().references(() => trainingRuns.id),
    stage: text('stage').notNull(),
    step: integer('step').notNull(),
    name: text('name').notNull(),
    value: real('value').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.stage, t.step, t.name] })],
);

export const jobStatuses = ['ready', 'leased', 'done', 'dead'] as const;
export type JobStatus = (typeof jobStatuses)[number];

/** The embedded durable queue (the default; SQS replaces it in production). */
export const jobs = sqliteTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    queue: text('queue').notNull(),
    payload: text('payload', { mode: 'json' }).$type<unknown>().notNull(),
    /** Enqueueing with a key that an unfinished job already holds returns that job instead (idempotent enqueue). */
    dedupeKey: text('dedupe_key'),
    status: text('status', { enum: jobStatuses }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    maxAttempts: integer('max_attempts').notNull(),
    /** Not delivered before this time (backoff after a failure). */
    runAt: integer('run_at').notNull(),
    lockedBy: text('locked_by'),
    /** Lease end; a leased job whose lease has passed is delivered again. */
    lockedUntil: integer('locked_until'),
    lastError: text('last_error'),
    createdAt: integer('created_at').notNull(),
    updatedAt: integer('updated_at').notNull(),
  },
  (t) => [
    index('jobs_queue_status_run_at_idx').on(t.queue, t.status, t.runAt),
    uniqueIndex('jobs_queue_dedupe_uq').on(t.queue, t.dedupeKey).where(sql`status in ('ready', 'leased')`),
  ],
);
