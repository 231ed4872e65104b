// Supervised fine-tuning on demonstrations (InstructGPT's first stage; here a user's correction y' of an output
// is the demonstration (x, y')). Next-token cross-entropy on the response tokens and the closing EOS only: the
// prompt is context, not a target (TRL's completion-only loss), so the policy learns to answer like the
// correction rather than to reproduce prompts. Sequences are right-padded windows (positions start at 0, pads
// come after every real token, so causal attention never reads them) and pads carry weight 0.
import { PAD_ID } from '../../shared/tokenizer';
import { encodeExample, shuffled } from './batch';
import type { RunSftOptions, RunSftResult } from './index';
import { ModelOptimizer } from './optim';
import { abortError } from './reward-model';

export async function runSftImpl(o: RunSftOptions): Promise<RunSftResult> {
  const cfg = o.config;
  const demos = o.demos.slice(0, cfg.maxDemonstrations);
  if (cfg.epochs === 0 || demos.length === 0) return { loss: NaN, firstLoss: NaN, steps: 0, tokensPerS: 0 };
  const model = o.model;
  const opt = new ModelOptimizer(model, { groups: ['trunk'], freezeEmbeddings: cfg.freezeEmbeddings, maxGradNorm: 1.0 });
  const maxLen = model.config.contextLength + 1; // a window of T+1 tokens predicts T targets
  const encoded = demos.map((d) => encodeExample(o.tokenizer, d.prompt, d.response, maxLen, cfg.trainEos));
  const perEpoch = Math.ceil(encoded.length / cfg.batchSize);
  const totalSteps = perEpoch * cfg.epochs;
  let step = 0, firstLoss = NaN, tokens = 0;
  const lastEpoch: number[] = [];
  const t0 = performance.now();
  for (let epoch = 0; epoch < cfg.epochs; epoch++) {
    const order = shuffled(encoded, (o.seed * 7919 + epoch) >>> 0);
    for (let i = 0; i < order.length; i += cfg.batchSize) {
      if (o.signal?.aborted) throw abortError();
      const batch = order.slice(i, i + cfg.batchSize);
      const B = batch.length;
      const T = Math.max(...batch.map((e) => e.ids.length)) - 1;
      const seqs = new Int32Array(B * (T + 1)).fill(PAD_ID);
      const weights = new Float32Array(B * T);
      batch.forEach((e, b) => {
        seqs.set(e.ids, b * (T + 1));
        // target j is token j+1: count it when it belongs to the response (or its EOS)
        for (let j = Math.max(0, e.promptLen - 1); j < e.ids.length - 1; j++) weights[b * T + j] = 1;
        tokens += e.ids.length;
      });
      const res = opt.step(() => model.lmLoss(seqs, B, weights), cfg.learningRate);
      if (step === 0) firstLoss = res.loss;
      step++;
      if (epoch === cfg.epochs - 1) lastEpoch.push(res.loss);
      o.onProgress?.({ step, totalSteps, metrics: { 'loss/sft': res.loss, 'sft/grad_norm': res.gradNorm, 'sft/epoch': epoch } });
    }
  }
  const s = (performance.now() - t0) / 1000;
  return { loss: lastEpoch.reduce((a, x) => a + x, 0) / lastEpoch.length, firstLoss, steps: step, tokensPerS: tokens / s };
}
