// The learning algorithms of prefloop's RLHF loop (METHOD.md), as the run orchestration (worker/run/*) calls
// them: the reward model (Bradley-Terry + pointwise thumbs), SFT on corrections, PPO with a KL penalty to a
// frozen reference, and the gate's evaluation of a policy. Each stage trains a TF.js GPT in place (wasm
// backend: call worker/backend.ts ensureBackend() first) and reports slash-named metrics; rollouts and
// evaluation sample through the serving sampler (shared/sampling) on onnxruntime-node.
//
// Conventions shared by every function here:
// - Token layout: BOS + prompt + response (+ EOS when the response ended), exactly what the sampler produces
//   (batch.ts). The reward model reads its score at the last token of that sequence.
// - `signal`: aborting makes the function reject with an Error named 'AbortError' at the next step boundary
//   (a lost lease); the model is then in a half-trained state and must be discarded.
// - `deadlineMs` (PPO): an absolute Date.now() time; PPO starts no rollout batch it expects to overrun and
//   returns what it has (stoppedBy: 'deadline'). Wall-time budgets belong to the caller.
// - Sessions: a `ScoringModel` is either a TF.js GPT or an onnxruntime session (anything with `run`) of the
//   matching graph: policy.onnx for a reference policy, reward.onnx for a reward model.
import type { ModelConfig } from '../../shared/model-config';
import type { Tokenizer } from '../../shared/tokenizer';
import type { PpoConfig, RewardModelConfig, SftConfig } from '../../shared/training-config';
import type { GPT } from '../model/gpt';
import { evaluatePolicyImpl } from './evaluate';
import { runPpoImpl } from './ppo';
import { runMergedPpo } from './ppo-merge';
import { trainRewardModelImpl } from './reward-model';
import { runSftImpl } from './sft';

export type { PairExample, PointwiseExample } from './reward-model';
import type { PairExample, PointwiseExample } from './reward-model';
export { bradleyTerryLoss, pointwiseLoss, evaluateRewardModel, scoreTexts } from './reward-model';
export { computeGae, whiten, klPenalty, AdaptiveKlController } from './ppo-math';
export { exportPolicySession, exportRewardSession } from './sessions';

/** A model that scores sequences: a TF.js GPT, or an onnxruntime session of policy.onnx / reward.onnx. */
export type { OnnxSession, ScoringModel } from './scoring';
import type { OnnxSession, ScoringModel } from './scoring';

export interface Progress {
  step: number;
  totalSteps: number;
  /** Slash-named metrics of this step (e.g. 'loss/rm', 'rm/train_accuracy'). */
  metrics: Record<string, number>;
}

// ---------------------------------------------------------------------------------------------------------
// Reward model

export interface TrainRewardModelOptions {
  /** A GPT with the reward head (`heads: { reward: true }`), warm-started by the caller; trained in place. */
  model: GPT;
  tokenizer: Tokenizer;
  train: PairExample[];
  /** Evaluated after training (accuracy, loss); never trained on. */
  heldOut: PairExample[];
  /** Settled thumbs for the pointwise term (weight config.pointwiseCoef; [] = pairs only). */
  pointwise: PointwiseExample[];
  config: RewardModelConfig;
  seed: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface TrainRewardModelResult {
  /** Share of held-out pairs with r_chosen > r_rejected (ties count half); NaN without held-out pairs. */
  heldOutAccuracy: number;
  /** Mean Bradley-Terry loss −log σ(r_w − r_l) on held-out pairs (no margin, no centering). */
  heldOutLoss: number;
  /** Mean r_w − r_l on held-out pairs. */
  heldOutMargin: number;
  /** Mean training loss over the last epoch's steps. */
  trainLoss: number;
  /** Training pairs seen per epoch. */
  pairs: number;
  steps: number;
  /** Training pairs processed per second of training (epochs × pairs / seconds). */
  pairsPerS: number;
  seconds: number;
}

/** Trains the reward model in place on pairs (+ thumbs), then scores the held-out pairs. */
export function trainRewardModel(o: TrainRewardModelOptions): Promise<TrainRewardModelResult> {
  return trainRewardModelImpl(o);
}

// ---------------------------------------------------------------------------------------------------------
// SFT on corrections

export interface Demonstration {
  prompt: string;
  response: string;
  /** The output the demonstration corrected, when it is a correction (sft.editOnly trains only the edit). */
  original?: string;
}

export interface RunSftOptions {
  /** The policy (value head allowed; it is not trained here). Trained in place. */
  model: GPT;
  tokenizer: Tokenizer;
  demos: Demonstration[];
  config: SftConfig;
  seed: number;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

export interface RunSftResult {
  /** Mean next-token loss (nats per response token) over the last epoch; NaN when nothing trained. */
  loss: number;
  /** Loss of the first step (before any update moved the model). */
  firstLoss: number;
  steps: number;
  tokensPerS: number;
}

/** Next-token cross-entropy on the response tokens (+ EOS) of each demonstration; the prompt is context only. */
export function runSft(o: RunSftOptions): Promise<RunSftResult> {
  return runSftImpl(o);
}

// ---------------------------------------------------------------------------------------------------------
// PPO

export interface RunPpoOptions {
  /** The policy with a value head, starting from the live weights; trained in place. */
  policy: GPT;
  /** The frozen reference policy (the base model): policy.onnx session or GPT. */
  reference: ScoringModel;
  /** The reward model: reward.onnx session or GPT with the reward head. */
  rewardModel: ScoringModel;
  tokenizer: Tokenizer;
  /** Rollout prompts (train split); cycled in a seeded shuffled order. */
  prompts: string[];
  config: PpoConfig;
  seed: number;
  signal?: AbortSignal;
  /** Absolute Date.now() deadline; see the header. */
  deadlineMs?: number;
  /** No update from a rollout batch whose mean KL to the reference (nats per response) is above this: PPO returns
   *  with stoppedBy 'kl'. The run passes a share of the gate's KL budget, so a run near it still yields a candidate
   *  the gate can take instead of one past the budget. */
  stopAtKl?: number;
  /** Called after each rollout batch's updates. */
  onIteration?: (m: PpoIterationMetrics) => void;
}

/** One rollout batch + its PPO epochs. Slash names (metricRecord) in brackets. */
export interface PpoIterationMetrics {
  /** 1-based rollout batch number. */
  iteration: number;
  /** Episodes sampled so far in this run. */
  episodes: number;
  /** Mean raw RM score of the responses [objective/score]. */
  score: number;
  /** Mean score after the missing-EOS penalty [objective/penalized_score]. */
  penalizedScore: number;
  /** Mean KL to the reference, nats per response (sum over tokens of the configured estimator) [objective/kl]. */
  kl: number;
  /** With ppo.klLossCoef: the exact KL to the reference (Σ over the vocabulary per position), per response, on the
   *  first epoch's minibatches [objective/kl_exact]. */
  klExact?: number;
  /** Mean of penalizedScore − β·KL [objective/rlhf_reward]. */
  rlhfReward: number;
  /** Mean per-token entropy of the policy on its rollouts, nats [policy/entropy]. */
  entropy: number;
  /** Share of response tokens whose ratio was clipped, over all minibatch steps [policy/clipfrac]. */
  clipFrac: number;
  /** Mean approx KL (k3) between the updated and the rollout policy [policy/approx_kl]. */
  approxKl: number;
  /** Mean clipped surrogate loss [loss/policy]. */
  policyLoss: number;
  /** Mean clipped value loss (before vfCoef) [loss/value]. */
  valueLoss: number;
  /** Share of value predictions that were clipped [val/clipfrac]. */
  valueClipFrac: number;
  /** Mean response length in tokens, EOS included [response/length]. */
  responseLength: number;
  /** Share of responses that ended with EOS [response/eos_rate]. */
  eosRate: number;
  /** β used for this batch's rewards [objective/beta]. */
  beta: number;
  /** PPO epochs run (fewer than config.ppoEpochs after an early stop on approx KL) [policy/epochs]. */
  epochs: number;
  /** Seconds: export + session creation, sampling, reference + RM scoring, gradient updates [time/...]. */
  exportS: number;
  rolloutS: number;
  scoreS: number;
  updateS: number;
  /** Sampled response tokens per second of sampling [speed/rollout_tokens_per_s]. */
  rolloutTokensPerS: number;
  /** Sequence tokens (prompt + response) through forward+backward per second of updates [speed/update_tokens_per_s]. */
  updateTokensPerS: number;
}

export interface RunPpoResult {
  iterations: PpoIterationMetrics[];
  episodes: number;
  /** β after the last controller update (store it to continue the controller in the next run). */
  finalBeta: number;
  stoppedBy: 'done' | 'deadline' | 'kl';
  /** Whole-run figures (sums of the per-iteration timings). */
  rolloutTokensPerS: number;
  updateTokensPerS: number;
  seconds: number;
}

/** KL-penalised PPO (METHOD.md): rollouts on onnxruntime via the shared sampler, updates on TF.js; with
 *  ppo.mergeRuns > 1, that many runs from the same start, their updates averaged (ppo-merge.ts). */
export function runPpo(o: RunPpoOptions): Promise<RunPpoResult> {
  return runMergedPpo(o, runPpoImpl);
}

/** Slash-named metrics of one iteration, as stored in run_metrics and shown by the API. */
export function metricRecord(m: PpoIterationMetrics): Record<string, number> {
  return {
    'objective/score': m.score,
    'objective/penalized_score': m.penalizedScore,
    'objective/kl': m.kl,
    ...(m.klExact !== undefined ? { 'objective/kl_exact': m.klExact } : {}),
    'objective/rlhf_reward': m.rlhfReward,
    'objective/beta': m.beta,
    'policy/entropy': m.entropy,
    'policy/clipfrac': m.clipFrac,
    'policy/approx_kl': m.approxKl,
    'policy/epochs': m.epochs,
    'loss/policy': m.policyLoss,
    'loss/value': m.valueLoss,
    'val/clipfrac': m.valueClipFrac,
    'response/length': m.responseLength,
    'response/eos_rate': m.eosRate,
    'time/export_s': m.exportS,
    'time/rollout_s': m.rolloutS,
    'time/score_s': m.scoreS,
    'time/update_s': m.updateS,
    'speed/rollout_tokens_per_s': m.rolloutTokensPerS,
    'speed/update_tokens_per_s': m.updateTokensPerS,
    episodes: m.episodes,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Gate evaluation

export interface EvaluatePolicyOptions {
  /** The policy to judge (policy.onnx session: candidate or live). */
  policy: OnnxSession;
  /** The policy's model config (config.json of its artifact; sizes prompts and the KV cache). */
  config: ModelConfig;
  reference: ScoringModel;
  rewardModel: ScoringModel;
  tokenizer: Tokenizer;
  /** Held-out prompts; one response each. */
  prompts: string[];
  /** Prompt i samples with seed samplingSeed + i: candidate and live see the same random numbers. */
  samplingSeed: number;
  /** Most tokens per response (use the PPO config's). */
  responseLength: number;
  /** Sampling temperature (default 1: the policy's own distribution, which the KL is about). */
  temperature?: number;
  /** Longest prompt kept (its last tokens), default 64. */
  maxPromptLength?: number;
  /** Subtracted from the score of responses without EOS (default 0: the raw RM score). */
  missingEosPenalty?: number;
  signal?: AbortSignal;
}

export interface EvaluatePolicyResult {
  /** Mean RM score (minus the missing-EOS penalty when given). */
  meanScore: number;
  /** Mean KL to the reference in nats per response: Σ_t k3 (unbiased, non-negative per token). */
  klToRef: number;
  /** Same, with the plain log-ratio estimator Σ_t (log π − log π_ref) (unbiased, higher variance). */
  klToRefK1: number;
  /** Mean response length in tokens (EOS included). */
  meanLength: number;
  eosRate: number;
  /** Per-prompt scores (for confidence intervals or paired tests). */
  scores: number[];
  /** Per-prompt response texts. */
  texts: string[];
}

/** The gate's numbers for one policy: sample one response per held-out prompt, score it, measure its KL. */
export function evaluatePolicy(o: EvaluatePolicyOptions): Promise<EvaluatePolicyResult> {
  return evaluatePolicyImpl(o);
}
