// Reward-model trainer smoke test (TRL's reward trainer test, on a tiny GPT): the loss is logged and falls,
// every trained parameter changes, frozen embeddings do not, and held-out accuracy on a learnable synthetic
// preference (more "good" words wins) beats chance.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import { mulberry32 } from '../../worker/rlhf/batch';
import { parseTrainingConfig } from '../../shared/training-config';
import { bradleyTerryLoss, evaluateRewardModel, fitRewardModel, type PairExample } from '../../worker/rlhf/reward-model';

const tok = Tokenizer.byteLevel();
const TINY: ModelConfig = { vocabSize: tok.vocabSize, contextLength: 48, nLayer: 2, nHead: 2, dModel: 32, mlpRatio: 4, layerNormEps: 1e-5 };

function syntheticPairs(n: number, seed: number): PairExample[] {
  const rand = mulberry32(seed);
  const words = ['good', 'bad', 'so', 'it'];
  const sentence = () => Array.from({ length: 4 }, () => words[Math.floor(rand() * words.length)]).join(' ');
  const goods = (s: string) => s.split(' ').filter((w) => w === 'good').length;
  const out: PairExample[] = [];
  while (out.length < n) {
    const a = sentence(), b = sentence();
    if (goods(a) === goods(b)) continue;
    const prompt = ['say:', 'tell:', 'now:'][Math.floor(rand() * 3)];
    out.push(goods(a) > goods(b) ? { prompt, chosen: a, rejected: b } : { prompt, chosen: b, rejected: a });
  }
  return out;
}

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
});

describe('reward model trainer', () => {
  it('the loss is −log σ(Δ − margin) + c·mean((r_w + r_l)²)', () => {
    const rw = tf.tensor1d([1, 0]), rl = tf.tensor1d([0, 2]);
    const got = bradleyTerryLoss(rw, rl, 0.5, 0.01).dataSync()[0];
    const ls = (x: number) => -Math.log(1 / (1 + Math.exp(-x)));
    const want = (ls(1 - 0.5) + ls(-2 - 0.5)) / 2 + 0.01 * ((1 + 0) ** 2 + (0 + 2) ** 2) / 2;
    expect(got).toBeCloseTo(want, 5);
  });

  it('logs a falling loss, changes every trained parameter and beats chance on held-out pairs', async () => {
    const model = new GPT(TINY, { heads: { value: false, reward: true }, seed: 3 });
    const before = new Map([...model.weights].map(([k, v]) => [k, v.dataSync().slice()]));
    const cfg = parseTrainingConfig({ rewardModel: { epochs: 4, batchSize: 16, learningRate: 2e-3, maxLength: 48 } }).rewardModel;
    const train = syntheticPairs(240, 1), heldout = syntheticPairs(80, 2);
    const losses: number[] = [];
    const names = new Set<string>();
    const pointwise = train.slice(0, 40).map((p) => ({ prompt: p.prompt, response: p.chosen, label: 1 as const }));
    const tensorsBefore = tf.memory().numTensors;
    await fitRewardModel(model, tok, { pairs: train, pointwise }, cfg, {
      onStep: ({ metrics }) => {
        losses.push(metrics['loss/rm']);
        Object.keys(metrics).forEach((k) => names.add(k));
      },
    });
    expect(tf.memory().numTensors).toBe(tensorsBefore); // flat tensor count: nothing leaks per step
    expect(losses.length).toBe(4 * Math.ceil(280 / 16));
    expect([...names]).toEqual(expect.arrayContaining(['loss/rm', 'rm/train_accuracy', 'rm/margin', 'rm/mean_reward']));
    const mean = (a: number[]) => a.reduce((s, x) => s + x, 0) / a.length;
    expect(mean(losses.slice(-8))).toBeLessThan(mean(losses.slice(0, 8)));
    for (const [name, v] of model.weights) {
      const changed = v.dataSync().some((x, i) => x !== before.get(name)![i]);
      expect(changed, name).toBe(!/^(wte|wpe)\./.test(name)); // embeddings frozen by default
    }
    const ev = evaluateRewardModel(model, tok, heldout, { maxLength: 48, appendEos: false, pooling: 'mean' });
    expect(ev.pairs).toBe(80);
    expect(ev.accuracy).toBeGreaterThan(0.7);
    model.dispose();
  });
});
