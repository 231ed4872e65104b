import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../backend';
import { initialValues, paramSpecs } from '../model/gpt';
import { layoutOf } from './flat';
import { buildStream, evalWindows, Rng, sampleStarts } from './lm-data';
import { cosineLr } from './optimizer';
import { DataParallelTrainer } from './parallel';

const TINY: ModelConfig = { vocabSize: 259, contextLength: 32, nLayer: 2, nHead: 2, dModel: 32, mlpRatio: 4, layerNormEps: 1e-5 };
const HEADS = { value: false, reward: false };
const tok = Tokenizer.byteLevel();
const text = 'the cat sat on the mat. the dog sat on the log. '.repeat(40);
const stream = buildStream([{ text }, { text: text.toUpperCase() }], tok);

function init(seed: number): Float32Array {
  const specs = paramSpecs(TINY, HEADS);
  const layout = layoutOf(specs);
  const out = new Float32Array(layout.size);
  specs.forEach((s, i) => out.set(initialValues(s, TINY, seed), layout.entries[i].offset));
  return out;
}

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
});

describe('data-parallel LM trainer', () => {
  it('smoke: the loss falls and every parameter changes (one replica in this thread)', async () => {
    const p0 = init(1);
    const t = await DataParallelTrainer.create({ config: TINY, heads: HEADS, tokens: stream.tokens, threads: 0, initialParams: p0, adamw: { weightDecay: 0 } });
    const rng = new Rng(7);
    const before = await t.evalNats(stream.tokens, 16, 600);
    const losses: number[] = [];
    for (let s = 0; s < 40; s++) losses.push((await t.step(sampleStarts(rng, stream.tokens.length, 8, 16), 16, cosineLr(s, { maxLr: 1e-2, minLr: 1e-3, warmupSteps: 5, totalSteps: 40 }))).loss);
    const after = await t.evalNats(stream.tokens, 16, 600);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses.slice(-5).reduce((a, b) => a + b) / 5).toBeLessThan(0.5 * losses[0]);
    expect(after.nats / after.count).toBeLessThan(0.5 * (before.nats / before.count));
    for (const e of t.layout.entries) {
      let changed = 0;
      for (let i = e.offset; i < e.offset + e.size; i++) if (t.params[i] !== p0[i]) changed++;
      expect(changed, `${e.name} unchanged`).toBeGreaterThan(0);
    }
    await t.close();
  });

  it('two worker threads compute the same steps as one replica', async () => {
    const mk = (threads: number) => DataParallelTrainer.create({ config: TINY, heads: HEADS, tokens: stream.tokens, threads, initialParams: init(2) });
    const [one, two] = await Promise.all([mk(0), mk(2)]);
    const rngs = [new Rng(3), new Rng(3)];
    for (let s = 0; s < 3; s++) {
      const [a, b] = await Promise.all([one, two].map((t, i) => t.step(sampleStarts(rngs[i], stream.tokens.length, 8, 16), 16, 3e-3)));
      expect(b.loss).toBeCloseTo(a.loss, 4);
    }
    let maxDiff = 0;
    for (let i = 0; i < one.params.length; i++) maxDiff = Math.max(maxDiff, Math.abs(one.params[i] - two.params[i]));
    expect(maxDiff).toBeLessThan(1e-4);
    const [ea, eb] = [await one.evalNats(stream.tokens, 16), await two.evalNats(stream.tokens, 16)];
    expect(eb.count).toBe(ea.count);
    expect(eb.nats).toBeCloseTo(ea.nats, 0);
    await Promise.all([one.close(), two.close()]);
  });

  it('held-out windows predict every token after the first exactly once', () => {
    for (const [len, T] of [[1000, 64], [65, 64], [300, 16], [17, 16], [1001, 7]]) {
      const counts = new Int32Array(len);
      for (const w of evalWindows(len, T)) for (let j = Math.max(0, w.countFrom); j < T; j++) if (w.start + j + 1 < len) counts[w.start + j + 1]++;
      expect(counts[0]).toBe(0);
      expect(Array.from(counts.subarray(1)).every((c) => c === 1), `len ${len} T ${T}`).toBe(true);
      expect(evalWindows(len, T).every((w) => w.start + T + 1 <= len)).toBe(true);
    }
  });
});
