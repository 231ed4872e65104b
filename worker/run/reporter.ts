// What a running training run tells the world: its stage, progress (0..1 over the whole run), ETA, and every
// per-step metric. `GET /v1/training-runs/{id}` reads exactly these columns, so a client polling the API sees
// the run move while it trains.
//
// Progress is a weighted sum over stages; the weights are the stage time shares measured by bench:rlhf on the
// base config (PPO dominates), so the ETA = elapsed · (1 − p) / p is honest within a stage's own estimate.
// Metrics: one run_metrics row per (stage, step, name), upserted, so a redelivered attempt that repeats a
// step overwrites instead of failing on the primary key; training_runs.metrics keeps the latest of each name.
import { eq, sql } from 'drizzle-orm';
import type { QueueDb } from '../../shared/queue/sql-queue';
import { runMetrics, trainingRuns } from '../../shared/schema';

export const RUN_STAGES = ['pairs', 'reward_model', 'sft', 'ppo', 'evaluate', 'publish'] as const;
export type RunStage = (typeof RUN_STAGES)[number];

/** Share of a run's wall time per stage (bench:rlhf, base config, 1,000 pairs, 256 episodes; rounded). */
export const STAGE_WEIGHTS: Record<RunStage, number> = { pairs: 0.01, reward_model: 0.25, sft: 0.04, ppo: 0.55, evaluate: 0.12, publish: 0.03 };

export class RunReporter {
  private stage: RunStage = 'pairs';
  private stageStartedAt = 0;
  private lastWrite = 0;
  private latest: Record<string, number | string | null> = {};
  /** Wall time spent per finished stage (seconds), for the run's summary and bench:rlhf. */
  readonly stageSeconds: Partial<Record<RunStage, number>> = {};

  constructor(
    private readonly db: QueueDb,
    readonly runId: string,
    private readonly now: () => number,
    private readonly startedAt: number,
    /** Least time between two progress writes (ms); metrics are always written. */
    private readonly minWriteMs = 500,
  ) {}

  /** Enters a stage (progress = the sum of the weights before it). */
  async enter(stage: RunStage): Promise<void> {
    const t = this.now();
    if (this.stageStartedAt) this.stageSeconds[this.stage] = (this.stageSeconds[this.stage] ?? 0) + (t - this.stageStartedAt) / 1000;
    this.stage = stage;
    this.stageStartedAt = t;
    await this.progress(0, true);
  }

  /** Closes the current stage's timer (call once at the end). */
  finish(): void {
    const t = this.now();
    if (this.stageStartedAt) this.stageSeconds[this.stage] = (this.stageSeconds[this.stage] ?? 0) + (t - this.stageStartedAt) / 1000;
    this.stageStartedAt = 0;
  }

  /** Progress within the current stage (0..1); throttled to one write per `minWriteMs`. */
  async progress(withinStage: number, force = false): Promise<void> {
    const t = this.now();
    if (!force && t - this.lastWrite < this.minWriteMs) return;
    this.lastWrite = t;
    const before = RUN_STAGES.slice(0, RUN_STAGES.indexOf(this.stage)).reduce((s, k) => s + STAGE_WEIGHTS[k], 0);
    const p = Math.min(0.999, before + STAGE_WEIGHTS[this.stage] * Math.max(0, Math.min(1, withinStage)));
    const elapsedS = (t - this.startedAt) / 1000;
    const etaS = p > 0.02 ? (elapsedS * (1 - p)) / p : null;
    await this.db.update(trainingRuns).set({ stage: this.stage, progress: p, etaS }).where(eq(trainingRuns.id, this.runId));
  }

  /** Records one step's metrics (slash-named) under the current stage. */
  async metrics(step: number, values: Record<string, number>, stage: RunStage = this.stage): Promise<void> {
    const rows = Object.entries(values)
      .filter(([, v]) => Number.isFinite(v))
      .map(([name, value]) => ({ runId: this.runId, stage, step, name, value }));
    if (!rows.length) return;
    await this.db
      .insert(runMetrics)
      .values(rows)
      .onConflictDoUpdate({ target: [runMetrics.runId, runMetrics.stage, runMetrics.step, runMetrics.name], set: { value: sql`excluded.value` } });
    Object.assign(this.latest, values);
    await this.db.update(trainingRuns).set({ metrics: { ...this.latest } }).where(eq(trainingRuns.id, this.runId));
  }

  latestValue(name: string): number | string | null | undefined {
    return this.latest[name];
  }

  /** Non-step facts (gate decision, counts) merged into training_runs.metrics. */
  async summary(values: Record<string, number | string | null>): Promise<void> {
    Object.assign(this.latest, values);
    await this.db.update(trainingRuns).set({ metrics: { ...this.latest } }).where(eq(trainingRuns.id, this.runId));
  }
}
