// PPO end to end on a tiny GPT with real onnxruntime: a reward model learns a synthetic preference (more
// lowercase letters is better), is exported to reward.onnx, and PPO, sampling through the serving sampler
// from a freshly exported policy.onnx each batch, raises the RM score while reporting a non-negative KL to the
// reference (the initial policy, also on onnxruntime). The gate's evaluation is deterministic for a seed and
// agrees that the trained policy scores higher and has moved away from the reference.
import * as tf from '@tensorflow/tfjs';
import type * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { parseTrainingConfig } from '../../shared/training-config';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import { evaluatePolicy, exportPolicySession, exportRewardSession, metricRecord, runPpo, trainRewardModel, type PairExample, type PpoIterationMetrics } from '../../worker/rlhf';
import { mulberry32 } from '../../worker/rlhf/batch';

const tok = Tokenizer.byteLevel();
const TINY: ModelConfig = { vocabSize: tok.vocabSize, contextLength: 32, nLayer: 2, nHead: 2, dModel: 32, mlpRatio: 4, layerNormEps: 1e-5 };
const PROMPTS = ['go', 'tell me', 'ok', 'say it', 'more', 'hm', 'why', 'next'];
const lowerShare = (s: string) => (s.length ? [...s].filter((c) => c >= 'a' && c <= 'z').length / s.length : 0);

/** Pairs of random printable strings; the one with the larger share of lowercase letters is chosen. */
function syntheticPairs(n: number, seed: number): PairExample[] {
  const rand = mulberry32(seed);
  const str = () => {
    const p = rand();
    return Array.from({ length: 4 + Math.floor(rand() * 6) }, () => (rand() < p ? String.fromCharCode(97 + Math.floor(rand() * 26)) : String.fromCharCode(33 + Math.floor(rand() * 64)))).join('');
  };
  const out: PairExample[] = [];
  while (out.length < n) {
    const a = str(), b = str();
    if (Math.abs(lowerShare(a) - lowerShare(b)) < 0.2) continue;
    const prompt = PROMPTS[Math.floor(rand() * PROMPTS.length)];
    out.push(lowerShare(a) > lowerShare(b) ? { prompt, chosen: a, rejected: b } : { prompt, chosen: b, rejected: a });
  }
  return out;
}

let rm: GPT, rmSession: ort.InferenceSession, refSession: ort.InferenceSession, policy: GPT;
const sessions: ort.InferenceSession[] = [];

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
  rm = new GPT(TINY, { heads: { value: false, reward: true }, seed: 11 });
  const cfg = parseTrainingConfig({ rewardModel: { epochs: 3, batchSize: 16, learningRate: 3e-3, maxLength: 32, freezeEmbeddings: false, pointwiseCoef: 0 } }).rewardModel;
  const res = await trainRewardModel({ model: rm, tokenizer: tok, train: syntheticPairs(192, 1), heldOut: syntheticPairs(64, 2), pointwise: [], config: cfg, seed: 1 });
  expect(res.heldOutAccuracy).toBeGreaterThan(0.75);
  rmSession = await exportRewardSession(rm);
  policy = new GPT(TINY, { heads: { value: true }, seed: 12 });
  refSession = await exportPolicySession(policy);
  sessions.push(rmSession, refSession);
}, 60_000);

afterAll(async () => {
  for (const s of sessions) await s.release();
  rm?.dispose();
  policy?.dispose();
});

describe('runPpo + evaluatePolicy', () => {
  let before: Awaited<ReturnType<typeof evaluatePolicy>>;
  const evalOpts = () => ({ config: TINY, reference: refSession, rewardModel: rmSession, tokenizer: tok, prompts: PROMPTS.concat(PROMPTS.map((p) => p + '!')), responseLength: 8 });

  it('evaluatePolicy is deterministic for a seed, and a policy against itself has ~0 KL', async () => {
    before = await evaluatePolicy({ ...evalOpts(), policy: refSession, samplingSeed: 7 });
    const again = await evaluatePolicy({ ...evalOpts(), policy: refSession, samplingSeed: 7 });
    expect(again).toEqual(before);
    const other = await evaluatePolicy({ ...evalOpts(), policy: refSession, samplingSeed: 8 });
    expect(other.texts).not.toEqual(before.texts);
    expect(before.klToRef).toBeGreaterThanOrEqual(0);
    expect(before.klToRef).toBeLessThan(1e-3);
    expect(Math.abs(before.klToRefK1)).toBeLessThan(1e-3);
    expect(before.meanLength).toBeGreaterThan(0);
    expect(before.scores).toHaveLength(16);
  });

  it('raises the RM score over iterations, with every METHOD.md metric logged and KL ≥ 0', async () => {
    const cfg = parseTrainingConfig({
      ppo: { totalEpisodes: 320, rolloutBatchSize: 32, miniBatchSize: 16, responseLength: 8, learningRate: 3e-3, freezeEmbeddings: false, klCoef: 0.02, missingEosPenalty: 0, maxPromptLength: 16 },
    }).ppo;
    const seen: PpoIterationMetrics[] = [];
    const tensors = tf.memory().numTensors;
    const res = await runPpo({ policy, reference: refSession, rewardModel: rmSession, tokenizer: tok, prompts: PROMPTS, config: cfg, seed: 3, onIteration: (m) => seen.push(m) });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(res.iterations).toHaveLength(10);
    expect(seen).toEqual(res.iterations);
    expect(res.episodes).toBe(320);
    expect(res.stoppedBy).toBe('done');
    for (const m of res.iterations) {
      for (const [k, v] of Object.entries(metricRecord(m))) expect(Number.isFinite(v), k).toBe(true);
      expect(m.kl).toBeGreaterThanOrEqual(0);
      expect(m.clipFrac).toBeGreaterThanOrEqual(0);
      expect(m.entropy).toBeGreaterThan(0);
      expect(m.responseLength).toBeGreaterThan(0);
    }
    expect(res.iterations[0].kl).toBeLessThan(1e-2); // the first batch samples the reference itself
    const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
    const first = mean(res.iterations.slice(0, 2).map((m) => m.score));
    const last = mean(res.iterations.slice(-2).map((m) => m.score));
    expect(last).toBeGreaterThan(first + 0.5);
    expect(res.iterations.at(-1)!.kl).toBeGreaterThan(res.iterations[0].kl);
    expect(res.rolloutTokensPerS).toBeGreaterThan(0);
    expect(res.updateTokensPerS).toBeGreaterThan(0);

    // The gate's view agrees: a higher score than before, and a KL to the reference that is now positive.
    const trained = await exportPolicySession(policy);
    sessions.push(trained);
    const after = await evaluatePolicy({ ...evalOpts(), policy: trained, samplingSeed: 7 });
    expect(after.meanScore).toBeGreaterThan(before.meanScore);
    expect(after.klToRef).toBeGreaterThan(0.05);
  }, 60_000);

  it('klLossCoef: the exact KL term in the loss keeps the same updates closer to the reference', async () => {
    const run = async (klLossCoef: number) => {
      const cfg = parseTrainingConfig({
        ppo: { totalEpisodes: 192, rolloutBatchSize: 32, miniBatchSize: 16, responseLength: 8, learningRate: 3e-3, freezeEmbeddings: false, klCoef: 0.02, maxPromptLength: 16, klLossCoef },
      }).ppo;
      const p = new GPT(TINY, { heads: { value: true }, seed: 12 }); // the reference's own weights
      const res = await runPpo({ policy: p, reference: refSession, rewardModel: rmSession, tokenizer: tok, prompts: PROMPTS, config: cfg, seed: 9 });
      const s = await exportPolicySession(p);
      const ev = await evaluatePolicy({ ...evalOpts(), policy: s, samplingSeed: 7 });
      await s.release();
      p.dispose();
      for (const m of res.iterations) expect(m.klExact === undefined).toBe(klLossCoef === 0);
      if (klLossCoef > 0) {
        // Exact KL is ≥ 0 and grows as the policy moves (the first batch starts on the reference itself).
        for (const m of res.iterations) expect(m.klExact!).toBeGreaterThanOrEqual(0);
        expect(res.iterations.at(-1)!.klExact!).toBeGreaterThan(res.iterations[0].klExact!);
      }
      return { kl: ev.klToRef, score: res.iterations.at(-1)!.score };
    };
    const free = await run(0);
    const held = await run(2);
    expect(free.kl).toBeGreaterThan(0.05);
    expect(held.kl).toBeLessThan(free.kl * 0.7);
  }, 60_000);

  it('stopAtKl: makes no update from a batch whose KL to the reference is past the bound', async () => {
    const cfg = parseTrainingConfig({ ppo: { totalEpisodes: 320, rolloutBatchSize: 32, miniBatchSize: 16, responseLength: 8, learningRate: 3e-3, freezeEmbeddings: false, klCoef: 0.02, maxPromptLength: 16 } }).ppo;
    const p = new GPT(TINY, { heads: { value: true }, seed: 12 }); // the reference's own weights
    const res = await runPpo({ policy: p, reference: refSession, rewardModel: rmSession, tokenizer: tok, prompts: PROMPTS, config: cfg, seed: 3, stopAtKl: 0.1 });
    p.dispose();
    expect(res.stoppedBy).toBe('kl');
    expect(res.iterations.length).toBeGreaterThan(0);
    expect(res.iterations.length).toBeLessThan(10); // the unbounded run above takes all 10
    for (const m of res.iterations) expect(m.kl).toBeLessThanOrEqual(0.1);
  }, 60_000);

  it('stops at the deadline and rejects when aborted', async () => {
    const cfg = parseTrainingConfig({ ppo: { totalEpisodes: 64, rolloutBatchSize: 16, miniBatchSize: 8, responseLength: 4 } }).ppo;
    const p = policy.clone();
    const base = { policy: p, reference: refSession, rewardModel: rmSession, tokenizer: tok, prompts: PROMPTS, config: cfg, seed: 1 };
    const res = await runPpo({ ...base, deadlineMs: Date.now() - 1 });
    expect(res.stoppedBy).toBe('deadline');
    expect(res.iterations).toHaveLength(0);
    const ac = new AbortController();
    ac.abort();
    await expect(runPpo({ ...base, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    p.dispose();
  });
});
