// Measuring a policy the way the users would judge it: on evaluation prompts (never sent with feedback, and in
// the API's held-out prompt split, so never PPO rollout prompts either), one output from the policy and one
// from the base (version 1), both through POST /v1/completions with `model` naming the version and the SAME
// seed per prompt (common random numbers: the two outputs differ only where the policies do). The labeler
// then answers "which is better?" with its Bradley-Terry noise, and the win rate is the share of prompts where
// it picked the policy, with a 95% Wilson interval. Never the reward model's opinion (it can be gamed).
import { Xoshiro128 } from '../shared/sampling/rng';
import type { PrefloopClient } from './client';
import type { Labeler } from './labeler';
import { bootstrapMean, mean, wilson } from './stats';

export interface EvalConfig {
  /** Tokens per output (as the users get). */
  maxTokens: number;
  temperature: number;
  /** Requests in flight at once (the server batches them). */
  concurrency: number;
  /** Seed of the per-prompt sampling seeds and labeler draws. */
  seed: number;
}

export interface Samples {
  version: number;
  texts: string[];
  scores: number[];
}

export interface WinRate {
  version: number;
  n: number;
  wins: number;
  win_rate: number;
  win_rate_ci_low: number;
  win_rate_ci_high: number;
  /** Mean of P(policy preferred) = σ(Δs / T) over prompts: the win rate without the labeler's coin flips. */
  expected_win_rate: number;
  /** Share of prompts where both outputs score the same (the labeler flips a fair coin there). */
  tie_rate: number;
  hidden_score: number;
  hidden_score_ci: [number, number];
  base_hidden_score: number;
  mean_chars: number;
}

async function mapLimit<T, R>(xs: readonly T[], limit: number, fn: (x: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, xs.length)) }, async () => {
      for (let i = next++; i < xs.length; i = next++) out[i] = await fn(xs[i], i);
    }),
  );
  return out;
}

/** One output per evaluation prompt from `version`, seeded per prompt (same seeds for every version). */
export async function sample(client: PrefloopClient, labeler: Labeler, version: number, prompts: readonly string[], cfg: EvalConfig): Promise<Samples> {
  const texts = await mapLimit(prompts, cfg.concurrency, async (prompt, i) => {
    const r = await client.complete({ model: `v${version}`, prompt, max_tokens: cfg.maxTokens, temperature: cfg.temperature, seed: cfg.seed * 100_003 + i });
    return r.choices[0].text;
  });
  return { version, texts, scores: texts.map((t) => labeler.score(t)) };
}

/** The labeler's verdicts, policy vs base, prompt by prompt. */
export function winRate(labeler: Labeler, policy: Samples, base: Samples, seed: number): WinRate {
  const n = policy.texts.length;
  let wins = 0;
  let ties = 0;
  const p: number[] = [];
  for (let i = 0; i < n; i++) {
    const rng = new Xoshiro128(seed, 0xe7a1 + policy.version * 1_000_003 + i);
    const pa = labeler.pPrefers(policy.texts[i], base.texts[i]);
    p.push(pa);
    if (policy.scores[i] === base.scores[i]) ties++;
    if (rng.next() < pa) wins++;
  }
  const w = wilson(wins, n);
  const ci = bootstrapMean(policy.scores, seed);
  return {
    version: policy.version,
    n,
    wins,
    win_rate: w.rate,
    win_rate_ci_low: w.low,
    win_rate_ci_high: w.high,
    expected_win_rate: mean(p),
    tie_rate: ties / n,
    hidden_score: mean(policy.scores),
    hidden_score_ci: [ci.low, ci.high],
    base_hidden_score: mean(base.scores),
    mean_chars: mean(policy.texts.map((t) => t.length)),
  };
}
