// The reward model trainer (Stiennon et al. 2020; Ouyang et al. 2022; TRL reward_trainer.py): the GPT trunk
// with a scalar head `score` averaged over the tokens of BOS + prompt + response (GPT.reward), trained on preference
// pairs by the Bradley-Terry loss
//     −log σ(r_chosen − r_rejected − margin)  +  c · mean((r_chosen + r_rejected)²)
// (the second term, TRL's centering, keeps rewards near zero so PPO's score and KL terms stay on one scale),
// plus a pointwise logistic term −log σ(y · r), y = ±1, for thumbs. Production thumbs rarely share a prompt
// (METHOD.md), so few of them become pairs; the pointwise term lets every settled thumb teach the model.
// Reported: held-out accuracy = share of held-out pairs with r_chosen > r_rejected.
import * as tf from '@tensorflow/tfjs';
import type { Tokenizer } from '../../shared/tokenizer';
import type { GPT } from '../model/gpt';
import { encodeExample, leftPadBatch, shuffled } from './batch';
import type { RewardModelConfig } from '../../shared/training-config';
import type { TrainRewardModelOptions, TrainRewardModelResult } from './index';
import { ModelOptimizer } from './optim';

export interface PairExample {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** A settled thumb: +1 up, −1 down. */
export interface PointwiseExample {
  prompt: string;
  response: string;
  label: 1 | -1;
}

/** log σ(x) = −softplus(−x). (tf.logSigmoid's custom gradient reads a tensor the tape has already freed.) */
const logSigmoid = (x: tf.Tensor) => tf.neg(tf.softplus(tf.neg(x)));

/** The reward loss (TRL): −log σ(r_w − r_l − margin) + c·mean((r_w + r_l)²).   rChosen, rRejected [P] */
export function bradleyTerryLoss(rChosen: tf.Tensor1D, rRejected: tf.Tensor1D, margin: number, centerCoef: number): tf.Scalar {
  // No tf.tidy here: it runs under a gradient tape, and a tidy would dispose what backprop still needs.
  const bt = tf.neg(tf.mean(logSigmoid(tf.sub(tf.sub(rChosen, rRejected), margin)))) as tf.Scalar;
  return centerCoef > 0 ? (tf.add(bt, tf.mul(centerCoef, tf.mean(tf.square(tf.add(rChosen, rRejected))))) as tf.Scalar) : bt;
}

/** Pointwise logistic loss on thumbs: −log σ(y · r).   r, y [Q] */
export function pointwiseLoss(r: tf.Tensor1D, labels: tf.Tensor1D): tf.Scalar {
  return tf.neg(tf.mean(logSigmoid(tf.mul(r, labels)))) as tf.Scalar;
}

export interface RewardLog {
  step: number;
  metrics: Record<string, number>;
}

export interface RewardTrainHooks {
  /** Called after every optimizer step with slash-named metrics. */
  onStep?: (log: RewardLog) => void | Promise<void>;
  /** Checked between steps; true stops training (wall-time budget, lost lease). */
  shouldStop?: () => boolean;
  /** Aborting rejects with an AbortError at the next step boundary. */
  signal?: AbortSignal;
  seed?: number;
}

export interface RewardEval {
  /** Share of pairs with r_chosen > r_rejected (0.5 counts ties as half). */
  accuracy: number;
  /** Mean r_chosen − r_rejected. */
  margin: number;
  /** Mean reward over both sides. */
  meanReward: number;
  pairs: number;
}

/** A training unit, encoded once: a pair (chosen row, rejected row) or a thumb (one row). */
type Unit = { kind: 'pair'; rows: [number[], number[]] } | { kind: 'point'; rows: [number[]]; label: 1 | -1 };

/** Units of a similar length per step (less padding: attention and MLP cost follow the padded length). */
const BUCKET_BATCHES = 8;

/**
 * One epoch's batches: shuffle, sort each run of BUCKET_BATCHES batches' worth of units by length, cut it into
 * batches, shuffle the batch order. Deterministic for a seed.
 */
function bucketedBatches(units: Unit[], batchSize: number, seed: number): Unit[][] {
  const order = shuffled(units, seed);
  const len = (u: Unit) => Math.max(...u.rows.map((r) => r.length));
  const batches: Unit[][] = [];
  for (let c = 0; c < order.length; c += batchSize * BUCKET_BATCHES) {
    const chunk = order.slice(c, c + batchSize * BUCKET_BATCHES).sort((a, b) => len(a) - len(b));
    for (let i = 0; i < chunk.length; i += batchSize) batches.push(chunk.slice(i, i + batchSize));
  }
  return shuffled(batches, seed ^ 0x5bd1e995);
}

/**
 * Trains `model` (which must have the reward head) in place. Each step takes `batchSize` units from a shuffled
 * mix of pairs (2 rows each) and thumbs (1 row each); the loss averages each term over its own rows.
 */
export async function fitRewardModel(
  model: GPT,
  tok: Tokenizer,
  data: { pairs: PairExample[]; pointwise: PointwiseExample[] },
  cfg: RewardModelConfig,
  hooks: RewardTrainHooks = {},
): Promise<{ steps: number; lastLoss: number }> {
  const opt = new ModelOptimizer(model, { groups: ['trunk', 'reward'], freezeEmbeddings: cfg.freezeEmbeddings, unfrozenLayers: cfg.unfrozenLayers, maxGradNorm: cfg.maxGradNorm });
  const maxLen = Math.min(cfg.maxLength, model.config.contextLength);
  const enc = (prompt: string, response: string) => encodeExample(tok, prompt, response, maxLen, cfg.appendEos).ids;
  const units: Unit[] = [
    ...data.pairs.map((ex): Unit => ({ kind: 'pair', rows: [enc(ex.prompt, ex.chosen), enc(ex.prompt, ex.rejected)] })),
    ...(cfg.pointwiseCoef > 0 ? data.pointwise.map((ex): Unit => ({ kind: 'point', rows: [enc(ex.prompt, ex.response)], label: ex.label })) : []),
  ];
  let step = 0;
  let lastLoss = NaN;
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    for (const batch of bucketedBatches(units, cfg.batchSize, (hooks.seed ?? 1) * 1000 + epoch)) {
      if (hooks.signal?.aborted) throw abortError();
      if (hooks.shouldStop?.()) return { steps: step, lastLoss };
      const pairs = batch.filter((u): u is Extract<Unit, { kind: 'pair' }> => u.kind === 'pair');
      const points = batch.filter((u): u is Extract<Unit, { kind: 'point' }> => u.kind === 'point');
      const rows = [...pairs.map((p) => p.rows[0]), ...pairs.map((p) => p.rows[1]), ...points.map((p) => p.rows[0])];
      const P = pairs.length, Q = points.length;
      const padded = leftPadBatch(rows);
      const res = opt.step((aux) => {
        const r = model.reward(padded.ids, padded.mask, cfg.pooling); // [2P + Q]
        let loss = tf.scalar(0);
        if (P > 0) {
          const rw = r.slice(0, P), rl = r.slice(P, P);
          loss = tf.add(loss, bradleyTerryLoss(rw, rl, cfg.margin, cfg.centerCoef));
          const diff = tf.sub(rw, rl);
          aux['rm/train_accuracy'] = tf.mean(tf.cast(tf.greater(diff, 0), 'float32'));
          aux['rm/margin'] = tf.mean(diff);
        }
        if (Q > 0) {
          const labels = tf.tensor1d(points.map((p) => p.label));
          loss = tf.add(loss, tf.mul(cfg.pointwiseCoef, pointwiseLoss(r.slice(2 * P, Q), labels)));
        }
        aux['rm/mean_reward'] = tf.mean(r);
        return loss as tf.Scalar;
      }, cfg.learningRate);
      lastLoss = res.loss;
      step++;
      await hooks.onStep?.({ step, metrics: { 'loss/rm': res.loss, 'rm/grad_norm': res.gradNorm, 'rm/epoch': epoch, ...res.aux } });
    }
  }
  return { steps: step, lastLoss };
}

/** How texts are read for scoring: as the reward model was trained (its config's fields). */
export type ReadOptions = Pick<RewardModelConfig, 'maxLength' | 'appendEos' | 'pooling'>;

/** Rewards of (prompt, response) texts, in batches (no gradient). */
export function scoreTexts(model: GPT, tok: Tokenizer, items: { prompt: string; response: string }[], read: ReadOptions, batch = 32): Float32Array {
  const out = new Float32Array(items.length);
  const maxLen = Math.min(read.maxLength, model.config.contextLength);
  for (let i = 0; i < items.length; i += batch) {
    const rows = items.slice(i, i + batch).map((x) => encodeExample(tok, x.prompt, x.response, maxLen, read.appendEos).ids);
    const padded = leftPadBatch(rows);
    const r = tf.tidy(() => model.reward(padded.ids, padded.mask, read.pooling).dataSync() as Float32Array);
    out.set(r, i);
  }
  return out;
}

/** Rewards of each pair's chosen and rejected response. */
function scorePairs(model: GPT, tok: Tokenizer, pairs: PairExample[], read: ReadOptions): { rw: Float32Array; rl: Float32Array } {
  return {
    rw: scoreTexts(model, tok, pairs.map((p) => ({ prompt: p.prompt, response: p.chosen })), read),
    rl: scoreTexts(model, tok, pairs.map((p) => ({ prompt: p.prompt, response: p.rejected })), read),
  };
}

/** Accuracy, margin and mean reward on pairs (held-out evaluation). */
export function evaluateRewardModel(model: GPT, tok: Tokenizer, pairs: PairExample[], read: ReadOptions): RewardEval {
  if (pairs.length === 0) return { accuracy: NaN, margin: NaN, meanReward: NaN, pairs: 0 };
  const { rw, rl } = scorePairs(model, tok, pairs, read);
  return summarisePairs(rw, rl);
}

export function abortError(): Error {
  const e = new Error('training aborted');
  e.name = 'AbortError';
  return e;
}

/** index.ts trainRewardModel: fit on the training pairs (+ thumbs), then evaluate on the held-out pairs. */
export async function trainRewardModelImpl(o: TrainRewardModelOptions): Promise<TrainRewardModelResult> {
  const cfg = o.config;
  const units = o.train.length + (cfg.pointwiseCoef > 0 ? o.pointwise.length : 0);
  const perEpoch = Math.ceil(units / cfg.batchSize);
  const totalSteps = perEpoch * cfg.epochs;
  const lastEpochLosses: number[] = [];
  const t0 = performance.now();
  const { steps } = await fitRewardModel(o.model, o.tokenizer, { pairs: o.train, pointwise: o.pointwise }, cfg, {
    seed: o.seed,
    signal: o.signal,
    onStep: ({ step, metrics }) => {
      if (step > totalSteps - perEpoch) lastEpochLosses.push(metrics['loss/rm']);
      o.onProgress?.({ step, totalSteps, metrics });
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  let heldOutLoss = NaN;
  let ev: RewardEval = { accuracy: NaN, margin: NaN, meanReward: NaN, pairs: 0 };
  if (o.heldOut.length) {
    const { rw, rl } = scorePairs(o.model, o.tokenizer, o.heldOut, cfg);
    ev = summarisePairs(rw, rl);
    let loss = 0;
    for (let i = 0; i < rw.length; i++) loss += Math.log1p(Math.exp(-(rw[i] - rl[i])));
    heldOutLoss = loss / rw.length;
  }
  const mean = (a: number[]) => (a.length ? a.reduce((s, x) => s + x, 0) / a.length : NaN);
  return {
    heldOutAccuracy: ev.accuracy,
    heldOutLoss,
    heldOutMargin: ev.margin,
    trainLoss: mean(lastEpochLosses),
    pairs: o.train.length,
    steps,
    pairsPerS: seconds > 0 ? (o.train.length * cfg.epochs) / seconds : 0,
    seconds,
  };
}

function summarisePairs(rw: Float32Array, rl: Float32Array): RewardEval {
  let correct = 0, margin = 0, mean = 0;
  for (let i = 0; i < rw.length; i++) {
    correct += rw[i] > rl[i] ? 1 : rw[i] === rl[i] ? 0.5 : 0;
    margin += rw[i] - rl[i];
    mean += (rw[i] + rl[i]) / 2;
  }
  return { accuracy: correct / rw.length, margin: margin / rw.length, meanReward: mean / rw.length, pairs: rw.length };
}
