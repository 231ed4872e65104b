// TF.js (worker/model/gpt.ts, on the backend the worker would select: wasm here) against onnxruntime-node
// running the graphs exported from the same weights: logits, values and rewards within 1e-4 on random and
// real (tokenized English) inputs, left-padded batches, greedy decoding with the ONNX KV cache against TF.js
// full recompute for 64 tokens, and the safetensors round trip of the TF.js weights.
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { POLICY_INPUTS, REWARD_OUTPUT } from '../../shared/policy-io';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import { generate as tfGenerate } from '../../worker/model/generate';
import { buildPolicyOnnx } from '../../worker/onnx/export-policy';
import { buildRewardOnnx } from '../../worker/onnx/export-reward';
import { createSession, generate, leftPad, runPolicy } from '../../worker/onnx/policy-session';
import { readSafetensors, writeSafetensors } from '../../worker/safetensors';
import { maxAbsDiff, randomIds, randomWeights, TINY_CONFIG as c } from './reference-gpt';

const TOL = 1e-4;
const TEXT = [
  'The Fulton County Grand Jury said Friday an investigation of recent primary elections produced no evidence.',
  'It is not news that Nathan Milstein is a wizard of the violin.',
  'Of all the problems, none is older than the question of how to feed a city.',
];
const meta = { tokenizerSha256: '0'.repeat(64), version: 'parity' };

let model: GPT;
let policy: ort.InferenceSession;
let reward: ort.InferenceSession;

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
  model = new GPT(c, { heads: { value: true, reward: true } });
  // Large random weights (not GPT-2's 0.02 init) so that logits are far from uniform and any layout
  // mismatch between the two implementations shows up well above 1e-4.
  model.loadWeights({ ...randomWeights(c, 5, ['value']), ...randomWeights(c, 6, ['score']) });
  const w = model.toNamedArrays();
  policy = await createSession(buildPolicyOnnx(w, c, meta));
  reward = await createSession(buildRewardOnnx(w, c, meta));
});

afterAll(() => model?.dispose());

const arange = (n: number) => Array.from({ length: n }, (_, j) => j);
const rowOf = (data: Float32Array, per: number, b: number) => data.subarray(b * per, (b + 1) * per);

function tfForward(ids: number[][], mask?: number[][]): { logits: Float32Array; values: Float32Array } {
  const out = model.forward(ids, mask);
  const r = { logits: out.logits.dataSync() as Float32Array, values: out.values!.dataSync() as Float32Array };
  tf.dispose([out.logits, out.values!, out.hidden]);
  return r;
}

describe('TF.js ↔ onnxruntime parity', () => {
  it("runs on the worker's backend (wasm here, tfjs-node where installed)", () => {
    expect(['wasm', 'tensorflow']).toContain(tf.getBackend());
  });

  for (const [label, ids] of [
    ['random ids', randomIds(1, [32, 32], c.vocabSize)],
    ['real text', TEXT.map((t) => Tokenizer.byteLevel().encode(t).slice(0, 40))],
  ] as const) {
    it(`logits and values agree within 1e-4 on ${label}`, async () => {
      const S = ids[0].length;
      const o = await runPolicy(policy, c, { ids: [...ids], mask: ids.map((r) => r.map(() => 1)), positions: ids.map(() => arange(S)) });
      const t = tfForward([...ids]);
      expect(maxAbsDiff(o.logits.data as Float32Array, t.logits)).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(o.values.data as Float32Array, t.values)).toBeLessThanOrEqual(TOL);
      expect(Math.max(...t.logits) - Math.min(...t.logits)).toBeGreaterThan(1);
    });
  }

  it('left-padded batches agree at every real position', async () => {
    const tok = Tokenizer.byteLevel();
    const prompts = TEXT.map((t, i) => tok.encode(t).slice(0, 10 + 9 * i));
    const { ids, mask, positions } = leftPad(prompts, tok.padId);
    const S = ids[0].length;
    const o = await runPolicy(policy, c, { ids, mask, positions });
    const t = tfForward(ids, mask);
    for (let b = 0; b < prompts.length; b++) {
      const pad = S - prompts[b].length;
      const onnxRow = rowOf(o.logits.data as Float32Array, S * c.vocabSize, b).subarray(pad * c.vocabSize);
      const tfRow = rowOf(t.logits, S * c.vocabSize, b).subarray(pad * c.vocabSize);
      expect(maxAbsDiff(onnxRow, tfRow)).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(rowOf(o.values.data as Float32Array, S, b).subarray(pad), rowOf(t.values, S, b).subarray(pad))).toBeLessThanOrEqual(TOL);
    }
  });

  it('greedy decoding: ONNX with the KV cache (left-padded batch) equals TF.js full recompute for 64 tokens', async () => {
    const tok = Tokenizer.byteLevel();
    const prompts = TEXT.map((t, i) => tok.encode(t).slice(0, 16 - 4 * i));
    const viaOnnx = await generate(policy, c, prompts, { maxNewTokens: 64, useCache: true, padId: tok.padId });
    for (let b = 0; b < prompts.length; b++) {
      const viaTf = tfGenerate(model, prompts[b], { maxNewTokens: 64, temperature: 0, topK: 0, seed: 0 });
      expect(viaOnnx[b]).toHaveLength(64);
      expect(viaOnnx[b]).toEqual(viaTf);
    }
    expect(new Set(viaOnnx.flat()).size).toBeGreaterThan(5); // not one token repeated: the comparison has teeth
  });

  it('reward head agrees within 1e-4, unpadded, left-padded and right-padded', async () => {
    const tok = Tokenizer.byteLevel();
    const rows = [...TEXT.map((t) => tok.encode(t).slice(0, 25)), ...randomIds(9, [7, 18], c.vocabSize)];
    const L = 25;
    const i64 = (m: number[][]) => new ort.Tensor('int64', BigInt64Array.from(m.flat().map(BigInt)), [m.length, m[0].length]);
    for (const side of ['left', 'right'] as const) {
      const pad = (r: number[], v: number) => (side === 'left' ? [...Array(L - r.length).fill(v), ...r] : [...r, ...Array(L - r.length).fill(v)]);
      const ids = rows.map((r) => pad(r, tok.padId));
      const mask = rows.map((r) => pad(r.map(() => 1), 0));
      const got = (await reward.run({ [POLICY_INPUTS.inputIds]: i64(ids), [POLICY_INPUTS.attentionMask]: i64(mask) }))[REWARD_OUTPUT].data as Float32Array;
      const want = model.reward(ids, mask);
      expect(maxAbsDiff(got, want.dataSync() as Float32Array)).toBeLessThanOrEqual(TOL);
      want.dispose();
    }
    // The last-token readout agrees as well.
    const lastGraph = await createSession(buildRewardOnnx(model.toNamedArrays(), c, { ...meta, pooling: 'last' }));
    {
      const ids = rows.map((r) => [...Array(L - r.length).fill(tok.padId), ...r]);
      const mask = rows.map((r) => [...Array(L - r.length).fill(0), ...r.map(() => 1)]);
      const got = (await lastGraph.run({ [POLICY_INPUTS.inputIds]: i64(ids), [POLICY_INPUTS.attentionMask]: i64(mask) }))[REWARD_OUTPUT].data as Float32Array;
      const want = model.reward(ids, mask, 'last');
      expect(maxAbsDiff(got, want.dataSync() as Float32Array)).toBeLessThanOrEqual(TOL);
      want.dispose();
    }
    await lastGraph.release();
    // And unpadded, one row at a time, equals the padded batch (pads never enter the mean).
    const solo = model.reward([rows[3]], [rows[3].map(() => 1)]);
    const one = (await reward.run({ [POLICY_INPUTS.inputIds]: i64([rows[3]]), [POLICY_INPUTS.attentionMask]: i64([rows[3].map(() => 1)]) }))[REWARD_OUTPUT].data as Float32Array;
    expect(Math.abs(one[0] - (solo.dataSync() as Float32Array)[0])).toBeLessThanOrEqual(TOL);
    solo.dispose();
  });

  it('TF.js weights round-trip through safetensors exactly', () => {
    const before = model.toNamedArrays();
    const bytes = writeSafetensors(before);
    const copy = new GPT(c, { heads: { value: true, reward: true }, seed: 99 });
    copy.loadWeights(readSafetensors(bytes).tensors);
    const after = copy.toNamedArrays();
    for (const [name, t] of Object.entries(before)) expect(after[name].data).toEqual(t.data);
    const ids = randomIds(3, [12], c.vocabSize);
    const a = model.forward(ids);
    const b = copy.forward(ids);
    expect(maxAbsDiff(a.logits.dataSync() as Float32Array, b.logits.dataSync() as Float32Array)).toBe(0);
    tf.dispose([a.logits, a.values!, a.hidden, b.logits, b.values!, b.hidden]);
    copy.dispose();
  });
});
