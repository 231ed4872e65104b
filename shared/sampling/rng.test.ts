import { describe, expect, it } from 'vitest';
import { Xoshiro128, randomSeed } from './rng';

describe('Xoshiro128', () => {
  it('is reproducible for a seed and stream, and streams and seeds differ', () => {
    const draw = (seed: number, stream: number) => Array.from({ length: 8 }, ((r) => () => r.next())(new Xoshiro128(seed, stream)));
    expect(draw(42, 0)).toEqual(draw(42, 0));
    expect(draw(42, 0)).not.toEqual(draw(42, 1));
    expect(draw(42, 0)).not.toEqual(draw(43, 0));
    expect(draw(2 ** 40 + 5, 0)).not.toEqual(draw(5, 0)); // the high half of the seed matters
    expect(draw(-1, 0)).not.toEqual(draw(1, 0));
  });

  it('gives uniform floats in [0, 1)', () => {
    const r = new Xoshiro128(7);
    const buckets = new Array(10).fill(0);
    const N = 100_000;
    let sum = 0;
    let outside = 0;
    for (let i = 0; i < N; i++) {
      const x = r.next();
      if (!(x >= 0 && x < 1)) outside++;
      buckets[Math.floor(x * 10)]++;
      sum += x;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / N - 0.5)).toBeLessThan(0.01);
    for (const b of buckets) expect(Math.abs(b / N - 0.1)).toBeLessThan(0.01);
  });

  it('refuses seeds that are not safe integers; random seeds are safe integers', () => {
    expect(() => new Xoshiro128(1.5)).toThrow(RangeError);
    for (let i = 0; i < 20; i++) expect(Number.isSafeInteger(randomSeed())).toBe(true);
  });
});
