// One simulation of the whole loop, through the public REST API only:
//   1. start the service (sim/service.ts) on a fresh data directory, create a project and key (admin CLI), set
//      the project's training config (PUT /v1/config/training) and schedule (a run every `eventsPerRun`
//      feedback events; sim/project-config.ts);
//   2. measure the base policy (version 1) on the evaluation prompts;
//   3. repeat until `maxEvents` events or `maxWallS` seconds: the users play `eventsPerRun` events on the live
//      policy, the scheduler notices and queues a run, the worker trains (RM → SFT → PPO → gate → publish);
//      the users wait for it (so each run learns from feedback on the policy it replaces: the best case for
//      feedback efficiency, and what makes a run's data exactly reproducible), and every new live policy is
//      measured: labeler win rate vs base with a 95% interval, mean hidden score, KL to base, RM accuracy.
// KL to base and RM accuracy are the worker's own measurements, read back over the API: the gate's KL of the
// candidate to the reference (= base) policy on held-out prompts (GET /v1/policies metrics) and the reward
// model's accuracy on held-out pairs, i.e. against the labeler's own choices (GET /v1/training-runs/{id}).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrainingOverrides } from '../shared/training-config';
import { PrefloopClient, type PolicyJson, type TrainingRunJson } from './client';
import { type EvalConfig, sample, type Samples, winRate, type WinRate } from './evaluate';
import { Labeler } from './labeler';
import { type PlayStats, Population, type PopulationConfig } from './population';
import { preferenceByName } from './preferences';
import { buildPromptSet } from './prompts';
import { configureProject } from './project-config';
import { createProjectAndKey, startService } from './service';

export interface SimConfig {
  /** Hidden preference of the users (sim/preferences.ts). */
  preference: string;
  /** Artifact directory of the base model. */
  baseModelDir: string;
  /** Stop after this many feedback events in total. */
  maxEvents: number;
  /** Feedback events between training runs (the project's schedule threshold, `minNewFeedback`). */
  eventsPerRun: number;
  /** Stop starting new rounds after this much wall time (s). */
  maxWallS: number;
  /** Longest wait for one training run (s). */
  runTimeoutS: number;
  /** Evaluation prompts (held out from feedback and from training). */
  evalPrompts: number;
  population: PopulationConfig;
  /** Sampling of evaluation outputs (the same as the users get by default). */
  eval: Omit<EvalConfig, 'seed'>;
  /** The project's training config overrides (PUT over the API), e.g. the quick preset. */
  training: TrainingOverrides;
  /** Extra environment for the service process. */
  serviceEnv?: Record<string, string>;
  /** Run the worker as its own process (`npm run worker`) beside `npm start`, instead of in-process. */
  separateWorker?: boolean;
  seed: number;
  /** Scratch directory; a fresh temporary one when absent. Removed at the end unless `keepData`. */
  dataDir?: string;
  keepData?: boolean;
  log?: (line: string) => void;
}

/** One measured policy version. */
export interface VersionEntry extends WinRate {
  status: PolicyJson['status'];
  run_id: string | null;
  /** Feedback events sent before this version's run was queued. */
  events: number;
  /** Seconds since the simulation started, when this version had been measured. */
  wall_s: number;
  run_wall_s: number | null;
  kl_to_base: number | null;
  rm_accuracy: number | null;
  /** Every number the gate and the run recorded (for the curious; names as the worker writes them). */
  policy_metrics: PolicyJson['metrics'];
  run_metrics: Record<string, unknown>;
}

export interface RunEntry {
  run_id: string;
  status: string;
  events: number;
  wall_s: number;
  policy_version: number | null;
  policy_status: string | null;
  error: string | null;
}

export interface SimResult {
  preference: string;
  preference_description: string;
  config: Omit<SimConfig, 'log'>;
  events: number;
  wall_s: number;
  base: { version: 1; hidden_score: number; mean_chars: number };
  /** The last live version's figures (the base's when nothing went live). */
  win_rate: number;
  win_rate_ci_low: number;
  win_rate_ci_high: number;
  hidden_score: number;
  kl_to_base: number | null;
  rm_accuracy: number | null;
  final_version: number;
  /** One entry per policy version that went live, in order. */
  versions: VersionEntry[];
  /** Every training run, including those whose candidate the gate rejected. */
  runs: RunEntry[];
  rounds: PlayStats[];
  prompts: { feedback: number; evaluation: number };
  api_calls: Record<string, { n: number; mean_ms: number }>;
  samples: { prompt: string; base: string; final: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** First finite number among `keys` of a metrics object. */
export function metric(obj: Record<string, unknown> | null | undefined, keys: readonly string[]): number | null {
  for (const k of keys) {
    const v = obj?.[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return null;
}

/** Names the worker may record the gate's KL of the candidate to the reference (base) policy under. */
export const KL_KEYS = ['gate/candidate_kl', 'gate/kl_to_ref', 'gate/kl', 'eval/kl_to_ref', 'eval/kl', 'kl_to_ref', 'kl_to_base', 'candidate/kl_to_ref', 'objective/kl'];
/** ... and the reward model's accuracy on held-out pairs. */
export const RM_ACCURACY_KEYS = ['rm/heldout_accuracy', 'rm/held_out_accuracy', 'rm/accuracy', 'rm/eval_accuracy', 'eval/rm_accuracy'];

/** The last logged value of the first of `keys` in a run's metric history (GET /v1/training-runs/{id}). */
function lastInHistory(history: unknown, keys: readonly string[]): number | null {
  const h = (history ?? {}) as Record<string, { value: number }[] | undefined>;
  for (const k of keys) {
    const v = h[k]?.at(-1)?.value;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return null;
}

const TERMINAL = new Set(['succeeded', 'failed', 'canceled', 'cancelled']);

export async function runSimulation(cfg: SimConfig): Promise<SimResult> {
  const log = cfg.log ?? ((l: string) => console.log(l));
  const t0 = Date.now();
  const wall = () => (Date.now() - t0) / 1000;
  const preference = preferenceByName(cfg.preference);
  const labeler = new Labeler(preference);
  const prompts = buildPromptSet({ evalCount: cfg.evalPrompts, seed: cfg.seed });
  const dataDir = cfg.dataDir ?? (await mkdtemp(join(tmpdir(), 'prefloop-sim-')));
  log(`[sim] preference ${preference.name}: ${preference.description}`);
  log(`[sim] ${prompts.feedback.length} feedback prompts, ${prompts.evaluation.length} evaluation prompts; data in ${dataDir}`);

  const service = await startService({ dataDir, baseModelDir: cfg.baseModelDir, env: cfg.serviceEnv, separateWorker: cfg.separateWorker });
  try {
    const { key, projectId } = await createProjectAndKey(service.dbPath, `sim-${preference.name}`);
    const client = new PrefloopClient(service.url, key);
    await configureProject(client, service.dbPath, projectId, { minNewFeedback: cfg.eventsPerRun, training: cfg.training });
    log(`[sim] service on ${service.url} (log ${service.logPath}); project sim-${preference.name}: a run every ${cfg.eventsPerRun} events (${wall().toFixed(0)} s)`);

    await client.livePolicy(); // registers version 1 = the base model (the API does it on first use)
    const evalCfg: EvalConfig = { ...cfg.eval, seed: cfg.seed };
    const base: Samples = await sample(client, labeler, 1, prompts.evaluation, evalCfg);
    const baseMean = base.scores.reduce((a, b) => a + b, 0) / base.scores.length;
    log(`[sim] base v1: mean hidden score ${baseMean.toFixed(4)} over ${base.texts.length} evaluation prompts (${wall().toFixed(0)} s)`);

    const population = new Population(client, labeler, prompts.feedback, cfg.population, cfg.seed);
    const versions: VersionEntry[] = [];
    const runs: RunEntry[] = [];
    const rounds: PlayStats[] = [];
    const seenRuns = new Set<string>();
    let last: Samples = base;

    while (population.totalEvents + cfg.eventsPerRun <= cfg.maxEvents && wall() < cfg.maxWallS) {
      const stats = await population.play(cfg.eventsPerRun);
      rounds.push(stats);
      const events = population.totalEvents;
      log(`[sim] ${events} events (${JSON.stringify(stats.byType)}), shown outputs' mean hidden score ${stats.meanShownScore.toFixed(4)} from ${Object.keys(stats.servedBy).join(',')} (${wall().toFixed(0)} s)`);

      // The scheduler queues a run once it sees the threshold; wait for it, then for it to finish.
      const runStart = Date.now();
      let run: TrainingRunJson | undefined;
      let lastStage = '';
      for (;;) {
        if ((Date.now() - runStart) / 1000 > cfg.runTimeoutS) throw new Error(`no finished training run within ${cfg.runTimeoutS} s after ${events} events (see ${service.logPath})`);
        if (!run) run = (await client.trainingRuns()).find((r) => !seenRuns.has(r.id));
        if (run) {
          run = await client.trainingRun(run.id);
          const stage = `${run.status}/${run.stage ?? ''}`;
          if (stage !== lastStage) log(`[sim]   run ${run.id}: ${stage} (${((Date.now() - runStart) / 1000).toFixed(0)} s)`);
          lastStage = stage;
          if (TERMINAL.has(run.status)) break;
        }
        await sleep(500);
      }
      seenRuns.add(run.id);
      const runWall = (Date.now() - runStart) / 1000;
      const runMetrics = (run.metrics && typeof run.metrics === 'object' ? run.metrics : {}) as Record<string, unknown>;
      const pol = (await client.policies()).policies.find((p) => p.training_run_id === run!.id);
      runs.push({ run_id: run.id, status: run.status, events, wall_s: wall(), policy_version: pol?.version ?? null, policy_status: pol?.status ?? null, error: (run.error as string | null | undefined) ?? null });
      if (!pol || pol.status !== 'live') {
        log(`[sim]   run ${run.status}; ${pol ? `candidate v${pol.version} ${pol.status}` : 'no candidate'}${run.error ? `: ${String(run.error).slice(0, 300)}` : ''}`);
        continue;
      }
      // Wait until the API serves it, then measure.
      for (let i = 0; i < 200; i++) {
        const l = await client.livePolicy();
        if (l.serving_version === pol.version) break;
        await sleep(100);
      }
      last = await sample(client, labeler, pol.version, prompts.evaluation, evalCfg);
      const w = winRate(labeler, last, base, cfg.seed);
      const entry: VersionEntry = {
        ...w,
        status: pol.status,
        run_id: run.id,
        events,
        wall_s: wall(),
        run_wall_s: runWall,
        kl_to_base: metric(pol.metrics, KL_KEYS) ?? metric(runMetrics, KL_KEYS),
        rm_accuracy: metric(runMetrics, RM_ACCURACY_KEYS) ?? metric(pol.metrics, RM_ACCURACY_KEYS) ?? lastInHistory(run.history, RM_ACCURACY_KEYS),
        policy_metrics: pol.metrics,
        run_metrics: runMetrics,
      };
      versions.push(entry);
      log(
        `[sim] v${pol.version} live after ${events} events: win rate ${w.win_rate.toFixed(3)} [${w.win_rate_ci_low.toFixed(3)}, ${w.win_rate_ci_high.toFixed(3)}] ` +
          `(expected ${w.expected_win_rate.toFixed(3)}, ties ${w.tie_rate.toFixed(2)}), hidden score ${w.hidden_score.toFixed(4)} (base ${w.base_hidden_score.toFixed(4)}), ` +
          `KL ${entry.kl_to_base?.toFixed(2) ?? '?'}, RM accuracy ${entry.rm_accuracy?.toFixed(3) ?? '?'}; run ${runWall.toFixed(0)} s (${wall().toFixed(0)} s)`,
      );
    }

    const final = versions.at(-1);
    const api_calls = Object.fromEntries([...client.calls].map(([k, v]) => [k, { n: v.n, mean_ms: Math.round((v.ms / v.n) * 10) / 10 }]));
    const { log: _omit, ...config } = cfg;
    return {
      preference: preference.name,
      preference_description: preference.description,
      config,
      events: population.totalEvents,
      wall_s: wall(),
      base: { version: 1, hidden_score: baseMean, mean_chars: base.texts.reduce((s, t) => s + t.length, 0) / base.texts.length },
      win_rate: final?.win_rate ?? 0.5,
      win_rate_ci_low: final?.win_rate_ci_low ?? 0,
      win_rate_ci_high: final?.win_rate_ci_high ?? 1,
      hidden_score: final?.hidden_score ?? baseMean,
      kl_to_base: final?.kl_to_base ?? 0,
      rm_accuracy: final?.rm_accuracy ?? null,
      final_version: final?.version ?? 1,
      versions,
      runs,
      rounds,
      prompts: { feedback: prompts.feedback.length, evaluation: prompts.evaluation.length },
      api_calls,
      samples: prompts.evaluation.slice(0, 8).map((p, i) => ({ prompt: p, base: base.texts[i], final: last.texts[i] })),
    };
  } finally {
    await service.stop();
    if (!cfg.keepData && !cfg.dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}
