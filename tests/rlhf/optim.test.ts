// The RLHF optimizer's freezing: with `unfrozenLayers` only the top blocks, ln_f and the heads train; the lower
// blocks and (with freezeEmbeddings) wte/wpe keep their values through a step.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import { ModelOptimizer } from '../../worker/rlhf/optim';

const tok = Tokenizer.byteLevel();
const TINY: ModelConfig = { vocabSize: tok.vocabSize, contextLength: 16, nLayer: 3, nHead: 2, dModel: 16, mlpRatio: 4, layerNormEps: 1e-5 };

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
});

function snapshot(model: GPT): Map<string, Float32Array> {
  return new Map(model.specs.map((s) => [s.name, (model.weights.get(s.name)!.dataSync() as Float32Array).slice()]));
}

describe('ModelOptimizer freezing', () => {
  it.each([
    [-1, [0, 1, 2]],
    [1, [2]],
    [0, []],
  ])('unfrozenLayers %i trains blocks %j, ln_f and the value head only', (unfrozenLayers, trainedBlocks) => {
    const model = new GPT(TINY, { heads: { value: true }, seed: 3 });
    const opt = new ModelOptimizer(model, { groups: ['trunk', 'value'], freezeEmbeddings: true, unfrozenLayers, maxGradNorm: 1 });
    const before = snapshot(model);
    const ids = [[1, 2, 3, 4, 5, 6]];
    // A loss that reaches every parameter: the log-probabilities plus the values.
    opt.step(() => {
      const out = model.tokenLogProbs(ids);
      return tf.add(tf.neg(tf.mean(out.logProbs)), tf.mean(out.values!)) as tf.Scalar;
    }, 1e-2);
    const after = snapshot(model);
    const moved = (name: string) => before.get(name)!.some((v, i) => v !== after.get(name)![i]);
    for (const s of model.specs) {
      const block = /^h\.(\d+)\./.exec(s.name);
      const shouldTrain = block ? trainedBlocks.includes(Number(block[1])) : !['wte.weight', 'wpe.weight'].includes(s.name);
      expect([s.name, moved(s.name)]).toEqual([s.name, shouldTrain]);
    }
    model.dispose();
  });
});
