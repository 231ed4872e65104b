// PPO's plain-number parts against values worked out by hand: GAE, whitening, the per-token KL estimators and
// the adaptive KL controller's direction and size.
import { describe, expect, it } from 'vitest';
import { AdaptiveKlController, computeGae, klPenalty, whiten } from '../../worker/rlhf/ppo-math';

describe('computeGae', () => {
  it('matches a hand-unrolled recursion (γ = 1, λ = 0.95)', () => {
    const r = [0, -0.1, 1], v = [0.5, 0.2, 0.4];
    // δ2 = 1 − 0.4 = 0.6; δ1 = −0.1 + 0.4 − 0.2 = 0.1; δ0 = 0 + 0.2 − 0.5 = −0.3
    // A2 = 0.6; A1 = 0.1 + 0.95·0.6 = 0.67; A0 = −0.3 + 0.95·0.67 = 0.3365
    const { advantages, returns } = computeGae(r, v, 1, 0.95);
    expect([...advantages].map((x) => +x.toFixed(10))).toEqual([0.3365, 0.67, 0.6]);
    expect([...returns].map((x) => +x.toFixed(10))).toEqual([0.8365, 0.87, 1]);
  });

  it('λ = 1, γ = 1 gives returns = reward-to-go; λ = 0 gives one-step TD errors', () => {
    const r = [1, 2, 3], v = [0.3, -1, 2];
    expect([...computeGae(r, v, 1, 1).returns]).toEqual([6, 5, 3]);
    expect([...computeGae(r, v, 1, 0).advantages].map((x) => +x.toFixed(10))).toEqual([1 - 1 - 0.3, 2 + 2 + 1, 3 - 2]);
  });

  it('discounts with γ < 1', () => {
    const { advantages } = computeGae([0, 1], [0, 0], 0.5, 1);
    expect([...advantages]).toEqual([0.5, 1]);
  });
});

describe('whiten', () => {
  it('zero mean and unit (unbiased) std across all arrays together', () => {
    const a = Float64Array.from([1, 2]), b = Float64Array.from([3, 4, 5]);
    whiten([a, b]);
    const all = [...a, ...b];
    const std = Math.sqrt(2.5); // unbiased variance of 1..5 = 2.5
    all.forEach((x, i) => expect(x).toBeCloseTo((i + 1 - 3) / std, 6));
  });
});

describe('klPenalty', () => {
  it('k3 = (r − 1) − log r with r = π_ref/π; zero when equal; never negative', () => {
    expect(klPenalty(-1, -1, 'k3')).toBe(0);
    const lp = Math.log(0.5), ref = Math.log(0.25); // r = 0.5
    expect(klPenalty(lp, ref, 'k3')).toBeCloseTo(0.5 - 1 - Math.log(0.5), 12);
    expect(klPenalty(ref, lp, 'k3')).toBeCloseTo(2 - 1 - Math.log(2), 12);
    for (const d of [-3, -0.1, 1e-9, 0.2, 5]) expect(klPenalty(0, d, 'k3')).toBeGreaterThanOrEqual(0);
  });
  it('k1_clamped = max(0, log π − log π_ref)', () => {
    expect(klPenalty(-1, -2, 'k1_clamped')).toBe(1);
    expect(klPenalty(-2, -1, 'k1_clamped')).toBe(0);
  });
  it('k3 averages to the true KL over samples from π', () => {
    const pi = [0.7, 0.2, 0.1], ref = [0.4, 0.4, 0.2];
    const exact = pi.reduce((s, p, i) => s + p * Math.log(p / ref[i]), 0);
    const expectedK3 = pi.reduce((s, p, i) => s + p * klPenalty(Math.log(p), Math.log(ref[i]), 'k3'), 0);
    expect(expectedK3).toBeCloseTo(exact, 12);
  });
});

describe('AdaptiveKlController', () => {
  it('raises β when KL is above target and lowers it below, by β·error·n/horizon with error clipped to ±0.2', () => {
    const up = new AdaptiveKlController(0.2, 6, 10000);
    expect(up.update(12, 64)).toBeCloseTo(0.2 * (1 + (0.2 * 64) / 10000), 12); // error 1 → clipped 0.2
    const down = new AdaptiveKlController(0.2, 6, 10000);
    expect(down.update(5.4, 100)).toBeCloseTo(0.2 * (1 - (0.1 * 100) / 10000), 12); // error −0.1
    expect(down.beta).toBeLessThan(0.2);
    const on = new AdaptiveKlController(0.2, 6, 10000);
    expect(on.update(6, 1000)).toBe(0.2);
  });
  it('a fixed controller never moves', () => {
    const fixed = new AdaptiveKlController(0.05, 6, 10000, false);
    expect(fixed.update(100, 1000)).toBe(0.05);
  });
});
