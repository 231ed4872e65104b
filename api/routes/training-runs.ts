// Training runs and the per-project training configuration over HTTP:
//   POST /v1/training-runs          (admin) queue a run; idempotent: while the project has an active run, that
//                                   run is returned (200) and nothing is queued; a new run is 201
//   GET  /v1/training-runs          the project's runs, newest first
//   GET  /v1/training-runs/{id}     stage, progress, ETA, latest metrics and every per-step metric
//   GET  /v1/config/training        the stored overrides and the resolved configuration (defaults filled in)
//   PUT  /v1/config/training        (admin) replace the overrides; invalid → 400 `invalid_training_config`
//                                   naming each bad field (unknown keys are refused, never ignored)
// The run stores the configuration resolved when it was queued, so editing the config never changes a run
// that is already waiting or training.
import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, desc, eq, lt } from 'drizzle-orm';
import { SqlJobQueue } from '../../shared/queue/sql-queue';
import { projects, runMetrics, trainingRuns } from '../../shared/schema';
import { InvalidTrainingConfigError, parseTrainingConfig, projectTrainingConfig, type TrainingConfig } from '../../shared/training-config';
import { enqueueTrainingRun, TRAINING_QUEUE, type TrainingJobPayload, type TrainingRun } from '../../shared/training-queue';
import { requireScope } from '../auth';
import type { AppContext, RegisterRoutes } from '../context';
import { ApiError } from '../errors';
import { bearerSecurity, errorResponses } from './common';

const Metrics = z.record(z.string(), z.union([z.number(), z.string(), z.null()])).openapi('RunMetricValues');

const RunSchema = z
  .object({
    id: z.string().openapi({ example: 'run_01H...' }),
    status: z.enum(['queued', 'running', 'succeeded', 'failed', 'canceled']),
    trigger: z.enum(['manual', 'threshold', 'cron']),
    stage: z.string().nullable().openapi({ description: 'pairs | reward_model | sft | ppo | evaluate | publish' }),
    progress: z.number().openapi({ description: '0..1 over the whole run' }),
    eta_s: z.number().nullable().openapi({ description: 'Estimated seconds left (null until the estimate means something)' }),
    metrics: Metrics.openapi({ description: 'Latest value of each metric (slash-named: objective/kl, rm/accuracy, gate/passed, ...)' }),
    config: z.record(z.string(), z.unknown()).openapi({ description: 'The resolved training configuration this run uses' }),
    feedback_watermark: z.number().nullable(),
    policy_version: z.number().nullable().openapi({ description: 'The policy version this run produced (live, or rejected by the gate)' }),
    error: z.string().nullable(),
    attempts: z.number(),
    created_at: z.number(),
    started_at: z.number().nullable(),
    finished_at: z.number().nullable(),
  })
  .openapi('TrainingRun');

const MetricPoint = z.object({ stage: z.string(), step: z.number(), value: z.number() });
const RunDetail = RunSchema.extend({
  history: z.record(z.string(), z.array(MetricPoint)).openapi({ description: 'Every logged value per metric name, in stage and step order' }),
}).openapi('TrainingRunDetail');

const TrainingConfigBody = z.record(z.string(), z.unknown()).openapi('TrainingConfigOverrides', {
  description: 'Overrides of the defaults, e.g. {"ppo": {"klTarget": 3}, "run": {"klBudget": 8}}; sections rewardModel, sft, ppo, run',
  example: { ppo: { klTarget: 3 }, run: { klBudget: 8, maxWallS: 900 } },
});
const TrainingConfigResponse = z
  .object({ overrides: z.record(z.string(), z.unknown()), resolved: z.record(z.string(), z.unknown()) })
  .openapi('TrainingConfig');

const CreateBody = z
  .object({ config: TrainingConfigBody.optional().openapi({ description: 'One-off overrides for this run, over the project configuration' }) })
  .strict()
  .openapi('CreateTrainingRun');

const IdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'run_01H...' }) });

const create = createRoute({
  method: 'post',
  path: '/v1/training-runs',
  tags: ['training'],
  summary: 'Queue a training run (admin; send `{}` or one-off `config` overrides). Idempotent: an active run of the project is returned instead (200).',
  security: bearerSecurity,
  request: { body: { content: { 'application/json': { schema: CreateBody } }, required: false } },
  responses: {
    201: { description: 'Queued', content: { 'application/json': { schema: z.object({ run: RunSchema, created: z.boolean() }) } } },
    200: { description: 'The project already had an active run; it is returned', content: { 'application/json': { schema: z.object({ run: RunSchema, created: z.boolean() }) } } },
    ...errorResponses(400, 401, 403, 415, 429),
  },
});

const list = createRoute({
  method: 'get',
  path: '/v1/training-runs',
  tags: ['training'],
  summary: "The project's training runs, newest first",
  security: bearerSecurity,
  request: {
    query: z.object({
      limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ param: { name: 'limit', in: 'query' } }),
      before: z.coerce.number().int().optional().openapi({ param: { name: 'before', in: 'query' }, description: 'Only runs created before this time (epoch ms): the next page' }),
    }),
  },
  responses: { 200: { description: 'Runs', content: { 'application/json': { schema: z.object({ runs: z.array(RunSchema) }) } } }, ...errorResponses(400, 401, 403, 429) },
});

const get = createRoute({
  method: 'get',
  path: '/v1/training-runs/{id}',
  tags: ['training'],
  summary: 'One run: stage, progress, ETA, latest metrics and their history (live while it runs)',
  security: bearerSecurity,
  request: { params: IdParam },
  responses: { 200: { description: 'The run', content: { 'application/json': { schema: z.object({ run: RunDetail }) } } }, ...errorResponses(401, 403, 404, 429) },
});

const getConfig = createRoute({
  method: 'get',
  path: '/v1/config/training',
  tags: ['training'],
  summary: "The project's training configuration: stored overrides and the resolved values",
  security: bearerSecurity,
  responses: { 200: { description: 'Configuration', content: { 'application/json': { schema: TrainingConfigResponse } } }, ...errorResponses(401, 403, 429) },
});

const putConfig = createRoute({
  method: 'put',
  path: '/v1/config/training',
  tags: ['training'],
  summary: "Replace the project's training overrides (admin); refused with 400 naming each invalid or unknown field",
  security: bearerSecurity,
  request: { body: { content: { 'application/json': { schema: TrainingConfigBody } }, required: true } },
  responses: { 200: { description: 'Stored', content: { 'application/json': { schema: TrainingConfigResponse } } }, ...errorResponses(400, 401, 403, 415, 429) },
});

function runJson(r: TrainingRun) {
  return {
    id: r.id,
    status: r.status,
    trigger: r.trigger,
    stage: r.stage,
    progress: r.progress,
    eta_s: r.etaS,
    metrics: r.metrics,
    config: r.config,
    feedback_watermark: r.feedbackWatermark,
    policy_version: r.policyVersion,
    error: r.error,
    attempts: r.attempts,
    created_at: r.createdAt,
    started_at: r.startedAt,
    finished_at: r.finishedAt,
  };
}

function configError(e: InvalidTrainingConfigError, prefix = ''): ApiError {
  const details = e.issues.map((i) => ({ path: prefix + i.path, message: i.message }));
  return new ApiError(400, 'invalid_training_config', `${details[0]?.path ?? '(config)'}: ${details[0]?.message ?? 'invalid'}`, details);
}

async function projectConfig(ctx: AppContext, projectId: string): Promise<Record<string, unknown>> {
  const [p] = await ctx.db.select({ config: projects.config }).from(projects).where(eq(projects.id, projectId));
  return (p?.config ?? {}) as Record<string, unknown>;
}

function resolve(ctx: AppContext, projectCfg: Record<string, unknown>, extra?: Record<string, unknown>): TrainingConfig {
  try {
    const base = projectTrainingConfig(projectCfg);
    if (!extra) return base;
    const own = ((projectCfg.training ?? {}) as Record<string, Record<string, unknown>>) ?? {};
    // Validate the one-off overrides on their own first, so the error names the field the caller sent.
    parseTrainingConfig(extra);
    const merged: Record<string, unknown> = { ...own };
    for (const [k, v] of Object.entries(extra)) merged[k] = { ...(own[k] ?? {}), ...(v as object) };
    return parseTrainingConfig(merged);
  } catch (e) {
    if (e instanceof InvalidTrainingConfigError) throw configError(e, extra ? 'config.' : 'training.');
    throw e;
  }
}

export const registerTrainingRunRoutes: RegisterRoutes = (app, ctx) => {
  let fallbackQueue: SqlJobQueue<TrainingJobPayload> | undefined;
  const queue = () => ctx.deps.queue ?? (fallbackQueue ??= new SqlJobQueue<TrainingJobPayload>(ctx.db, { queue: TRAINING_QUEUE, now: ctx.clock }));

  app.openapi(create, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'admin');
    const body = c.req.valid('json') ?? {};
    const cfg = resolve(ctx, await projectConfig(ctx, auth.projectId), body.config);
    const r = await enqueueTrainingRun({ db: ctx.db, queue: queue(), now: ctx.clock }, { projectId: auth.projectId, trigger: 'manual', config: cfg as unknown as Record<string, unknown> });
    return c.json({ run: runJson(r.run), created: r.created }, r.created ? 201 : 200);
  });

  app.openapi(list, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const { limit, before } = c.req.valid('query');
    const rows = await ctx.db
      .select()
      .from(trainingRuns)
      .where(before === undefined ? eq(trainingRuns.projectId, auth.projectId) : and(eq(trainingRuns.projectId, auth.projectId), lt(trainingRuns.createdAt, before)))
      .orderBy(desc(trainingRuns.createdAt), desc(trainingRuns.id))
      .limit(limit);
    return c.json({ runs: rows.map(runJson) }, 200);
  });

  app.openapi(get, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const { id } = c.req.valid('param');
    const [run] = await ctx.db.select().from(trainingRuns).where(and(eq(trainingRuns.id, id), eq(trainingRuns.projectId, auth.projectId)));
    if (!run) throw new ApiError(404, 'run_not_found', `no training run ${id} in this project`);
    const points = await ctx.db.select().from(runMetrics).where(eq(runMetrics.runId, id)).orderBy(asc(runMetrics.stage), asc(runMetrics.step));
    const history: Record<string, { stage: string; step: number; value: number }[]> = {};
    for (const p of points) (history[p.name] ??= []).push({ stage: p.stage, step: p.step, value: p.value });
    return c.json({ run: { ...runJson(run), history } }, 200);
  });

  app.openapi(getConfig, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const pc = await projectConfig(ctx, auth.projectId);
    const resolved = resolve(ctx, pc);
    return c.json({ overrides: (pc.training ?? {}) as Record<string, unknown>, resolved: resolved as unknown as Record<string, unknown> }, 200);
  });

  app.openapi(putConfig, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'admin');
    const overrides = c.req.valid('json');
    let resolved: TrainingConfig;
    try {
      resolved = parseTrainingConfig(overrides);
    } catch (e) {
      if (e instanceof InvalidTrainingConfigError) throw configError(e);
      throw e;
    }
    const pc = await projectConfig(ctx, auth.projectId);
    await ctx.db.update(projects).set({ config: { ...pc, training: overrides } }).where(eq(projects.id, auth.projectId));
    return c.json({ overrides, resolved: resolved as unknown as Record<string, unknown> }, 200);
  });
};
