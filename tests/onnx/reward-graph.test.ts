// reward.onnx against the plain-TypeScript reference, and its padding invariance: a row scores the same
// alone, left-padded or right-padded in a batch.
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { readPrefloopMetadata } from '../../shared/onnx-metadata';
import { POLICY_INPUTS, REWARD_OUTPUT, REWARD_TOKENS_OUTPUT } from '../../shared/policy-io';
import { buildRewardOnnx } from '../../worker/onnx/export-reward';
import { createSession } from '../../worker/onnx/policy-session';
import { randomIds, randomWeights, referenceRewards, TINY_CONFIG as c } from './reference-gpt';

const TOL = 1e-4;
const weights = randomWeights(c, 99, ['score']);
let bytes: Uint8Array;
let session: ort.InferenceSession;

beforeAll(async () => {
  bytes = buildRewardOnnx(weights, c, { tokenizerSha256: 'cd'.repeat(32), version: 'rm-1' });
  session = await createSession(bytes);
});

const int64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);

async function score(ids: number[][], mask: number[][]): Promise<number[]> {
  const out = await session.run({ [POLICY_INPUTS.inputIds]: int64(ids), [POLICY_INPUTS.attentionMask]: int64(mask) });
  expect(out[REWARD_OUTPUT].dims).toEqual([ids.length]);
  return Array.from(out[REWARD_OUTPUT].data as Float32Array);
}

describe('reward.onnx', () => {
  it('has the contract names and metadata', () => {
    expect([...session.inputNames].sort()).toEqual([POLICY_INPUTS.attentionMask, POLICY_INPUTS.inputIds]);
    expect([...session.outputNames]).toEqual([REWARD_OUTPUT, REWARD_TOKENS_OUTPUT]);
    expect(readPrefloopMetadata(bytes)).toEqual({ kind: 'reward', config: c, tokenizerSha256: 'cd'.repeat(32), version: 'rm-1' });
  });

  it('matches the reference reward (mean of the per-token scores) on unpadded rows', async () => {
    const rows = randomIds(5, [30, 30, 30, 30], c.vocabSize);
    const got = await score(rows, rows.map((r) => r.map(() => 1)));
    const want = referenceRewards(weights, c, rows);
    for (let b = 0; b < rows.length; b++) expect(Math.abs(got[b] - want[b])).toBeLessThanOrEqual(TOL);
    // token_rewards: each token's share, summing to the row's reward
    const out = await session.run({ [POLICY_INPUTS.inputIds]: int64(rows), [POLICY_INPUTS.attentionMask]: int64(rows.map((r) => r.map(() => 1))) });
    const terms = out[REWARD_TOKENS_OUTPUT].data as Float32Array;
    expect(out[REWARD_TOKENS_OUTPUT].dims).toEqual([rows.length, 30]);
    for (let b = 0; b < rows.length; b++) expect(Math.abs(terms.slice(b * 30, (b + 1) * 30).reduce((a, x) => a + x, 0) - want[b])).toBeLessThanOrEqual(TOL);
    expect(Math.max(...want) - Math.min(...want)).toBeGreaterThan(0.01); // rows really differ
  });

  it('with pooling "last": the score at the last real token, however the rows are padded', async () => {
    const last = await createSession(buildRewardOnnx(weights, c, { tokenizerSha256: 'cd'.repeat(32), version: 'rm-1', pooling: 'last' }));
    const rows = randomIds(8, [4, 17, 9, 1], c.vocabSize);
    const want = referenceRewards(weights, c, rows, 'last');
    const L = 17;
    for (const side of ['left', 'right'] as const) {
      const pad = (r: number[], v: number) => (side === 'left' ? [...Array(L - r.length).fill(v), ...r] : [...r, ...Array(L - r.length).fill(v)]);
      const out = await last.run({ [POLICY_INPUTS.inputIds]: int64(rows.map((r) => pad(r, 3))), [POLICY_INPUTS.attentionMask]: int64(rows.map((r) => pad(r.map(() => 1), 0))) });
      const got = out[REWARD_OUTPUT].data as Float32Array;
      const terms = out[REWARD_TOKENS_OUTPUT].data as Float32Array;
      for (let b = 0; b < rows.length; b++) {
        expect(Math.abs(got[b] - want[b])).toBeLessThanOrEqual(TOL);
        const row = terms.slice(b * L, (b + 1) * L);
        expect(row.filter((x) => x !== 0).length).toBeLessThanOrEqual(1); // all of it on one token
        expect(Math.abs(row.reduce((a, x) => a + x, 0) - want[b])).toBeLessThanOrEqual(TOL);
      }
    }
    expect(Math.abs(want[0] - referenceRewards(weights, c, rows)[0])).toBeGreaterThan(1e-3); // really another readout
    await last.release();
  });

  it('gives each row the same reward alone, left-padded and right-padded', async () => {
    const rows = randomIds(6, [4, 17, 9, 1], c.vocabSize);
    const want = referenceRewards(weights, c, rows);
    const L = 17;
    const left = await score(
      rows.map((r) => [...Array(L - r.length).fill(3), ...r]),
      rows.map((r) => [...Array(L - r.length).fill(0), ...r.map(() => 1)]),
    );
    const right = await score(
      rows.map((r) => [...r, ...Array(L - r.length).fill(5)]),
      rows.map((r) => [...r.map(() => 1), ...Array(L - r.length).fill(0)]),
    );
    for (let b = 0; b < rows.length; b++) {
      const alone = (await score([rows[b]], [rows[b].map(() => 1)]))[0];
      expect(Math.abs(alone - want[b])).toBeLessThanOrEqual(TOL);
      expect(Math.abs(left[b] - want[b])).toBeLessThanOrEqual(TOL);
      expect(Math.abs(right[b] - want[b])).toBeLessThanOrEqual(TOL);
    }
  });
});
