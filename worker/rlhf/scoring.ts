// Forward-only scoring of sampled sequences by a frozen model, on either engine: per-token log-probabilities of
// a response under a reference policy (policy.onnx session or TF.js GPT), and reward-model scores (reward.onnx
// session or TF.js GPT with the reward head). Sequences are BOS + prompt + response, as the sampler made them.
import * as tf from '@tensorflow/tfjs';
import { Tensor } from 'onnxruntime-common';
import { headDim, type ModelConfig } from '../../shared/model-config';
import { POLICY_INPUTS, POLICY_OUTPUTS, REWARD_OUTPUT, REWARD_TOKENS_OUTPUT, pastKeyName, pastValueName } from '../../shared/policy-io';
import type { InferenceSession } from 'onnxruntime-common';
import { PAD_ID } from '../../shared/tokenizer';
import { GPT } from '../model/gpt';
import { leftPadBatch } from './batch';

/** An onnxruntime session (node or web) as far as scoring and sampling need it; ort.InferenceSession fits. */
export interface OnnxSession {
  run(feeds: InferenceSession.FeedsType): Promise<InferenceSession.ReturnType>;
}

export type ScoringModel = GPT | OnnxSession;

export interface Sequence {
  /** BOS + prompt (what the sampler was fed). */
  promptIds: readonly number[];
  /** Sampled tokens, EOS included when sampled. */
  responseIds: readonly number[];
}

/** Rows per forward: bounds the [rows, S, V] logits buffer (32 × 96 × 2048 floats ≈ 25 MB). */
const CHUNK = 32;

/** Left-padded ids / mask / positions (cumsum(mask) − 1) for onnxruntime. */
function ortFeeds(seqs: number[][]): { feeds: Record<string, Tensor>; S: number; pads: number[] } {
  const B = seqs.length, S = Math.max(...seqs.map((s) => s.length));
  const ids = new BigInt64Array(B * S).fill(BigInt(PAD_ID)), mask = new BigInt64Array(B * S), pos = new BigInt64Array(B * S);
  const pads: number[] = [];
  seqs.forEach((s, b) => {
    const pad = S - s.length;
    pads.push(pad);
    s.forEach((t, j) => ((ids[b * S + pad + j] = BigInt(t)), (mask[b * S + pad + j] = 1n), (pos[b * S + pad + j] = BigInt(j))));
  });
  return {
    feeds: {
      [POLICY_INPUTS.inputIds]: new Tensor('int64', ids, [B, S]),
      [POLICY_INPUTS.attentionMask]: new Tensor('int64', mask, [B, S]),
      [POLICY_INPUTS.positionIds]: new Tensor('int64', pos, [B, S]),
    },
    S,
    pads,
  };
}

/** log softmax(row / temperature)[target] over V logits at `off`. */
function logProbAt(logits: Float32Array, off: number, V: number, target: number, temperature: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v] > max) max = logits[off + v];
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp((logits[off + v] - max) / temperature);
  return (logits[off + target] - max) / temperature - Math.log(sum);
}

/** log softmax(row / temperature) of the V logits at `off`, written to `out` at `at`. */
function logSoftmaxInto(logits: Float32Array, off: number, V: number, temperature: number, out: Float32Array, at: number): void {
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (logits[off + v] > max) max = logits[off + v];
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp((logits[off + v] - max) / temperature);
  const lse = Math.log(sum);
  for (let v = 0; v < V; v++) out[at + v] = (logits[off + v] - max) / temperature - lse;
}

/**
 * log π(response_t | prefix) for every response token, at the sampling temperature (TRL scales the reference's
 * logits by the same temperature as the policy's).   → one Float32Array per sequence, length = response length.
 */
export async function responseLogProbs(
  model: ScoringModel,
  config: ModelConfig,
  seqs: Sequence[],
  temperature: number,
  /** When given, receives each sequence's whole log-distributions too: [response length × V], row j predicting token j. */
  distributions?: Float32Array[],
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  const V = config.vocabSize;
  for (let i = 0; i < seqs.length; i += CHUNK) {
    const chunk = seqs.slice(i, i + CHUNK);
    const rows = chunk.map((s) => [...s.promptIds, ...s.responseIds]);
    let logits: Float32Array, S: number, pads: number[];
    if (model instanceof GPT) {
      const batch = leftPadBatch(rows);
      ({ T: S, pads } = batch);
      logits = tf.tidy(() => model.forward(batch.ids, batch.mask).logits.dataSync() as Float32Array);
    } else {
      const f = ortFeeds(rows);
      ({ S, pads } = f);
      const empty = new Float32Array(0);
      for (let l = 0; l < config.nLayer; l++) {
        f.feeds[pastKeyName(l)] = new Tensor('float32', empty, [rows.length, config.nHead, 0, headDim(config)]);
        f.feeds[pastValueName(l)] = new Tensor('float32', empty, [rows.length, config.nHead, 0, headDim(config)]);
      }
      const res = await model.run(f.feeds);
      logits = res[POLICY_OUTPUTS.logits].data as Float32Array;
    }
    chunk.forEach((s, b) => {
      const lp = new Float32Array(s.responseIds.length);
      const first = pads[b] + s.promptIds.length; // column of the first response token
      if (distributions) {
        // The whole rows, and each sampled token's entry read from them (one log-sum-exp per position).
        const d = new Float32Array(lp.length * V);
        for (let j = 0; j < lp.length; j++) {
          logSoftmaxInto(logits, (b * S + first + j - 1) * V, V, temperature, d, j * V);
          lp[j] = d[j * V + s.responseIds[j]];
        }
        distributions.push(d);
      } else {
        for (let j = 0; j < lp.length; j++) lp[j] = logProbAt(logits, (b * S + first + j - 1) * V, V, s.responseIds[j], temperature);
      }
      out.push(lp);
    });
  }
  return out;
}

/** Reward-model score of each full sequence (its score head read as the reward graph reads it).   → [n] */
export async function rewardScores(model: ScoringModel, seqs: Sequence[]): Promise<Float32Array> {
  return (await rewardsWithTerms(model, seqs)).scores;
}

export interface RewardTerms {
  /** The reward of each sequence. */
  scores: Float32Array;
  /** Per sequence, each response token's share of its reward (the rest of the reward is the prompt's share). */
  responseTerms: Float32Array[];
}

/** Rewards, and how each response token contributes to them (PPO's dense reward). A reward.onnx session reads
 *  its score head as its graph was built (rewardModel.pooling); a TF.js reward model here is read mean-pooled. */
export async function rewardsWithTerms(model: ScoringModel, seqs: Sequence[]): Promise<RewardTerms> {
  const scores = new Float32Array(seqs.length);
  const responseTerms: Float32Array[] = [];
  for (let i = 0; i < seqs.length; i += CHUNK) {
    const chunk = seqs.slice(i, i + CHUNK);
    const rows = chunk.map((s) => [...s.promptIds, ...s.responseIds]);
    let terms: Float32Array, S: number, pads: number[];
    if (model instanceof GPT) {
      const batch = leftPadBatch(rows);
      ({ T: S, pads } = batch);
      terms = tf.tidy(() => {
        const h = model.forward(batch.ids, batch.mask).hidden.reshape([rows.length * S, model.config.dModel]) as tf.Tensor2D;
        const s = tf.add(tf.matMul(h, model.weights.get('score.weight')! as tf.Tensor2D), model.weights.get('score.bias')!);
        return s.dataSync() as Float32Array;
      });
      // GPT.reward's mean, from the same forward pass: each real token's score / row length, summed.
      chunk.forEach((_, b) => {
        const n = rows[b].length;
        let sum = 0;
        for (let t = 0; t < S; t++) sum += terms[b * S + t] = t < pads[b] ? 0 : terms[b * S + t] / n;
        scores[i + b] = sum;
      });
    } else {
      const f = ortFeeds(rows);
      ({ S, pads } = f);
      const res = await model.run({ [POLICY_INPUTS.inputIds]: f.feeds[POLICY_INPUTS.inputIds], [POLICY_INPUTS.attentionMask]: f.feeds[POLICY_INPUTS.attentionMask] });
      scores.set(res[REWARD_OUTPUT].data as Float32Array, i);
      terms = res[REWARD_TOKENS_OUTPUT].data as Float32Array;
    }
    chunk.forEach((s, b) => {
      const first = b * S + pads[b] + s.promptIds.length;
      responseTerms.push(terms.slice(first, first + s.responseIds.length));
    });
  }
  return { scores, responseTerms };
}
