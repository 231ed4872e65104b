// SFT on demonstrations (corrections): on a tiny GPT the response loss falls, the demonstrated response becomes
// more likely under the policy, the value head and frozen embeddings stay as they were, and tensors do not leak.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ModelConfig } from '../../shared/model-config';
import { parseTrainingConfig } from '../../shared/training-config';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import { runSft } from '../../worker/rlhf';
import { editedTokens } from '../../worker/rlhf/sft';
import { encodeExample } from '../../worker/rlhf/batch';

const tok = Tokenizer.byteLevel();
const TINY: ModelConfig = { vocabSize: tok.vocabSize, contextLength: 48, nLayer: 2, nHead: 2, dModel: 32, mlpRatio: 4, layerNormEps: 1e-5 };

beforeAll(async () => {
  await ensureBackend({ log: () => {} });
});

/** Mean log-probability per response token (EOS included) of `response` after `prompt`. */
function responseLogProb(model: GPT, prompt: string, response: string): number {
  const e = encodeExample(tok, prompt, response, 48);
  return tf.tidy(() => {
    const lp = model.tokenLogProbs([e.ids]).logProbs.dataSync();
    let s = 0;
    for (let j = e.promptLen - 1; j < e.ids.length - 1; j++) s += lp[j];
    return s / (e.ids.length - e.promptLen);
  });
}

describe('runSft', () => {
  // A random-init model's tiny tied embeddings make logits nearly flat: with them frozen it barely learns in a
  // few steps, so this test trains them (a pretrained base is what freezeEmbeddings is for).
  it('lowers the loss on the demonstrations and raises their likelihood; the value head stays', async () => {
    const model = new GPT(TINY, { heads: { value: true }, seed: 5 });
    const demos = ['hi', 'hello', 'hey there', 'yo'].flatMap((p) => [{ prompt: p, response: 'good day to you' }, { prompt: `${p}!`, response: 'good day to you' }]);
    const before = responseLogProb(model, 'hi', 'good day to you');
    const vHead = model.weights.get('v_head.weight')!.dataSync().slice();
    const cfg = parseTrainingConfig({ sft: { epochs: 12, batchSize: 4, learningRate: 5e-3, freezeEmbeddings: false } }).sft;
    const losses: number[] = [];
    const tensors = tf.memory().numTensors;
    const res = await runSft({ model, tokenizer: tok, demos, config: cfg, seed: 1, onProgress: (p) => losses.push(p.metrics['loss/sft']) });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(res.steps).toBe(12 * 2);
    expect(losses.length).toBe(res.steps);
    expect(res.firstLoss).toBeGreaterThan(4); // ~ln 259 at init
    expect(res.loss).toBeLessThan(res.firstLoss * 0.6);
    const after = responseLogProb(model, 'hi', 'good day to you');
    expect(after).toBeGreaterThan(before + 1);
    expect(model.weights.get('v_head.weight')!.dataSync()).toEqual(vHead);
    model.dispose();
  });

  it('does nothing with no demonstrations or zero epochs', async () => {
    const model = new GPT(TINY, { seed: 5 });
    const cfg = parseTrainingConfig({}).sft;
    expect((await runSft({ model, tokenizer: tok, demos: [], config: cfg, seed: 1 })).steps).toBe(0);
    expect((await runSft({ model, tokenizer: tok, demos: [{ prompt: 'a', response: 'b' }], config: { ...cfg, epochs: 0 }, seed: 1 })).steps).toBe(0);
    model.dispose();
  });

  it('rejects with an AbortError when aborted', async () => {
    const model = new GPT(TINY, { seed: 5 });
    const ac = new AbortController();
    ac.abort();
    const cfg = parseTrainingConfig({}).sft;
    await expect(runSft({ model, tokenizer: tok, demos: [{ prompt: 'a', response: 'b' }], config: cfg, seed: 1, signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
    model.dispose();
  });

  it('editOnly trains only what the correction changed, and skips corrections that changed nothing', async () => {
    expect(editedTokens([1, 2, 9, 3], [1, 2, 3])).toEqual([false, false, true, false]);
    expect(editedTokens([4, 5], [1, 2, 3])).toEqual([true, true]);
    expect(editedTokens([1, 2, 3], [1, 2, 3])).toEqual([false, false, false]);
    const cfg = parseTrainingConfig({ sft: { epochs: 12, batchSize: 4, learningRate: 5e-3, freezeEmbeddings: false, editOnly: true } }).sft;
    const unchanged = new GPT(TINY, { seed: 5 });
    expect((await runSft({ model: unchanged, tokenizer: tok, demos: [{ prompt: 'a', response: 'same', original: 'same' }], config: cfg, seed: 1 })).steps).toBe(0);
    unchanged.dispose();
    // The edit inserts "fine ": its likelihood rises; the untouched tail "day" is no target, so it rises far less.
    const model = new GPT(TINY, { seed: 5 });
    const demos = ['hi', 'hello', 'hey there', 'yo'].map((p) => ({ prompt: p, response: 'a fine day', original: 'a day' }));
    const lp = (prompt: string, response: string) => responseLogProb(model, prompt, response);
    const [editBefore, tailBefore] = [lp('hi a', ' fine'), lp('hi a fine ', 'day')];
    await runSft({ model, tokenizer: tok, demos, config: cfg, seed: 1 });
    const editGain = lp('hi a', ' fine') - editBefore;
    const tailGain = lp('hi a fine ', 'day') - tailBefore;
    expect(editGain).toBeGreaterThan(1);
    expect(editGain).toBeGreaterThan(2 * tailGain);
    model.dispose();
  });
});
