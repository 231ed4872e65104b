// The training-run job handler: one delivery of `{ runId, projectId }` → one run of METHOD.md's loop, in order:
//
//   0. gate      beginRunAttempt binds the run to this job (a duplicate or stale delivery does nothing)
//   1. pairs     feedback up to the run's watermark → pairs, thumbs, demonstrations, prompts (data.ts)
//   2. reward_model  warm start from the project's latest RM (the base trunk the first time); train; publish
//                the RM artifact + row at once (it never serves, so publishing it early is safe and makes
//                the stage resumable: a redelivery that finds the run's RM row loads it instead of retraining)
//   3. sft       corrections as demonstrations, on the live policy's weights
//   4. ppo       from there, reference = the base policy (frozen), reward = the new RM; stops at the deadline
//   5. evaluate  candidate and live answer the same held-out prompts with the same random numbers; the new
//                RM scores both; KL of the candidate to the reference
//   6. publish   export + store the candidate (sha256), insert its row (candidate, or rejected with the
//                numbers), activate it only if the gate passed, mark the run succeeded
//
// Crash safety. Nothing before step 6 writes a policy row, and step 6 changes the live policy in one atomic
// batch after the candidate row exists, so a crash anywhere leaves the live policy as it was; feedback is only
// read. A redelivered job (same job id, after the lease ran out) passes the gate again and:
//   - finds the run's policy row → finishes the publication from the stored decision (no retraining, no
//     second version: publish.ts inserts at most one row per run);
//   - else finds the run's RM row → resumes at SFT with that RM;
//   - else starts over (same watermark, same seed: the same data).
// Artifacts go to a directory per attempt (`.../<runId>-a<attempt>/`), so a stale attempt that has not yet
// noticed its lost lease can never overwrite the files a row's sha256 describes.
//
// Time: `run.maxWallS` (capped by PREFLOOP_MAX_RUN_SECONDS) is the attempt's budget; PPO gets it minus a
// reserve for evaluation and publishing and stops early; a lost lease (helpers.signal) aborts every stage.
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eq } from 'drizzle-orm';
import { artifactFileUri, type ArtifactStore } from '../../shared/artifact-store';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import type { QueueDb } from '../../shared/queue/sql-queue';
import { projects, trainingRuns } from '../../shared/schema';
import { beginRunAttempt, type TrainingJobPayload, type TrainingRun } from '../../shared/training-queue';
import { InvalidTrainingConfigError, parseTrainingConfig, projectTrainingConfig, type TrainingConfig } from '../../shared/training-config';
import type { GPT } from '../model/gpt';
import type { JobHelpers } from '../queue-runner';
import * as rlhf from '../rlhf/index';
import { loadRunData, type RunData } from './data';
import { gptFrom, type ModelArtifact, type OwnedSession, readArtifact, readWeights, sessionFrom, sha256Hex, weightsOf, writeArtifact } from './models';
import {
  activateCandidate,
  type BatchDb,
  ensureBasePolicy,
  failRunPermanently,
  finishRun,
  insertRunPolicy,
  insertRunRewardModel,
  latestRewardModel,
  livePolicy,
  policyOfRun,
  rewardModelOfRun,
} from './publish';
import { RunReporter } from './reporter';

/** The learning algorithms (worker/rlhf); injectable so tests and the benchmark can wrap them. */
export interface RunAlgorithms {
  trainRewardModel: typeof rlhf.trainRewardModel;
  runSft: typeof rlhf.runSft;
  runPpo: typeof rlhf.runPpo;
  evaluatePolicy: typeof rlhf.evaluatePolicy;
}

export const defaultAlgorithms: RunAlgorithms = {
  trainRewardModel: rlhf.trainRewardModel,
  runSft: rlhf.runSft,
  runPpo: rlhf.runPpo,
  evaluatePolicy: rlhf.evaluatePolicy,
};

export interface TrainingWorkerDeps {
  db: BatchDb;
  artifacts: ArtifactStore;
  now: () => number;
  /** Where new artifacts go: `file://` (the store's root, ./data/artifacts) or `s3://bucket/prefix/`. */
  artifactRoot: string;
  /** The shared base model (reference policy, first warm start). */
  baseUri: string;
  /** Ceiling on any run's wall time, seconds (PREFLOOP_MAX_RUN_SECONDS); the run's own maxWallS may be lower. */
  maxRunSeconds?: number;
  /** Local scratch space for exports (default: the OS temp dir). */
  scratchDir?: string;
  algorithms?: RunAlgorithms;
  /** Per-run overrides on top of the stored config (bench: fixed sizes). */
  configOverride?: (cfg: TrainingConfig) => TrainingConfig;
  /** Called after each stage with its wall seconds (bench:rlhf). */
  onStageDone?: (stage: string, seconds: number, info: Record<string, number>) => void;
}

/** A failure retrying cannot fix: the run is marked failed and the job completes (no retry storm). */
export class PermanentRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PermanentRunError';
  }
}

/** Share of the wall budget kept for evaluation and publishing after PPO. */
const EVAL_RESERVE = 0.15;

export type TrainingJob = TrainingJobPayload | { kind: 'schedule-tick' };

/** The job handler for the training queue. */
export function trainingRunHandler(deps: TrainingWorkerDeps, onScheduleTick?: () => Promise<void>) {
  return async (payload: TrainingJob, helpers: JobHelpers): Promise<void> => {
    if ('kind' in payload) {
      if (payload.kind === 'schedule-tick' && onScheduleTick) await onScheduleTick();
      return;
    }
    const begin = await beginRunAttempt(deps.db, helpers.job.id, payload, deps.now());
    if (!begin.proceed) {
      helpers.log('info', 'training job skipped', { runId: payload.runId, reason: begin.reason });
      return;
    }
    try {
      await executeRun(deps, begin.run, helpers);
    } catch (e) {
      if (e instanceof PermanentRunError || e instanceof InvalidTrainingConfigError) {
        helpers.log('error', 'training run failed permanently', { runId: payload.runId, error: e.message });
        await failRunPermanently(deps.db, payload.runId, helpers.job.id, e.message, deps.now());
        return;
      }
      await deps.db.update(trainingRuns).set({ error: String((e as Error)?.message ?? e).slice(0, 2000) }).where(eq(trainingRuns.id, payload.runId));
      throw e;
    }
  };
}

/** The run's resolved config: stored on the run at enqueue, or the project's now (then stored). */
async function resolveConfig(deps: TrainingWorkerDeps, run: TrainingRun): Promise<TrainingConfig> {
  let cfg: TrainingConfig;
  if (run.config && Object.keys(run.config).length) cfg = parseTrainingConfig(run.config);
  else {
    const [p] = await deps.db.select({ config: projects.config }).from(projects).where(eq(projects.id, run.projectId));
    cfg = projectTrainingConfig(p?.config);
    await deps.db.update(trainingRuns).set({ config: cfg as unknown as Record<string, unknown> }).where(eq(trainingRuns.id, run.id));
  }
  return deps.configOverride ? deps.configOverride(cfg) : cfg;
}

function checkSignal(signal: AbortSignal): void {
  if (signal.aborted) {
    const e = new Error('lease lost: this attempt stops; the job is delivered again');
    e.name = 'AbortError';
    throw e;
  }
}

async function executeRun(deps: TrainingWorkerDeps, run: TrainingRun, helpers: JobHelpers): Promise<void> {
  const { db } = deps;
  const jobId = helpers.job.id;
  const signal = helpers.signal;
  const attemptStart = deps.now();

  // A previous attempt got as far as the policy row: only the outcome is left to apply.
  const published = await policyOfRun(db, run.projectId, run.id);
  if (published) {
    if (published.status === 'candidate' && Number(published.metrics['gate/passed']) === 1) await activateCandidate(db, run.projectId, published.version, deps.now());
    await finishRun(db, run.id, jobId, published.version, deps.now());
    helpers.log('info', 'training run finished from its stored publication', { runId: run.id, version: published.version });
    return;
  }

  const cfg = await resolveConfig(deps, run);
  const wallS = Math.min(cfg.run.maxWallS, deps.maxRunSeconds ?? Infinity);
  const deadline = attemptStart + wallS * 1000;
  const reporter = new RunReporter(db, run.id, deps.now, attemptStart);
  const scratch = join(deps.scratchDir ?? tmpdir(), `prefloop-${run.id}-a${run.attempts}`);
  await mkdir(scratch, { recursive: true });
  // `file://` (scheme only: the store's root) stays as is; `s3://b/prefix` gets exactly one trailing slash.
  const root = /^[a-z][a-z0-9+.-]*:\/\/$/i.test(deps.artifactRoot) ? deps.artifactRoot : deps.artifactRoot.replace(/\/*$/, '/');
  const dirUri = (kind: string) => `${root}projects/${run.projectId}/${kind}/${run.id}-a${run.attempts}`;
  const algo = deps.algorithms ?? defaultAlgorithms;
  const sessions: OwnedSession[] = [];
  const models: GPT[] = [];
  const stageInfo: Record<string, number> = {};
  let stageT = deps.now();
  const stageDone = (stage: string) => {
    const t = deps.now();
    deps.onStageDone?.(stage, (t - stageT) / 1000, { ...stageInfo });
    helpers.log('info', 'stage done', { runId: run.id, stage, seconds: (t - stageT) / 1000 });
    stageT = t;
  };
  // Metric writes from synchronous progress callbacks, kept in order.
  let writes: Promise<void> = Promise.resolve();
  const write = (fn: () => Promise<void>) => {
    writes = writes.then(fn).catch((e) => helpers.log('warn', 'metric write failed', { error: String(e) }));
  };

  try {
    // 1. pairs --------------------------------------------------------------------------------------------
    await reporter.enter('pairs');
    const base = await readArtifact(deps.artifacts, deps.baseUri);
    const baseOnnx = await deps.artifacts.get(artifactFileUri(deps.baseUri, ARTIFACT_FILES.policyOnnx));
    await ensureBasePolicy(db, run.projectId, deps.baseUri, sha256Hex(baseOnnx), deps.now());
    const live = await livePolicy(db, run.projectId);
    if (!live) throw new PermanentRunError(`project ${run.projectId} has no live policy`);
    const data = await loadRunData(db, run, cfg);
    await reporter.summary({ ...data.counts, 'run/live_version': live.version, 'run/attempt': run.attempts });
    if (!data.trainPairs.length && !data.pointwise.length) throw new PermanentRunError('no training feedback: no preference pairs and no settled thumbs in the train split');
    if (!data.trainPrompts.length) throw new PermanentRunError('no train-split prompts for PPO rollouts');
    stageDone('pairs');
    checkSignal(signal);

    // 2. reward model ---------------------------------------------------------------------------------------
    await reporter.enter('reward_model');
    const rmRow = await rewardModelOfRun(db, run.projectId, run.id);
    let rmOnnx: Uint8Array;
    if (rmRow) {
      rmOnnx = await deps.artifacts.get(artifactFileUri(rmRow.artifactUri, ARTIFACT_FILES.rewardOnnx));
      helpers.log('info', 'resuming with the reward model of an earlier attempt', { runId: run.id, version: rmRow.version });
    } else {
      const prevRm = await latestRewardModel(db, run.projectId);
      const rmInit = prevRm ? await readWeights(deps.artifacts, prevRm.artifactUri) : await readWeights(deps.artifacts, deps.baseUri);
      const rmModel = gptFrom(base.config, rmInit, { value: false, reward: true }, cfg.run.seed);
      models.push(rmModel);
      const rmRes = await algo.trainRewardModel({
        ...rmArgs(rmModel, base, data, cfg, signal),
        onProgress: (p) => {
          write(() => reporter.metrics(p.step, p.metrics));
          write(() => reporter.progress(p.step / Math.max(1, p.totalSteps)));
        },
      });
      await writes;
      const rmMetrics = {
        'rm/accuracy': rmRes.heldOutAccuracy,
        'rm/heldout_loss': rmRes.heldOutLoss,
        'rm/margin': rmRes.heldOutMargin,
        'rm/train_loss': rmRes.trainLoss,
        'rm/pairs': rmRes.pairs,
        'rm/steps': rmRes.steps,
        'speed/rm_pairs_per_s': rmRes.pairsPerS,
      };
      stageInfo['rm/pairs'] = rmRes.pairs;
      stageInfo['speed/rm_pairs_per_s'] = rmRes.pairsPerS;
      await reporter.metrics(rmRes.steps + 1, rmMetrics);
      checkSignal(signal);
      const written = await writeArtifact(deps.artifacts, dirUri('reward-models'), weightsOf(rmModel), base, 'reward', join(scratch, 'rm'), cfg.rewardModel.pooling);
      rmOnnx = written.onnx;
      await insertRunRewardModel(db, {
        projectId: run.projectId,
        runId: run.id,
        parentVersion: prevRm?.version ?? null,
        artifactUri: written.uri,
        sha256: written.sha256,
        metrics: sanitize(rmMetrics),
        now: deps.now(),
      });
      rmModel.dispose();
      models.splice(models.indexOf(rmModel), 1);
    }
    stageDone('reward_model');
    checkSignal(signal);
    const rmSession = await sessionFrom(rmOnnx);
    sessions.push(rmSession);
    const refSession = await sessionFrom(baseOnnx);
    sessions.push(refSession);

    // 3. SFT on corrections ------------------------------------------------------------------------------------
    await reporter.enter('sft');
    const liveWeights = await readWeights(deps.artifacts, live.artifactUri).catch((e) => {
      throw new PermanentRunError(`live policy v${live.version} has no readable ${ARTIFACT_FILES.weights} (${String(e)}): cannot warm-start`);
    });
    const policy = gptFrom(base.config, liveWeights, { value: true, reward: false }, cfg.run.seed + 1);
    models.push(policy);
    if (data.demonstrations.length && cfg.sft.epochs > 0) {
      const sft = await algo.runSft({
        model: policy,
        tokenizer: base.tokenizer,
        demos: data.demonstrations.map((d) => ({ prompt: d.prompt, response: d.completion, original: d.original })),
        config: cfg.sft,
        seed: cfg.run.seed,
        signal,
        onProgress: (p) => {
          write(() => reporter.metrics(p.step, p.metrics));
          write(() => reporter.progress(p.step / Math.max(1, p.totalSteps)));
        },
      });
      await writes;
      await reporter.metrics(sft.steps + 1, { 'sft/loss': sft.loss, 'sft/first_loss': sft.firstLoss, 'sft/steps': sft.steps, 'speed/sft_tokens_per_s': sft.tokensPerS });
    }
    stageDone('sft');
    checkSignal(signal);

    // 4. PPO -----------------------------------------------------------------------------------------------
    await reporter.enter('ppo');
    const ppoDeadline = attemptStart + wallS * 1000 * (1 - EVAL_RESERVE);
    let ppoEpisodes = 0;
    if (deps.now() < ppoDeadline) {
      const ppo = await algo.runPpo({
        policy,
        reference: refSession,
        rewardModel: rmSession,
        tokenizer: base.tokenizer,
        prompts: data.trainPrompts,
        config: cfg.ppo,
        seed: cfg.run.seed,
        signal,
        deadlineMs: ppoDeadline - deps.now() + Date.now(), // runPpo reads Date.now(); our clock may be injected
        stopAtKl: cfg.run.ppoKlStop > 0 ? cfg.run.ppoKlStop * cfg.run.klBudget : undefined,
        onIteration: (m) => {
          write(() => reporter.metrics(m.iteration, rlhf.metricRecord(m)));
          write(() => reporter.progress(m.episodes / (cfg.ppo.totalEpisodes * cfg.ppo.mergeRuns)));
        },
      });
      await writes;
      ppoEpisodes = ppo.episodes;
      stageInfo['ppo/episodes'] = ppo.episodes;
      stageInfo['speed/rollout_tokens_per_s'] = ppo.rolloutTokensPerS;
      stageInfo['speed/update_tokens_per_s'] = ppo.updateTokensPerS;
      await reporter.summary({
        'ppo/episodes': ppo.episodes,
        'ppo/iterations': ppo.iterations.length,
        'ppo/stopped_by': ppo.stoppedBy,
        'ppo/final_beta': ppo.finalBeta,
        'speed/rollout_tokens_per_s': ppo.rolloutTokensPerS,
        'speed/update_tokens_per_s': ppo.updateTokensPerS,
      });
    } else {
      await reporter.summary({ 'ppo/episodes': 0, 'ppo/stopped_by': 'deadline' });
    }
    stageDone('ppo');
    checkSignal(signal);

    // 5. evaluate: candidate vs live on held-out prompts ---------------------------------------------------------
    await reporter.enter('evaluate');
    const candidate = await writeArtifact(deps.artifacts, dirUri('policies'), weightsOf(policy), base, 'policy', join(scratch, 'policy'));
    policy.dispose();
    models.splice(models.indexOf(policy), 1);
    const candSession = await sessionFrom(candidate.onnx);
    sessions.push(candSession);
    const liveSession = await sessionFrom(await deps.artifacts.get(artifactFileUri(live.artifactUri, ARTIFACT_FILES.policyOnnx)));
    sessions.push(liveSession);
    const evalArgs = {
      config: base.config,
      reference: refSession,
      rewardModel: rmSession,
      tokenizer: base.tokenizer,
      prompts: data.heldOutPrompts,
      samplingSeed: cfg.run.seed * 7919 + 17,
      responseLength: cfg.ppo.responseLength,
      temperature: cfg.ppo.temperature,
      maxPromptLength: cfg.ppo.maxPromptLength,
      signal,
    };
    const gate: Record<string, number | string | null> = {
      'gate/prompts': data.heldOutPrompts.length,
      'gate/kl_budget': cfg.run.klBudget,
      'gate/min_score_gain': cfg.run.minScoreGain,
      'ppo/episodes': ppoEpisodes,
    };
    let passed = false;
    if (data.heldOutPrompts.length) {
      const cand = await algo.evaluatePolicy({ ...evalArgs, policy: candSession });
      await reporter.progress(0.5, true);
      const liveEval = await algo.evaluatePolicy({ ...evalArgs, policy: liveSession });
      const gain = cand.meanScore - liveEval.meanScore;
      const scoreOk = gain > cfg.run.minScoreGain;
      const klOk = cand.klToRef <= cfg.run.klBudget;
      passed = scoreOk && klOk;
      Object.assign(gate, {
        'gate/candidate_score': cand.meanScore,
        'gate/live_score': liveEval.meanScore,
        'gate/score_gain': gain,
        'gate/candidate_kl': cand.klToRef,
        'gate/live_kl': liveEval.klToRef,
        'gate/candidate_length': cand.meanLength,
        'gate/candidate_eos_rate': cand.eosRate,
        'gate/reason': passed
          ? 'passed'
          : [scoreOk ? null : `score gain ${gain.toFixed(4)} <= minScoreGain ${cfg.run.minScoreGain}`, klOk ? null : `KL ${cand.klToRef.toFixed(4)} > klBudget ${cfg.run.klBudget}`]
              .filter(Boolean)
              .join('; '),
      });
    } else {
      gate['gate/reason'] = 'no held-out prompts to evaluate on';
    }
    gate['gate/passed'] = passed ? 1 : 0;
    await reporter.summary(gate);
    stageDone('evaluate');
    checkSignal(signal);

    // 6. publish -----------------------------------------------------------------------------------------------
    await reporter.enter('publish');
    const row = await insertRunPolicy(db, {
      projectId: run.projectId,
      runId: run.id,
      parentVersion: live.version,
      artifactUri: candidate.uri,
      sha256: candidate.sha256,
      status: passed ? 'candidate' : 'rejected',
      metrics: sanitize({ ...gate, 'rm/accuracy': (await reporter.latestValue('rm/accuracy')) ?? null }),
      now: deps.now(),
    });
    // The row may be an earlier, concurrent attempt's: its own stored decision rules.
    if (row.status === 'candidate' && Number(row.metrics['gate/passed']) === 1) await activateCandidate(db, run.projectId, row.version, deps.now());
    reporter.finish();
    await reporter.summary({ 'run/policy_version': row.version, 'run/activated': passed ? 1 : 0 });
    await finishRun(db, run.id, jobId, row.version, deps.now());
    stageDone('publish');
    helpers.log('info', 'training run finished', { runId: run.id, version: row.version, passed, reason: gate['gate/reason'] });
  } finally {
    await writes;
    for (const m of models) m.dispose();
    await Promise.allSettled(sessions.map((s) => s.release()));
    await rm(scratch, { recursive: true, force: true }).catch(() => undefined);
  }
}

function rmArgs(model: GPT, base: ModelArtifact, data: RunData, cfg: TrainingConfig, signal: AbortSignal) {
  return {
    model,
    tokenizer: base.tokenizer,
    train: data.trainPairs.map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected })),
    heldOut: data.heldOutPairs.map((p) => ({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected })),
    pointwise: data.pointwise,
    config: cfg.rewardModel,
    seed: cfg.run.seed,
    signal,
  };
}

/** JSON cannot hold NaN/Infinity: store them as null. */
function sanitize(m: Record<string, number | string | null>): Record<string, number | string | null> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, typeof v === 'number' && !Number.isFinite(v) ? null : v]));
}
