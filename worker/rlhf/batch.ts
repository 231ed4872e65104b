// Token sequences for the RLHF trainers: how a (prompt, response) pair becomes the ids the models read, and
// left-padded batches of them. One rule everywhere: BOS + prompt + response (+ EOS when the response ended),
// which is exactly what the sampler produces (BOS-prefixed prompt, then the sampled tokens, EOS included when
// sampled), so the reward model scores feedback text and PPO rollouts in the same layout.
import type { Ids } from '../model/gpt';
import { BOS_ID, EOS_ID, PAD_ID, type Tokenizer } from '../../shared/tokenizer';

export interface Encoded {
  ids: number[];
  /** Tokens before the response (BOS + prompt). */
  promptLen: number;
}

/** BOS + prompt + response + EOS, at most `maxLength` tokens: the prompt loses its oldest tokens first (BOS
 *  is kept), then the response keeps its tail. */
export function encodeExample(tok: Tokenizer, prompt: string, response: string, maxLength: number, withEos = true): Encoded {
  const r = [...tok.encode(response), ...(withEos ? [EOS_ID] : [])];
  // BOS stays first however much of the prompt is cut, as in rollouts (rollout.ts promptIdsFor).
  const fit = fitLength(tok.encode(prompt), r, maxLength - 1);
  return { ids: [BOS_ID, ...fit.ids], promptLen: fit.promptLen + 1 };
}

/** Joins prompt and response ids, dropping the prompt's oldest tokens (then the response's) past `maxLength`. */
export function fitLength(prompt: readonly number[], response: readonly number[], maxLength: number): Encoded {
  let p = [...prompt];
  let r = [...response];
  if (r.length >= maxLength) (r = r.slice(r.length - maxLength + 1)), (p = p.slice(-1));
  if (p.length + r.length > maxLength) p = p.slice(p.length + r.length - maxLength);
  return { ids: [...p, ...r], promptLen: p.length };
}

export interface PaddedBatch {
  ids: Ids & { data: Int32Array; batch: number };
  mask: Ids & { data: Int32Array; batch: number };
  B: number;
  T: number;
  /** Left pad count of each row. */
  pads: number[];
}

/** Left-pads sequences to one length (the GPT derives positions from the mask, so pads change nothing). */
export function leftPadBatch(seqs: readonly (readonly number[])[], minLength = 0): PaddedBatch {
  const B = seqs.length;
  const T = Math.max(minLength, ...seqs.map((s) => s.length));
  const ids = new Int32Array(B * T).fill(PAD_ID);
  const mask = new Int32Array(B * T);
  const pads: number[] = [];
  seqs.forEach((s, b) => {
    const pad = T - s.length;
    pads.push(pad);
    ids.set(s, b * T + pad);
    mask.fill(1, b * T + pad, (b + 1) * T);
  });
  return { ids: { data: ids, batch: B }, mask: { data: mask, batch: B }, B, T, pads };
}

/** Deterministic Fisher-Yates shuffle (mulberry32). */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const rand = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
