// PPO runs merged by weight averaging (ppo.mergeRuns; WARP, Ramé et al. 2024): K PPO runs from the same start with
// different seeds, and the policy becomes the start plus the mean of their updates. The reward's direction is common
// to the runs; much of each update is the seed's own noise (its minibatches, its samples), which moves the policy away
// from the reference (KL) without raising the score. Averaging keeps the common part and shrinks the rest ~1/√K.
import type { GPT, NamedArray } from '../model/gpt';
import { WeightMean } from '../model/weight-mean';
import type { PpoIterationMetrics, RunPpoOptions, RunPpoResult } from './index';

type RunOne = (o: RunPpoOptions) => Promise<RunPpoResult>;

/** Seed of merged run k (k = 0 is the unmerged run's seed, so mergeRuns 1 changes nothing). */
const runSeed = (seed: number, k: number) => (seed + k * 100_003) >>> 0;

function snapshot(g: GPT): Record<string, NamedArray> {
  const out: Record<string, NamedArray> = {};
  for (const [name, a] of Object.entries(g.toNamedArrays())) out[name] = { ...a, shape: [...a.shape], data: Float32Array.from(a.data) };
  return out;
}

export async function runMergedPpo(o: RunPpoOptions, runOne: RunOne): Promise<RunPpoResult> {
  const k = o.config.mergeRuns;
  if (k <= 1) return runOne(o);
  const start = snapshot(o.policy);
  const ends = new WeightMean();
  const results: RunPpoResult[] = [];
  const iterations: PpoIterationMetrics[] = [];
  for (let i = 0; i < k; i++) {
    if (i > 0) o.policy.loadWeights(start);
    // The time left is shared by the runs still to go, so a deadline cuts each run short instead of dropping the last.
    const deadlineMs = o.deadlineMs === undefined ? undefined : Date.now() + (o.deadlineMs - Date.now()) / (k - i);
    // Iterations and episodes count on across the runs, as one long run's would.
    const offset = iterations.length;
    const episodesBefore = results.reduce((s, r) => s + r.episodes, 0);
    const renumber = (m: PpoIterationMetrics) => ({ ...m, iteration: offset + m.iteration, episodes: episodesBefore + m.episodes });
    const r = await runOne({ ...o, seed: runSeed(o.seed, i), deadlineMs, onIteration: (m) => o.onIteration?.(renumber(m)) });
    results.push(r);
    iterations.push(...r.iterations.map(renumber));
    ends.add(o.policy);
  }
  o.policy.loadWeights(ends.mean());

  const seconds = results.reduce((s, r) => s + r.seconds, 0);
  const rolloutS = iterations.reduce((s, m) => s + m.rolloutS, 0);
  const updateS = iterations.reduce((s, m) => s + m.updateS, 0);
  const rolloutTokens = iterations.reduce((s, m) => s + m.rolloutTokensPerS * m.rolloutS, 0);
  const updateTokens = iterations.reduce((s, m) => s + m.updateTokensPerS * m.updateS, 0);
  return {
    iterations,
    episodes: results.reduce((s, r) => s + r.episodes, 0),
    finalBeta: results.reduce((s, r) => s + r.finalBeta, 0) / k,
    // 'kl' or 'deadline' when any run stopped so; the merge is then of shorter runs.
    stoppedBy: results.find((r) => r.stoppedBy !== 'done')?.stoppedBy ?? 'done',
    rolloutTokensPerS: rolloutS > 0 ? rolloutTokens / rolloutS : 0,
    updateTokensPerS: updateS > 0 ? updateTokens / updateS : 0,
    seconds,
  };
}
