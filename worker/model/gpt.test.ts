import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { ensureBackend } from '../backend';
import { GPT, paramSpecs } from './gpt';

const TINY: ModelConfig = { vocabSize: 300, contextLength: 16, nLayer: 2, nHead: 2, dModel: 16, mlpRatio: 4, layerNormEps: 1e-5 };
const ids = (B: number, T: number, seed: number) => Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (seed * 7919 + b * 131 + t * 37) % TINY.vocabSize));
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
});

describe('GPT', () => {
  it('exposes exactly the GPT-2 weight names and shapes of the contract', () => {
    const m = new GPT(TINY, { heads: { value: true, reward: true }, seed: 1 });
    const C = TINY.dModel;
    const expected: Record<string, number[]> = {
      'wte.weight': [300, C], 'wpe.weight': [16, C], 'ln_f.weight': [C], 'ln_f.bias': [C],
      'v_head.weight': [C, 1], 'v_head.bias': [1], 'score.weight': [C, 1], 'score.bias': [1],
    };
    for (let i = 0; i < TINY.nLayer; i++) {
      Object.assign(expected, {
        [`h.${i}.ln_1.weight`]: [C], [`h.${i}.ln_1.bias`]: [C], [`h.${i}.ln_2.weight`]: [C], [`h.${i}.ln_2.bias`]: [C],
        [`h.${i}.attn.c_attn.weight`]: [C, 3 * C], [`h.${i}.attn.c_attn.bias`]: [3 * C], [`h.${i}.attn.c_proj.weight`]: [C, C], [`h.${i}.attn.c_proj.bias`]: [C],
        [`h.${i}.mlp.c_fc.weight`]: [C, 4 * C], [`h.${i}.mlp.c_fc.bias`]: [4 * C], [`h.${i}.mlp.c_proj.weight`]: [4 * C, C], [`h.${i}.mlp.c_proj.bias`]: [C],
      });
    }
    expect(Object.fromEntries([...m.weights].map(([k, v]) => [k, v.shape]))).toEqual(expected);
    expect(m.variables(['value', 'reward'])).toHaveLength(4);
    expect(paramSpecs(TINY, { value: false, reward: false }).some((s) => /v_head|score/.test(s.name))).toBe(false);
    m.dispose();
  });

  it('is causal, tied, and the same with left padding at the real tokens', () => {
    const m = new GPT(TINY, { heads: { value: true, reward: true }, seed: 2 });
    const x = ids(1, 10, 3);
    const y = [[...x[0].slice(0, 6), 5, 6, 7, 8]]; // same prefix of 6, different future
    const a = m.forward(x), b = m.forward(y);
    expect(a.logits.shape).toEqual([1, 10, 300]);
    expect(a.values!.shape).toEqual([1, 10]);
    expect(maxAbsDiff(a.logits.slice([0, 0, 0], [1, 6, 300]), b.logits.slice([0, 0, 0], [1, 6, 300]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(a.logits.slice([0, 6, 0], [1, 4, 300]), b.logits.slice([0, 6, 0], [1, 4, 300]))).toBeGreaterThan(1e-3);
    // tied head: logits = hidden @ wteᵀ
    const manual = tf.matMul(a.hidden.reshape([10, 16]), m.weights.get('wte.weight')!.transpose());
    expect(maxAbsDiff(manual, a.logits.reshape([10, 300]))).toBeLessThan(1e-4);
    // a row left-padded with 3 pads gives the same logits, values and reward at its real tokens
    const padded = [[0, 0, 0, ...x[0].slice(0, 7)], x[0]];
    const mask = [[0, 0, 0, 1, 1, 1, 1, 1, 1, 1], Array(10).fill(1)];
    const p = m.forward(padded, mask), u = m.forward([x[0].slice(0, 7)]);
    expect(maxAbsDiff(p.logits.slice([0, 3, 0], [1, 7, 300]), u.logits)).toBeLessThan(1e-4);
    expect(maxAbsDiff(p.values!.slice([0, 3], [1, 7]), u.values!)).toBeLessThan(1e-4);
    const r = m.reward(padded, mask).dataSync();
    expect(r[0]).toBeCloseTo(m.reward([x[0].slice(0, 7)], [Array(7).fill(1)]).dataSync()[0], 4);
    expect(r[1]).toBeCloseTo(m.reward(x, [Array(10).fill(1)]).dataSync()[0], 4);
    // token log-probs are log-softmax picks of the next token
    const { logProbs } = m.tokenLogProbs(x);
    const lp = tf.logSoftmax(a.logits).arraySync() as number[][][];
    expect(logProbs.arraySync()[0][4]).toBeCloseTo(lp[0][4][x[0][5]], 4);
    m.dispose();
  });

  it('round-trips weights through plain arrays and clones independently', () => {
    const m = new GPT(TINY, { seed: 3 });
    const x = ids(2, 8, 1);
    const other = new GPT(TINY, { seed: 4 });
    expect(maxAbsDiff(m.forward(x).logits, other.forward(x).logits)).toBeGreaterThan(1e-3);
    other.loadWeights(m.toNamedArrays());
    expect(maxAbsDiff(m.forward(x).logits, other.forward(x).logits)).toBe(0);
    const c = m.clone();
    c.weights.get('ln_f.bias')!.assign(tf.onesLike(c.weights.get('ln_f.bias')!));
    expect(maxAbsDiff(m.forward(x).logits, other.forward(x).logits)).toBe(0);
    expect(maxAbsDiff(m.forward(x).logits, c.forward(x).logits)).toBeGreaterThan(1e-3);
    expect(() => other.loadWeights({ 'wte.weight': { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } }, { strict: false })).toThrow(/shape/);
    expect(() => other.loadWeights({ 'ln_f.bias': m.weights.get('ln_f.bias')! })).toThrow(/missing weights/);
    // a reward model warm-started from a policy keeps its fresh score head
    const rm = new GPT(TINY, { heads: { value: false, reward: true }, seed: 9 });
    rm.loadWeights(m.toNamedArrays(), { strict: false });
    expect(maxAbsDiff(rm.forward(x).logits, m.forward(x).logits)).toBe(0);
    for (const g of [m, other, c, rm]) g.dispose();
  });

  it('lmLoss is the weighted mean next-token cross-entropy of the forward logits', () => {
    // An independent float64 reference: the gradient check below cannot catch a wrong but self-consistent loss.
    const m = new GPT(TINY, { heads: { value: false, reward: false }, seed: 6 });
    const B = 3, T = 9;
    const windows = ids(B, T + 1, 5);
    const weights = Float32Array.from({ length: B * T }, (_, i) => (i % 4 === 1 ? 0 : 0.5 + (i % 3)));
    const logits = m.forward(windows.map((w) => w.slice(0, T))).logits.arraySync() as number[][][];
    let nats = 0, total = 0;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const row = logits[b][t], max = Math.max(...row);
        const lse = max + Math.log(row.reduce((a, l) => a + Math.exp(l - max), 0));
        nats += weights[b * T + t] * (lse - row[windows[b][t + 1]]);
        total += weights[b * T + t];
      }
    const loss = m.lmLoss(Int32Array.from(windows.flat()), B, weights).dataSync()[0];
    expect(Math.abs(loss - nats / total)).toBeLessThan(1e-5);
    m.dispose();
  });

  it('has gradients that match finite differences for every weight (tiny config)', () => {
    const m = new GPT(TINY, { heads: { value: true, reward: true }, seed: 5 });
    const B = 2, T = 7;
    const toks = Int32Array.from(ids(B, T + 1, 2).flat());
    const x = ids(B, T, 4);
    const mask = [[0, 0, 1, 1, 1, 1, 1], Array(T).fill(1)];
    // One objective that reaches every weight: LM loss (unpadded path, fused cross-entropy), value and reward
    // heads and token log-probs on the left-padded path (position gather, key masking).
    const objective = () =>
      tf.tidy(() => {
        const lm = m.lmLoss(toks, B);
        const out = m.tokenLogProbs(x, mask);
        const v = tf.mean(tf.square(out.values!));
        const r = tf.sum(tf.mul(m.reward(x, mask), tf.tensor1d([0.7, -0.4])));
        return tf.addN([lm, tf.mul(0.05, tf.mean(out.logProbs)), v, r]) as tf.Scalar;
      });
    const vars = m.variables();
    const { grads } = tf.variableGrads(objective, vars);
    let seed = 17;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
    for (const [name, v] of m.weights) {
      // directional derivative along a random direction vs a central difference (float32: eps 2e-3)
      const g = grads[v.name];
      expect(g, name).toBeDefined();
      const u = tf.tensor(Float32Array.from({ length: v.size }, rand), v.shape);
      const analytic = tf.sum(tf.mul(g, u)).dataSync()[0];
      const orig = v.clone();
      const eps = 2e-3;
      v.assign(tf.add(orig, tf.mul(eps, u)));
      const up = objective().dataSync()[0];
      v.assign(tf.sub(orig, tf.mul(eps, u)));
      const down = objective().dataSync()[0];
      v.assign(orig);
      const numeric = (up - down) / (2 * eps);
      expect(Math.abs(analytic - numeric), `${name}: analytic ${analytic} vs numeric ${numeric}`).toBeLessThan(2e-3 + 0.03 * Math.abs(numeric));
      tf.dispose([u, orig]);
    }
    m.dispose();
  });
});
