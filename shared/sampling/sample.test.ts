import { describe, expect, it } from 'vitest';
import { Xoshiro128 } from './rng';
import { sampleFromProbs, sampleToken, topKIndices, expNonPositive } from './sample';

const logits = Float32Array.from([1.0, 3.0, 2.0, 3.0, -1.0, 0.5, 2.5, -5.0]);
const V = logits.length;

function softmax(x: Float32Array, t = 1): number[] {
  const m = Math.max(...x);
  const e = Array.from(x, (v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function frequencies(params: { temperature: number; topP: number; topK: number }, draws = 40_000): number[] {
  const rng = new Xoshiro128(1);
  const counts = new Array(V).fill(0);
  for (let i = 0; i < draws; i++) counts[sampleToken(logits, 0, V, params, rng.next()).id]++;
  return counts.map((c) => c / draws);
}

describe('sampleToken', () => {
  it('greedy takes the argmax (lowest id on ties) and reports its temperature-1 logprob', () => {
    const s = sampleToken(logits, 0, V, { temperature: 0, topP: 1, topK: 0 }, 0.99);
    expect(s.id).toBe(1);
    expect(s.logprob).toBeCloseTo(Math.log(softmax(logits)[1]), 6);
  });

  it('reads the row at the given offset', () => {
    const two = new Float32Array(2 * V);
    two.set(logits.map((x) => -x), V);
    expect(sampleToken(two, V, V, { temperature: 0, topP: 1, topK: 0 }, 0).id).toBe(7);
  });

  it('unfiltered sampling follows softmax(logits / T)', () => {
    for (const t of [1, 0.5, 2]) {
      const f = frequencies({ temperature: t, topP: 1, topK: 0 });
      softmax(logits, t).forEach((p, i) => expect(Math.abs(f[i] - p)).toBeLessThan(0.012));
    }
  });

  it('top-k keeps only the k most likely tokens, renormalised', () => {
    const f = frequencies({ temperature: 1, topP: 1, topK: 3 });
    const p = softmax(logits);
    const kept = [1, 3, 6];
    const mass = kept.reduce((s, i) => s + p[i], 0);
    f.forEach((x, i) => (kept.includes(i) ? expect(Math.abs(x - p[i] / mass)).toBeLessThan(0.012) : expect(x).toBe(0)));
  });

  it('top-p keeps the smallest most-likely set reaching the mass', () => {
    const p = softmax(logits);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a] || a - b);
    for (const topP of [0.3, 0.6, 0.9]) {
      let cum = 0;
      const nucleus: number[] = [];
      for (const i of order) {
        nucleus.push(i);
        cum += p[i];
        if (cum >= topP) break;
      }
      const f = frequencies({ temperature: 1, topP, topK: 0 }, 20_000);
      f.forEach((x, i) => (nucleus.includes(i) ? expect(x).toBeGreaterThan(0) : expect(x).toBe(0)));
    }
  });

  it('top-k then top-p applies the nucleus to the renormalised top-k set', () => {
    // top-2 = {1, 3} with equal mass; nucleus 0.5 of that = the first of them only (lower id on ties).
    const f = frequencies({ temperature: 1, topP: 0.5, topK: 2 }, 2_000);
    expect(f[1]).toBe(1);
  });

  it('logprob is the unfiltered temperature-scaled log-probability of the chosen token', () => {
    const rng = new Xoshiro128(3);
    for (let i = 0; i < 50; i++) {
      const s = sampleToken(logits, 0, V, { temperature: 0.7, topP: 0.8, topK: 4 }, rng.next());
      expect(s.logprob).toBeCloseTo(Math.log(softmax(logits, 0.7)[s.id]), 5);
    }
  });

  it('works on a large vocabulary and picks a token near the top with a peaked distribution', () => {
    const big = new Float32Array(4096).map((_, i) => Math.sin(i * 0.37) * 4);
    const rng = new Xoshiro128(9);
    const p = softmax(big);
    const order = [...p.keys()].sort((a, b) => p[b] - p[a] || a - b);
    for (let i = 0; i < 100; i++) {
      const s = sampleToken(big, 0, big.length, { temperature: 1, topP: 0.5, topK: 0 }, rng.next());
      let cum = 0;
      const rank = order.indexOf(s.id);
      for (let j = 0; j < rank; j++) cum += p[order[j]];
      expect(cum).toBeLessThan(0.5);
    }
  });
});

describe('sampleFromProbs (temperature 1 from the float32 softmax of the step graph)', () => {
  const probs = Float32Array.from(softmax(logits));

  it('picks what sampleToken picks for the same draw, with the same logprob to float32 precision', () => {
    const rng = new Xoshiro128(7);
    let differ = 0;
    for (let i = 0; i < 20_000; i++) {
      const u = rng.next();
      const a = sampleToken(logits, 0, V, { temperature: 1, topP: 1, topK: 0 }, u);
      const b = sampleFromProbs(probs, 0, V, u);
      if (a.id !== b.id) differ++;
      else expect(Math.abs(a.logprob - b.logprob)).toBeLessThan(1e-6);
    }
    // Only a draw within float32 rounding of a boundary may land on the neighbour.
    expect(differ).toBeLessThanOrEqual(2);
  });

  it('reads the row at the given offset and never picks a zero-probability token', () => {
    const two = new Float32Array(2 * V);
    two.set([0, 0, 0.25, 0, 0.75, 0, 0, 0], V);
    for (const u of [0, 0.2, 0.25, 0.5, 0.999999]) {
      const t = sampleFromProbs(two, V, V, u);
      expect([2, 4]).toContain(t.id);
      expect(t.logprob).toBeCloseTo(Math.log(t.id === 2 ? 0.25 : 0.75), 6);
    }
    expect(sampleFromProbs(two, V, V, 0.2).id).toBe(2);
    expect(sampleFromProbs(two, V, V, 0.3).id).toBe(4);
  });
});

describe('topKIndices', () => {
  it('returns the k largest in descending order, lower index first on ties', () => {
    const probs = Float64Array.from([0.1, 0.3, 0.2, 0.3, 0.05]);
    expect(topKIndices(probs, 5, 3)).toEqual([1, 3, 2]);
    expect(topKIndices(probs, 5, 5)).toEqual([1, 3, 2, 0, 4]);
  });
});

describe('expNonPositive (the sampler exp)', () => {
  it('matches Math.exp within 1e-8 relative where doubles are normal, and is exact at 0', () => {
    expect(expNonPositive(0)).toBe(1);
    let worst = 0;
    for (let i = 0; i <= 200_000; i++) {
      const x = -((i / 200_000) ** 2) * 700; // dense near 0, where probabilities live
      worst = Math.max(worst, Math.abs(expNonPositive(x) - Math.exp(x)) / Math.exp(x));
    }
    expect(worst).toBeLessThan(1e-8);
    // Below e^-708 doubles are subnormal: there only the absolute error matters (nothing against a sum >= 1).
    for (const x of [-710, -730, -740, -1e6]) expect(Math.abs(expNonPositive(x) - Math.exp(x))).toBeLessThan(1e-300);
  });
});
