// policy.onnx against the plain-TypeScript reference: logits and values on random inputs, the KV cache
// step by step, greedy decoding with and without the cache, left padding, and the I/O contract.
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPrefloopMetadata } from '../../shared/onnx-metadata';
import { POLICY_INPUTS, POLICY_OUTPUTS, pastKeyName, pastValueName, presentKeyName, presentValueName } from '../../shared/policy-io';
import { buildPolicyOnnx } from '../../worker/onnx/export-policy';
import { createSession, generate, leftPad, runPolicy } from '../../worker/onnx/policy-session';
import { maxAbsDiff, randomIds, randomWeights, referenceForward, TINY_CONFIG as c } from './reference-gpt';

const TOL = 1e-4;
const weights = randomWeights(c, 1234, ['value']);
let bytes: Uint8Array;
let session: ort.InferenceSession;

beforeAll(async () => {
  bytes = buildPolicyOnnx(weights, c, { tokenizerSha256: 'ab'.repeat(32), version: 'test-1' });
  session = await createSession(bytes);
});

const arange = (n: number, from = 0) => Array.from({ length: n }, (_, j) => j + from);
const rowOf = (t: ort.Tensor, b: number) => {
  const per = (t.dims as number[]).slice(1).reduce((x, y) => x * y, 1);
  return (t.data as Float32Array).subarray(b * per, (b + 1) * per);
};

describe('policy.onnx', () => {
  it('follows the I/O contract of shared/policy-io.ts and carries the metadata', () => {
    const pastNames = arange(c.nLayer).flatMap((i) => [pastKeyName(i), pastValueName(i)]);
    const presentNames = arange(c.nLayer).flatMap((i) => [presentKeyName(i), presentValueName(i)]);
    expect([...session.inputNames].sort()).toEqual([POLICY_INPUTS.inputIds, POLICY_INPUTS.attentionMask, POLICY_INPUTS.positionIds, ...pastNames].sort());
    expect([...session.outputNames].sort()).toEqual([POLICY_OUTPUTS.logits, POLICY_OUTPUTS.values, ...presentNames].sort());
    const meta = readPrefloopMetadata(bytes);
    expect(meta).toEqual({ kind: 'policy', config: c, tokenizerSha256: 'ab'.repeat(32), version: 'test-1' });
  });

  it('prefill (past length 0) logits and values match the reference on random inputs', async () => {
    const ids = randomIds(7, [24, 24, 24], c.vocabSize);
    const mask = ids.map((r) => r.map(() => 1));
    const positions = ids.map((r) => arange(r.length));
    const out = await runPolicy(session, c, { ids, mask, positions });
    expect(out.logits.dims).toEqual([3, 24, c.vocabSize]);
    expect(out.values.dims).toEqual([3, 24]);
    expect(out.present[0].dims).toEqual([3, c.nHead, 24, c.dModel / c.nHead]);
    const ref = referenceForward(weights, c, ids, mask, positions);
    for (let b = 0; b < 3; b++) {
      expect(maxAbsDiff(rowOf(out.logits, b), ref.logits[b])).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(rowOf(out.values, b), ref.values![b])).toBeLessThanOrEqual(TOL);
    }
    // The test would catch a broken graph: logits are far from constant.
    expect(Math.max(...ref.logits[0]) - Math.min(...ref.logits[0])).toBeGreaterThan(1);
  });

  it('each KV-cached decode step matches the reference on the whole prefix', async () => {
    const [seq] = randomIds(11, [40], c.vocabSize);
    const prompt = seq.slice(0, 8);
    let step = await runPolicy(session, c, { ids: [prompt], mask: [prompt.map(() => 1)], positions: [arange(8)] });
    for (let t = 8; t < seq.length; t++) {
      step = await runPolicy(session, c, { ids: [[seq[t]]], mask: [arange(t + 1).map(() => 1)], positions: [[t]], past: step.present });
      expect(step.logits.dims).toEqual([1, 1, c.vocabSize]);
      expect(step.present[0].dims[2]).toBe(t + 1);
      const ref = referenceForward(weights, c, [seq.slice(0, t + 1)], [arange(t + 1).map(() => 1)], [arange(t + 1)]);
      expect(maxAbsDiff(step.logits.data as Float32Array, ref.logits[0].subarray(t * c.vocabSize))).toBeLessThanOrEqual(TOL);
      expect(Math.abs((step.values.data as Float32Array)[0] - ref.values![0][t])).toBeLessThanOrEqual(TOL);
    }
  });

  it('greedy decoding with the KV cache equals recompute, token for token, for 64 tokens', async () => {
    const prompts = randomIds(21, [16, 5, 11], c.vocabSize);
    const cached = await generate(session, c, prompts, { maxNewTokens: 64, useCache: true });
    const recomputed = await generate(session, c, prompts, { maxNewTokens: 64, useCache: false });
    expect(cached.map((r) => r.length)).toEqual([64, 64, 64]);
    expect(cached).toEqual(recomputed);
    // Not a degenerate model that repeats one token forever.
    expect(new Set(cached[0]).size).toBeGreaterThan(5);
  });

  it('left-padded batches give each row the same logits and tokens as the row alone', async () => {
    const prompts = randomIds(33, [5, 12, 9], c.vocabSize);
    const { ids, mask, positions } = leftPad(prompts, 0);
    const batched = await runPolicy(session, c, { ids, mask, positions });
    for (let b = 0; b < prompts.length; b++) {
      const n = prompts[b].length;
      const alone = await runPolicy(session, c, { ids: [prompts[b]], mask: [prompts[b].map(() => 1)], positions: [arange(n)] });
      const padded = rowOf(batched.logits, b).subarray((12 - n) * c.vocabSize); // the real positions only
      expect(maxAbsDiff(padded, alone.logits.data as Float32Array)).toBeLessThanOrEqual(TOL);
    }
    // Pads must not leak into later decode steps either (pad id 7 here, 0 alone): compare 24 greedy tokens.
    const together = await generate(session, c, prompts, { maxNewTokens: 24, useCache: true, padId: 7 });
    for (let b = 0; b < prompts.length; b++) {
      expect(together[b]).toEqual((await generate(session, c, [prompts[b]], { maxNewTokens: 24, useCache: true }))[0]);
    }
  });

  it('masked keys in the past are ignored, whatever values the cache holds there', async () => {
    // Row 0 has 3 pad positions; overwrite the first 3 cached keys/values of both rows with garbage: row 0
    // (pads there) must not change at all, row 1 (real tokens there) must.
    const prompt = randomIds(44, [6], c.vocabSize)[0];
    const { ids, mask, positions } = leftPad([prompt, [...prompt, 1, 2, 3]], 0);
    const pre = await runPolicy(session, c, { ids, mask, positions });
    const garbage = pre.present.map((t) => {
      const d = (t.data as Float32Array).slice();
      const [B, H, T, hd] = t.dims as number[];
      for (let r = 0; r < B; r++) {
        for (let h = 0; h < H; h++) for (let j = 0; j < 3; j++) for (let e = 0; e < hd; e++) d[((r * H + h) * T + j) * hd + e] = 1e3 * Math.sin(h + j + e);
      }
      return new ort.Tensor('float32', d, t.dims as number[]);
    });
    const next = { ids: [[5], [5]], mask: mask.map((m) => [...m, 1]), positions: [[6], [9]] };
    const a = await runPolicy(session, c, { ...next, past: pre.present });
    const b = await runPolicy(session, c, { ...next, past: garbage });
    expect(maxAbsDiff(rowOf(a.logits, 0), rowOf(b.logits, 0))).toBe(0);
    expect(maxAbsDiff(rowOf(a.logits, 1), rowOf(b.logits, 1))).toBeGreaterThan(0.01); // row 1's keys are real
  });
});
