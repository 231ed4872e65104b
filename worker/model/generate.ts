// Plain autoregressive sampling on the TF.js model (full recompute per token, no KV cache): for the
// pretraining report's samples and for tests. Serving and PPO rollouts use the ONNX sampler in shared/sampling.
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../train/lm-data';
import type { GPT } from './gpt';

export interface GenerateOptions {
  /** New tokens at most. */
  maxNewTokens: number;
  /** Softmax temperature (0 = greedy). */
  temperature: number;
  /** Sample among the k most likely tokens (0 = all). */
  topK: number;
  seed: number;
  /** Stop after this token (e.g. EOS). */
  stopId?: number;
}

export function generate(model: GPT, prompt: number[], o: GenerateOptions): number[] {
  const rng = new Rng(o.seed);
  const ids = [...prompt];
  const ctx = model.config.contextLength;
  for (let s = 0; s < o.maxNewTokens; s++) {
    const window = ids.slice(-ctx);
    const logits = tf.tidy(() => {
      const { logits } = model.forward([window]);
      return logits.slice([0, window.length - 1, 0], [1, 1, model.config.vocabSize]).dataSync() as Float32Array;
    });
    const next = pick(logits, o, rng);
    ids.push(next);
    if (next === o.stopId) break;
  }
  return ids.slice(prompt.length);
}

function pick(logits: Float32Array, o: GenerateOptions, rng: Rng): number {
  if (o.temperature === 0) return logits.indexOf(Math.max(...logits));
  let order = Array.from(logits.keys());
  if (o.topK > 0) order = order.sort((a, b) => logits[b] - logits[a]).slice(0, o.topK);
  const max = Math.max(...order.map((i) => logits[i]));
  const w = order.map((i) => Math.exp((logits[i] - max) / o.temperature));
  let r = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let j = 0; j < order.length; j++) if ((r -= w[j]) <= 0) return order[j];
  return order[order.length - 1];
}
