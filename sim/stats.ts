// Statistics the simulation reports: Wilson score intervals for win rates (they stay inside [0, 1] and behave
// at small n and near 0 or 1, unlike the normal approximation), a percentile bootstrap for means, and the
// logistic function the Bradley-Terry labeler uses.
import { Xoshiro128 } from '../shared/sampling/rng';

/** z for a two-sided 95% interval. */
export const Z95 = 1.959963984540054;

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** Wilson score interval for `wins` successes out of `n` (ties counted as half a win are allowed). */
export function wilson(wins: number, n: number, z = Z95): { rate: number; low: number; high: number } {
  if (n <= 0) return { rate: NaN, low: NaN, high: NaN };
  const p = wins / n;
  const z2 = z * z;
  const denom = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))) / denom;
  return { rate: p, low: Math.max(0, centre - half), high: Math.min(1, centre + half) };
}

export const mean = (xs: readonly number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

/** Percentile bootstrap interval of the mean (seeded, so a report is reproducible). */
export function bootstrapMean(xs: readonly number[], seed = 1, resamples = 2000, level = 0.95): { mean: number; low: number; high: number } {
  if (xs.length === 0) return { mean: NaN, low: NaN, high: NaN };
  const rng = new Xoshiro128(seed);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < xs.length; i++) s += xs[Math.floor(rng.next() * xs.length)];
    means[r] = s / xs.length;
  }
  means.sort();
  const q = (p: number) => means[Math.min(resamples - 1, Math.max(0, Math.floor(p * resamples)))];
  return { mean: mean(xs), low: q((1 - level) / 2), high: q(1 - (1 - level) / 2) };
}
