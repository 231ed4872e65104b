// The training configuration: one typed, zod-validated object per algorithm (reward model, SFT, PPO) plus
// the run-level settings (gate, budgets), each field with its default and a one-line doc. Names follow the
// papers and TRL (`gamma`, `gaeLambda`, `clipRange`, `vfCoef`, `klTarget`...). Unknown or mistyped keys are
// refused, never ignored (nanoGPT's configurator): a typo in a project's config must not silently train
// with the default.
//
// A project overrides any field under `training` in projects.config, e.g.
//   {"training": {"ppo": {"klTarget": 3}, "run": {"klBudget": 8}}}
// Where a default differs from TRL's, the doc comment says why (mostly: our models are ~1 M parameters,
// trained from a small base on 2 CPU cores, so learning rates are higher and batches smaller).
import { z } from 'zod';
import { REWARD_POOLINGS } from './policy-io';

const lr = z.number().positive().max(1);
const frac = z.number().min(0).max(1);
/** Top transformer blocks that train (trlx num_layers_unfrozen); -1: all. The blocks below keep their weights. */
const unfrozenLayers = z.number().int().min(-1).default(-1);

export const rewardModelConfigSchema = z
  .object({
    /** AdamW learning rate (TRL: 1e-5 for 100M+ models; a 1M-parameter trunk needs a larger step: at 3e-4 it
     *  ends two epochs of 1,000 pairs near chance, train loss 0.69). */
    learningRate: lr.default(1e-3),
    /** Passes over the training pairs (InstructGPT: 1; more overfits a big RM, ours is small and data scarce). */
    epochs: z.number().int().min(1).max(50).default(2),
    /** Pairs per optimizer step (each pair = 2 sequences). */
    batchSize: z.number().int().min(1).max(512).default(16),
    /** Bradley-Terry margin subtracted from r_w − r_l (TRL's `margin` column; 0 = plain BT). */
    margin: z.number().min(0).default(0),
    /** Centering coefficient c in c·mean((r_w + r_l)²) (TRL `center_rewards_coefficient`: 0.01). */
    centerCoef: z.number().min(0).default(0.01),
    /** Weight of the pointwise logistic term −log σ(±r) for settled thumbs (0 = pairs only). */
    pointwiseCoef: z.number().min(0).default(0.5),
    /** Longest prompt + response (tokens) scored; longer sequences keep their last tokens' context. */
    maxLength: z.number().int().min(8).default(128),
    /** Freeze wte/wpe: the tied embedding is the costliest gradient here and the least useful to move. */
    freezeEmbeddings: z.boolean().default(true),
    /** Top blocks that train, with ln_f and the score head (-1: all). */
    unfrozenLayers,
    /** How the score head is read: 'mean' over the tokens, or at the 'last' token (TRL's sequence
     *  classification). Mean by default: on 800 VADER comparisons + 230 corrections held-out accuracy was 0.61
     *  mean vs 0.55 last (a last-token state must learn to summarise the response; a per-token score only what
     *  each token adds), and PPO's dense reward needs per-token terms. */
    pooling: z.enum(REWARD_POOLINGS).default('mean'),
    /** Score feedback texts as if they had ended (+ EOS). Off: the RM then reads feedback as PPO's rollouts
     *  look (a base that never learned to end is cut at max_tokens, with no EOS; see sft.trainEos). */
    appendEos: z.boolean().default(false),
    /** Global gradient-norm clip (TRL max_grad_norm: 1.0). */
    maxGradNorm: z.number().positive().default(1.0),
    /** Most pairs per run: newest first, the rest a random replay sample of older feedback (the model is warm-
     *  started, so a bounded replay keeps old pairs from being fitted again and again: memorised). */
    maxPairs: z.number().int().min(1).default(800),
  })
  .strict();

export const sftConfigSchema = z
  .object({
    /** AdamW learning rate for corrections as demonstrations (edit-only targets are few and strong: a probe on
     *  models/base reached KL 1.8 after two passes at 3e-5, 10.7 at 7e-5, 56 at 5e-4). */
    learningRate: lr.default(3e-5),
    /** Passes over the demonstrations. */
    epochs: z.number().int().min(0).max(50).default(1),
    /** Demonstrations per optimizer step. */
    batchSize: z.number().int().min(1).max(256).default(8),
    /** Freeze wte/wpe (see rewardModel.freezeEmbeddings). */
    freezeEmbeddings: z.boolean().default(true),
    /** Most demonstrations per run: the corrections new since the last successful run, newest first. The policy is
     *  warm-started, so older demonstrations are already in it: fitting them again every run only spends KL on
     *  memorising them. */
    maxDemonstrations: z.number().int().min(0).default(128),
    /** Older demonstrations (trained by earlier runs) added as a seeded random sample, within maxDemonstrations. */
    replayDemonstrations: z.number().int().min(0).default(0),
    /** For a correction, train only the tokens the user's edit changed (those outside the longest common
     *  subsequence of the output's and the correction's tokens); the rest is the policy's own text, which it
     *  would otherwise memorise sample by sample, spending KL on nothing the user asked for. */
    editOnly: z.boolean().default(true),
    /** Also train the EOS that closes each demonstration. Off by default: models/base was pretrained on running
     *  text without EOS, so its EOS embedding sits with the never-seen byte tokens', and teaching EOS from a few
     *  hundred demonstrations raises those junk tokens with it (measured: KL to base 60–86 nats per response). */
    trainEos: z.boolean().default(false),
  })
  .strict();

export const ppoConfigSchema = z
  .object({
    /** Episodes (sampled responses) per run. */
    totalEpisodes: z.number().int().min(1).default(512),
    /** Episodes per rollout batch: one policy export, one set of rollouts, then `ppoEpochs` of updates. Large,
     *  because the gradient noise of small batches shows up as KL drift: under an oracle reward, 256-episode
     *  batches reached the same reward as 64-episode ones at 1/7 of the KL. */
    rolloutBatchSize: z.number().int().min(1).default(256),
    /** Episodes per minibatch gradient step. */
    miniBatchSize: z.number().int().min(1).default(64),
    /** Passes over each rollout batch (TRL, CleanRL: 4). */
    ppoEpochs: z.number().int().min(1).default(4),
    /** AdamW learning rate (TRL: 1.41e-5 for GPT-2; a 1M-parameter policy moves with a larger step). */
    learningRate: lr.default(2e-4),
    /** Discount (TRL, InstructGPT: 1: the reward is for the whole response). */
    gamma: frac.default(1),
    /** GAE λ (TRL: 0.95). */
    gaeLambda: frac.default(0.95),
    /** Ratio clip ε of the surrogate objective (TRL, CleanRL: 0.2). */
    clipRange: z.number().positive().default(0.2),
    /** Value clip around the rollout values (TRL cliprange_value: 0.2). */
    clipRangeValue: z.number().positive().default(0.2),
    /** Value-loss weight (TRL vf_coef: 0.1). */
    vfCoef: z.number().min(0).default(0.1),
    /** Entropy bonus weight (TRL: none; CleanRL: 0.01). Entropy is always logged. */
    entCoef: z.number().min(0).default(0),
    /** Initial KL coefficient β (TRL legacy init_kl_coef: 0.2). */
    klCoef: z.number().min(0).default(0.2),
    /** Adaptive β (Ziegler et al.): error = clip(KL/target − 1, ±0.2), β *= 1 + error·n/horizon. false = fixed β. */
    adaptiveKl: z.boolean().default(true),
    /** KL target in nats per response for the adaptive controller (TRL legacy: 6). */
    klTarget: z.number().positive().default(6),
    /** Adaptive controller horizon in episodes (TRL legacy: 10000). */
    klHorizon: z.number().positive().default(10000),
    /** Weight of the exact KL to the reference in the loss: at each response position Σ_v π(v) log(π(v)/π_ref(v))
     *  over the whole vocabulary, averaged over tokens (0: off, the KL acts only through the reward's −β·KL). The
     *  reward's penalty reaches the policy through sampled tokens and noisy advantages; this term's gradient is the
     *  KL's own, so drift the reward did not ask for is pulled back directly. */
    klLossCoef: z.number().min(0).default(0),
    /** Per-token KL estimator in the reward: k3 = (r − 1) − log r ≥ 0 (Schulman), or k1 clamped at 0. Both are
     *  non-negative so the optimiser cannot farm negative KL estimates. */
    klEstimator: z.enum(['k3', 'k1_clamped']).default('k3'),
    /** Stop a batch's remaining epochs once the mean approx KL to the rollout policy exceeds this (CleanRL target_kl). */
    targetApproxKl: z.number().positive().default(0.1),
    /** Subtracted from the RM score of a response that ended without EOS (TRL missing_eos_penalty; off by
     *  default there too). Off here: models/base never learned to end (see sft.trainEos), so the penalty can only
     *  push it toward the junk tokens that share EOS's embedding. */
    missingEosPenalty: z.number().min(0).default(0),
    /** Hand the RM's score out as its per-token terms (the RM is a mean over tokens) instead of all at the last
     *  token: the totals are the same, but a token that earned reward gets it directly rather than through
     *  the value head's guess (dense rewards; Chan et al. 2024). */
    denseReward: z.boolean().default(true),
    /** Centre the RM scores of each rollout batch and divide by their spread (OpenRLHF normalize_reward). */
    normalizeReward: z.boolean().default(true),
    /** Most tokens sampled per response (TRL response_length). */
    responseLength: z.number().int().min(1).default(32),
    /** Sampling temperature for rollouts (logprobs are taken at this temperature, as TRL does). */
    temperature: z.number().positive().default(1),
    /** Whiten advantages per rollout batch (TRL, CleanRL: yes). */
    whitenAdvantages: z.boolean().default(true),
    /** Global gradient-norm clip (TRL, CleanRL max_grad_norm: 1.0 / 0.5). */
    maxGradNorm: z.number().positive().default(1.0),
    /** Freeze wte/wpe: measured cheaper (the tied LM head still adapts through the trunk); see run-training. */
    freezeEmbeddings: z.boolean().default(true),
    /** Top blocks that train, with ln_f and the value head (-1: all). */
    unfrozenLayers,
    /** Longest prompt (tokens) used for rollouts; longer prompts keep their last tokens. */
    maxPromptLength: z.number().int().min(1).default(64),
    /** PPO runs from the same start with different seeds, their weight updates averaged (WARP, Ramé et al. 2024):
     *  the seeds' noise, which costs KL, shrinks; the reward's common direction stays. Each run gets
     *  totalEpisodes; 1 = one plain run. */
    mergeRuns: z.number().int().min(1).max(16).default(1),
  })
  .strict()
  .refine((c) => c.rolloutBatchSize % c.miniBatchSize === 0, { message: 'rolloutBatchSize must be a multiple of miniBatchSize', path: ['miniBatchSize'] });

export const runConfigSchema = z
  .object({
    /** Gate: a candidate whose mean KL to the reference on held-out prompts exceeds this (nats per response)
     *  is rejected, however well it scores. */
    klBudget: z.number().positive().default(10),
    /** PPO makes no update from a rollout batch whose KL to the reference is past this share of klBudget (0: off).
     *  Without it, a run that starts near the budget spends a whole run's KL and its candidate is rejected
     *  (bench:loop: v7–v9 rejected; with 0.9, v7 and v8 went live at 9.5 and 9.1 nats, each with a newer RM). */
    ppoKlStop: frac.default(0.9),
    /** Gate: the candidate's mean RM score must beat the live policy's by more than this. */
    minScoreGain: z.number().default(0),
    /** Wall-time budget of one run in seconds; PPO stops early to leave time for evaluation and publishing. */
    maxWallS: z.number().positive().default(1200),
    /** Share of prompts held out by the stable prompt hash (must match the API's export split). */
    heldOutFraction: frac.default(0.1),
    /** Held-out prompts sampled for the gate (each answered by candidate and live). */
    evalPrompts: z.number().int().min(1).default(64),
    /** Prompts for PPO rollouts: most recent stored generations and feedback prompts (train split). */
    maxRolloutPrompts: z.number().int().min(1).default(2000),
    /** Seed for shuffles and sampling. */
    seed: z.number().int().default(1),
  })
  .strict();

export const trainingConfigSchema = z
  .object({
    rewardModel: rewardModelConfigSchema.default(rewardModelConfigSchema.parse({})),
    sft: sftConfigSchema.default(sftConfigSchema.parse({})),
    ppo: ppoConfigSchema.default(ppoConfigSchema.parse({})),
    run: runConfigSchema.default(runConfigSchema.parse({})),
  })
  .strict();

export type RewardModelConfig = z.infer<typeof rewardModelConfigSchema>;
export type SftConfig = z.infer<typeof sftConfigSchema>;
export type PpoConfig = z.infer<typeof ppoConfigSchema>;
export type RunConfig = z.infer<typeof runConfigSchema>;
export type TrainingConfig = z.infer<typeof trainingConfigSchema>;

/** Deep-partial overrides (what projects.config.training and presets hold). */
export type TrainingOverrides = { [K in keyof TrainingConfig]?: Partial<TrainingConfig[K]> };

export class InvalidTrainingConfigError extends Error {
  readonly code = 'invalid_training_config';
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid training config: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'InvalidTrainingConfigError';
  }
}

/** Validates overrides and fills defaults; throws InvalidTrainingConfigError naming every bad field. */
export function parseTrainingConfig(raw: unknown = {}): TrainingConfig {
  const r = trainingConfigSchema.safeParse(raw ?? {});
  if (!r.success) throw new InvalidTrainingConfigError(r.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message })));
  return r.data;
}

/** The training config of a project: `training` in projects.config over the defaults, then `extra` on top. */
export function projectTrainingConfig(projectConfig: Record<string, unknown> | null | undefined, extra: TrainingOverrides = {}): TrainingConfig {
  const own = ((projectConfig ?? {}) as { training?: Record<string, unknown> }).training ?? {};
  if (typeof own !== 'object' || own === null || Array.isArray(own)) throw new InvalidTrainingConfigError([{ path: 'training', message: 'must be an object' }]);
  const merged: Record<string, unknown> = { ...own };
  for (const [k, v] of Object.entries(extra)) merged[k] = { ...((own as Record<string, object>)[k] ?? {}), ...v };
  return parseTrainingConfig(merged);
}

/** Tiny preset for tests and the quick simulation: lists only what changes. */
export const QUICK_PRESET: TrainingOverrides = {
  rewardModel: { epochs: 3, batchSize: 8, maxLength: 64 },
  ppo: { totalEpisodes: 64, rolloutBatchSize: 32, miniBatchSize: 8, responseLength: 16 },
  run: { evalPrompts: 16 },
};
