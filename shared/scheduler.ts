// Which projects are due for a training run, and the tick that queues them (Node: a timer in the worker
// process; edge: the Workers cron trigger). Runtime-neutral: drizzle + croner (pure JS, no Node built-ins; its
// time-zone support uses Intl, which workerd provides).
//
// Triggers, per project (projects.config.schedule, validated by `projectScheduleSchema`):
//   - threshold: at least `minNewFeedback` feedback events with seq above the watermark of the project's
//     latest run (max training_runs.feedback_watermark; watermarks only grow, so max = latest);
//   - cron: a tick of `cron` fell between the project's last run (or its creation) and now, and at least
//     `cronMinNewFeedback` events are new — a scheduled run with nothing new to learn from is skipped.
// Neither fires while the project has an active run. A failed run counts as "the last run": its watermark
// was fixed at creation, so a project whose runs keep failing is retried only when new feedback arrives (or
// by hand), never in a hot loop every tick.
//
// The decision is a pure function (`decide`) so the rules are tested without a database; `schedulerTick` reads
// the state, decides, and queues through enqueueTrainingRun — whose unique index, not this code, guarantees
// one active run per project even when two schedulers tick at once (a Node worker and the edge cron).
import { Cron } from 'croner';
import { and, eq, gt, sql } from 'drizzle-orm';
import { z } from 'zod';
import { feedback, projects, trainingRuns } from './schema';
import {
  defaultRecovery,
  enqueueTrainingRun,
  type RecoveryConfig,
  reconcileDeadRuns,
  recoverUnconfirmedRuns,
  type RunTrigger,
  type TrainingQueueDeps,
} from './training-queue';

function validCron(expr: string): boolean {
  try {
    new Cron(expr, { paused: true }).stop();
    return true;
  } catch {
    return false;
  }
}

function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** Per-project schedule, stored under `schedule` in projects.config. Unknown keys are refused. */
export const projectScheduleSchema = z
  .object({
    /** Queue a run once this many new feedback events arrived since the last run; null disables. */
    minNewFeedback: z.number().int().positive().nullable().default(100),
    /** Cron expression (croner syntax: 5 or 6 fields) for periodic runs; null disables. */
    cron: z.string().refine(validCron, 'not a valid cron expression').nullable().default(null),
    /** IANA time zone the cron expression is read in. */
    timezone: z.string().refine(validTimeZone, 'not an IANA time zone').default('UTC'),
    /** A cron tick with fewer new events than this is skipped. */
    cronMinNewFeedback: z.number().int().nonnegative().default(1),
  })
  .strict();

export type ProjectSchedule = z.infer<typeof projectScheduleSchema>;

/** What the decision needs to know about one project. */
export interface ProjectState {
  projectId: string;
  schedule: ProjectSchedule;
  projectCreatedAt: number;
  /** Creation time of the latest run (any status); null if none yet. */
  lastRunAt: number | null;
  /** Feedback events above the latest run's watermark (all events if no run yet). */
  newEvents: number;
  hasActiveRun: boolean;
}

export type Decision = { due: true; trigger: Exclude<RunTrigger, 'manual'>; reason: string } | { due: false; reason: string };

/** The scheduling rule, as a pure function of the project's state and the time. */
export function decide(s: ProjectState, now: number): Decision {
  if (s.hasActiveRun) return { due: false, reason: 'a run is active' };
  const { minNewFeedback, cron, timezone, cronMinNewFeedback } = s.schedule;
  if (minNewFeedback !== null && s.newEvents >= minNewFeedback) {
    return { due: true, trigger: 'threshold', reason: `${s.newEvents} new events >= ${minNewFeedback}` };
  }
  if (cron !== null) {
    const since = s.lastRunAt ?? s.projectCreatedAt;
    const job = new Cron(cron, { paused: true, timezone });
    const tick = job.nextRun(new Date(since));
    job.stop();
    if (tick && tick.getTime() <= now) {
      if (s.newEvents >= cronMinNewFeedback) {
        return { due: true, trigger: 'cron', reason: `cron tick ${tick.toISOString()} passed with ${s.newEvents} new events` };
      }
      return { due: false, reason: `cron tick passed but only ${s.newEvents} new events (< ${cronMinNewFeedback})` };
    }
  }
  return { due: false, reason: `${s.newEvents} new events, no cron tick due` };
}

/** Reads every project's state (a few small queries per project; projects number in the tens to thousands). */
export async function projectStates(db: TrainingQueueDeps['db']): Promise<{ states: ProjectState[]; invalid: { projectId: string; error: string }[] }> {
  const rows = await db.select({ id: projects.id, config: projects.config, createdAt: projects.createdAt }).from(projects);
  const states: ProjectState[] = [];
  const invalid: { projectId: string; error: string }[] = [];
  for (const p of rows) {
    const parsed = projectScheduleSchema.safeParse((p.config as { schedule?: unknown } | null)?.schedule ?? {});
    if (!parsed.success) {
      invalid.push({ projectId: p.id, error: parsed.error.message });
      continue;
    }
    const [runs] = await db
      .select({
        lastRunAt: sql<number | null>`max(${trainingRuns.createdAt})`,
        watermark: sql<number | null>`max(${trainingRuns.feedbackWatermark})`,
        active: sql<number>`count(case when ${trainingRuns.status} in ('queued', 'running') then 1 end)`,
      })
      .from(trainingRuns)
      .where(eq(trainingRuns.projectId, p.id));
    const [{ n }] = await db
      .select({ n: sql<number>`count(*)` })
      .from(feedback)
      .where(and(eq(feedback.projectId, p.id), gt(feedback.seq, runs.watermark ?? 0)));
    states.push({
      projectId: p.id,
      schedule: parsed.data,
      projectCreatedAt: p.createdAt,
      lastRunAt: runs.lastRunAt,
      newEvents: Number(n),
      hasActiveRun: Number(runs.active) > 0,
    });
  }
  return { states, invalid };
}

export interface TickReport {
  /** Runs queued by this tick. */
  enqueued: { projectId: string; runId: string; trigger: RunTrigger; reason: string }[];
  /** Due, but another writer queued a run first (the unique index said no). */
  alreadyActive: string[];
  /** Projects whose schedule config is invalid (skipped; reported, not fatal for others). */
  invalid: { projectId: string; error: string }[];
  recovery: { requeued: string[]; abandoned: string[]; deadRunsFailed: string[] };
}

/** One scheduler pass: repair half-made runs first (so their projects are seen as free or busy correctly),
 *  then queue a run for every due project. Safe to run concurrently with itself. */
export async function schedulerTick(deps: TrainingQueueDeps, recovery: RecoveryConfig = defaultRecovery): Promise<TickReport> {
  const deadRunsFailed = await reconcileDeadRuns(deps);
  const { requeued, abandoned } = await recoverUnconfirmedRuns(deps, recovery);
  const { states, invalid } = await projectStates(deps.db);
  const report: TickReport = { enqueued: [], alreadyActive: [], invalid, recovery: { requeued, abandoned, deadRunsFailed } };
  const now = deps.now();
  for (const s of states) {
    const d = decide(s, now);
    if (!d.due) continue;
    const r = await enqueueTrainingRun(deps, { projectId: s.projectId, trigger: d.trigger });
    if (r.created) report.enqueued.push({ projectId: s.projectId, runId: r.run.id, trigger: d.trigger, reason: d.reason });
    else report.alreadyActive.push(s.projectId);
  }
  return report;
}
