// Merged PPO runs (ppo.mergeRuns): every run starts from the same weights with its own seed, and the policy ends at
// the mean of where the runs ended. The runs here are stand-ins that move the weights by a known, seed-dependent
// amount (a real PPO run's end point is not known in advance); tests/rlhf/ppo.test.ts covers PPO itself.
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { ppoConfigSchema } from '../../shared/training-config';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import type { RunPpoOptions, RunPpoResult } from '../../worker/rlhf';
import { runMergedPpo } from '../../worker/rlhf/ppo-merge';

const tok = Tokenizer.byteLevel();
const TINY: ModelConfig = { vocabSize: tok.vocabSize, contextLength: 16, nLayer: 1, nHead: 2, dModel: 8, mlpRatio: 4, layerNormEps: 1e-5 };

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
});

const weights = (g: GPT) => new Map(Object.entries(g.toNamedArrays()).map(([n, a]) => [n, Float32Array.from(a.data)]));

function fakeRun(calls: { seed: number; start: Map<string, Float32Array>; deadlineMs?: number }[]) {
  return async (o: RunPpoOptions): Promise<RunPpoResult> => {
    calls.push({ seed: o.seed, start: weights(o.policy), deadlineMs: o.deadlineMs });
    // Move every weight by (seed mod 7) + 1: each run's end point is known.
    const shift = (o.seed % 7) + 1;
    const moved = Object.fromEntries(Object.entries(o.policy.toNamedArrays()).map(([n, a]) => [n, { ...a, data: a.data.map((x) => x + shift) }]));
    o.policy.loadWeights(moved);
    const m = { iteration: 1, episodes: 8, rolloutS: 1, updateS: 1, rolloutTokensPerS: 10, updateTokensPerS: 20 } as RunPpoResult['iterations'][number];
    o.onIteration?.(m);
    return { iterations: [m], episodes: 8, finalBeta: 0.2, stoppedBy: o.seed === calls[0].seed ? 'done' : 'kl', rolloutTokensPerS: 10, updateTokensPerS: 20, seconds: 2 };
  };
}

describe('runMergedPpo', () => {
  it('starts every run from the same weights with its own seed and ends at the mean of the runs', async () => {
    const policy = new GPT(TINY, { heads: { value: true }, seed: 5 });
    const start = weights(policy);
    const calls: Parameters<typeof fakeRun>[0] = [];
    const seen: number[] = [];
    const deadline = Date.now() + 60_000;
    const r = await runMergedPpo(
      { policy, config: ppoConfigSchema.parse({ mergeRuns: 3 }), seed: 11, deadlineMs: deadline, onIteration: (m: { iteration: number }) => seen.push(m.iteration) } as unknown as RunPpoOptions,
      fakeRun(calls),
    );
    expect(calls).toHaveLength(3);
    expect(new Set(calls.map((c) => c.seed)).size).toBe(3);
    expect(calls[0].seed).toBe(11); // run 0 is the unmerged run
    for (const c of calls) for (const [n, w] of start) expect(c.start.get(n)).toEqual(w);
    // The first run may use a third of the time left, the last all of it.
    expect(calls[0].deadlineMs!).toBeLessThan(deadline - 30_000);
    expect(calls[2].deadlineMs).toBe(deadline);
    const meanShift = calls.reduce((s, c) => s + (c.seed % 7) + 1, 0) / 3;
    const end = weights(policy);
    for (const [n, w] of start) for (let i = 0; i < w.length; i++) expect(end.get(n)![i]).toBeCloseTo(w[i] + meanShift, 4);
    expect(r.episodes).toBe(24);
    expect(r.iterations.map((m) => m.iteration)).toEqual([1, 2, 3]);
    expect(r.iterations.map((m) => m.episodes)).toEqual([8, 16, 24]);
    expect(seen).toEqual([1, 2, 3]);
    expect(r.stoppedBy).toBe('kl');
    policy.dispose();
  });

  it('is one plain run with mergeRuns 1', async () => {
    const policy = new GPT(TINY, { heads: { value: true }, seed: 5 });
    const start = weights(policy);
    const calls: Parameters<typeof fakeRun>[0] = [];
    await runMergedPpo({ policy, config: ppoConfigSchema.parse({}), seed: 4 } as unknown as RunPpoOptions, fakeRun(calls));
    expect(calls.map((c) => c.seed)).toEqual([4]);
    const end = weights(policy);
    for (const [n, w] of start) expect(end.get(n)![0]).toBeCloseTo(w[0] + 5, 5);
    policy.dispose();
  });
});
