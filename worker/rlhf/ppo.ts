// PPO for a language model with a KL penalty to a frozen reference (Stiennon et al. 2020; Ouyang et al. 2022),
// read top to bottom in the order of CleanRL's ppo.py, with TRL's LM-specific steps numbered:
//   for each rollout batch:
//     0. export the current policy to an in-memory ONNX session (the graph serving uses)
//     1. rollout: sample one response per prompt with the serving sampler (rollout log-probs + values come back)
//     2. score: reference log-probs of the sampled tokens, RM score of prompt + response
//     3. penalise a missing EOS: score − missingEosPenalty when the response hit the length limit
//     4. per-token reward = −β·KL_t (k3 or clamped k1), + the RM score: at the last token, or (denseReward)
//        spread as the RM's own per-token terms (its score is a mean over tokens), so that credit lands on
//        the tokens that earned it; the prompt's share and the EOS penalty stay at the last token
//     5. advantages by GAE (γ, λ), whitened over the batch; returns = advantages + values
//     6. ppoEpochs × shuffled minibatches: ratio, approx KL, clip fraction → clipped policy loss + clipped
//        value loss (− entropy bonus) → global-norm clip → AdamW step
//     7. stop the epochs early when approx KL to the rollout policy passes targetApproxKl
//     8. adaptive KL controller update, log
// Gradient steps run on TF.js (wasm); rollouts and scoring on onnxruntime-node (or a TF.js GPT for scoring).
import * as tf from '@tensorflow/tfjs';
import type { PpoConfig } from '../../shared/training-config';
import { PAD_ID } from '../../shared/tokenizer';
import type { GPT } from '../model/gpt';
import { shuffled } from './batch';
import type { PpoIterationMetrics, RunPpoOptions, RunPpoResult } from './index';
import { ModelOptimizer } from './optim';
import { AdaptiveKlController, computeGae, klPenalty, whiten } from './ppo-math';
import { abortError } from './reward-model';
import { sampleEpisodes, type Episode } from './rollout';
import { responseLogProbs, rewardsWithTerms } from './scoring';
import { exportPolicySession } from './sessions';

function mean(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / Math.max(1, x.length);
}
function std(x: ArrayLike<number>): number {
  const m = mean(x);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - m) ** 2;
  return Math.sqrt(s / Math.max(1, x.length));
}

/** What the update needs per episode after scoring. */
interface Scored extends Episode {
  advantages: Float64Array;
  returns: Float64Array;
  /** With klLossCoef: the reference's log-distribution at each response position, [L × V]. */
  refDist?: Float32Array;
}

export async function runPpoImpl(o: RunPpoOptions): Promise<RunPpoResult> {
  const cfg = o.config;
  const policy = o.policy;
  if (!policy.heads.value) throw new Error('runPpo: the policy needs a value head');
  if (o.prompts.length === 0) throw new Error('runPpo: no prompts');
  const opt = new ModelOptimizer(policy, { groups: ['trunk', 'value'], freezeEmbeddings: cfg.freezeEmbeddings, unfrozenLayers: cfg.unfrozenLayers, maxGradNorm: cfg.maxGradNorm });
  const kl = new AdaptiveKlController(cfg.klCoef, cfg.klTarget, cfg.klHorizon, cfg.adaptiveKl);
  const iterations: PpoIterationMetrics[] = [];
  const nBatches = Math.ceil(cfg.totalEpisodes / cfg.rolloutBatchSize);
  const t0 = performance.now();
  let episodes = 0;
  let stoppedBy: RunPpoResult['stoppedBy'] = 'done';
  let promptOrder = shuffled(o.prompts, o.seed);
  let cursor = 0;
  let rolloutTokens = 0, rolloutS = 0, updateTokens = 0, updateS = 0;

  for (let it = 1; it <= nBatches; it++) {
    if (o.signal?.aborted) throw abortError();
    const last = iterations[iterations.length - 1];
    const expectedS = last ? last.exportS + last.rolloutS + last.scoreS + last.updateS : 0;
    if (o.deadlineMs !== undefined && Date.now() + expectedS * 1000 > o.deadlineMs) {
      stoppedBy = 'deadline';
      break;
    }
    const n = Math.min(cfg.rolloutBatchSize, cfg.totalEpisodes - episodes);
    const prompts: string[] = [];
    while (prompts.length < n) {
      if (cursor === promptOrder.length) (promptOrder = shuffled(o.prompts, o.seed + it * 7919)), (cursor = 0);
      prompts.push(promptOrder[cursor++]);
    }

    // 0. export the current policy
    let t = performance.now();
    const session = await exportPolicySession(policy);
    const exportS = (performance.now() - t) / 1000;

    // 1. rollout
    t = performance.now();
    const eps = await sampleEpisodes(session, policy.config, o.tokenizer, prompts, {
      responseLength: cfg.responseLength,
      temperature: cfg.temperature,
      maxPromptLength: cfg.maxPromptLength,
      seed: (o.seed * 1_000_003 + it * 10_007) >>> 0,
      signal: o.signal,
    });
    await session.release();
    const iterRolloutS = (performance.now() - t) / 1000;
    const sampledTokens = eps.reduce((s, e) => s + e.responseIds.length, 0);

    // 2. score: reference log-probs and RM scores
    t = performance.now();
    const refDist: Float32Array[] | undefined = cfg.klLossCoef > 0 ? [] : undefined;
    const refLp = await responseLogProbs(o.reference, policy.config, eps, cfg.temperature, refDist);
    const { scores: rawScores, responseTerms } = await rewardsWithTerms(o.rewardModel, eps);
    const scoreS = (performance.now() - t) / 1000;

    // 3–5. rewards, GAE, whitening
    const beta = kl.beta;
    // RM scores in units of their spread over this batch (normalize_reward in OpenRLHF): what the RM says
    // about these responses then weighs the same against β·KL whatever scale it learned.
    const scale = cfg.normalizeReward ? 1 / Math.max(1e-6, std(rawScores)) : 1;
    const centre = cfg.normalizeReward ? mean(rawScores) : 0;
    let sumScore = 0, sumPenalized = 0, sumKl = 0, sumLen = 0, sumEos = 0;
    const scored: Scored[] = eps.map((e, i) => {
      const L = e.responseIds.length;
      const eosPenalty = e.endedWithEos ? 0 : cfg.missingEosPenalty; // 3.
      const penalized = (rawScores[i] - centre) * scale - eosPenalty; // what the update sees
      const rewards = new Float64Array(L);
      let klSum = 0;
      for (let j = 0; j < L; j++) {
        const k = klPenalty(e.logprobs[j], refLp[i][j], cfg.klEstimator);
        klSum += k;
        rewards[j] = -beta * k; // 4.
      }
      if (cfg.denseReward) {
        let spread = 0;
        for (let j = 0; j < L; j++) (rewards[j] += responseTerms[i][j] * scale), (spread += responseTerms[i][j] * scale);
        rewards[L - 1] += penalized - spread;
      } else rewards[L - 1] += penalized;
      const { advantages, returns } = computeGae(rewards, e.values, cfg.gamma, cfg.gaeLambda); // 5.
      sumScore += rawScores[i];
      sumPenalized += rawScores[i] - eosPenalty; // logged on the RM's own scale
      sumKl += klSum;
      sumLen += L;
      sumEos += e.endedWithEos ? 1 : 0;
      return { ...e, advantages, returns, refDist: refDist?.[i] };
    });
    if (o.stopAtKl !== undefined && sumKl / n > o.stopAtKl) {
      stoppedBy = 'kl';
      break;
    }
    if (cfg.whitenAdvantages) whiten(scored.map((s) => s.advantages));

    // 6–7. PPO epochs over shuffled minibatches
    t = performance.now();
    const acc = { clip: 0, approxKl: 0, pg: 0, vf: 0, vclip: 0, steps: 0, entropy: 0, entSteps: 0, klExact: 0, tokens: 0 };
    let epochsRun = 0;
    for (let epoch = 0; epoch < cfg.ppoEpochs; epoch++) {
      const order = shuffled(scored, (o.seed + it * 131 + epoch) >>> 0);
      let epochKl = 0, epochSteps = 0;
      for (let m = 0; m < order.length; m += cfg.miniBatchSize) {
        if (o.signal?.aborted) throw abortError();
        const mb = order.slice(m, m + cfg.miniBatchSize);
        const r = ppoStep(policy, opt, mb, cfg, epoch === 0);
        acc.clip += r.clipFrac;
        acc.approxKl += r.approxKl;
        acc.pg += r.policyLoss;
        acc.vf += r.valueLoss;
        acc.vclip += r.valueClipFrac;
        acc.steps++;
        acc.tokens += r.tokens;
        if (epoch === 0) (acc.entropy += r.entropy), (acc.klExact += r.klToRef), acc.entSteps++;
        epochKl += r.approxKl;
        epochSteps++;
      }
      epochsRun++;
      if (epochKl / epochSteps > cfg.targetApproxKl) break; // 7.
    }
    const iterUpdateS = (performance.now() - t) / 1000;

    // 8. KL controller, log
    episodes += n;
    const meanKl = sumKl / n;
    kl.update(meanKl, n);
    rolloutTokens += sampledTokens;
    rolloutS += iterRolloutS;
    updateTokens += acc.tokens;
    updateS += iterUpdateS;
    const metrics: PpoIterationMetrics = {
      iteration: it,
      episodes,
      score: sumScore / n,
      penalizedScore: sumPenalized / n,
      kl: meanKl,
      rlhfReward: sumPenalized / n - beta * meanKl,
      entropy: acc.entropy / Math.max(1, acc.entSteps),
      ...(cfg.klLossCoef > 0 ? { klExact: (acc.klExact / Math.max(1, acc.entSteps)) * (sumLen / n) } : {}),
      clipFrac: acc.clip / acc.steps,
      approxKl: acc.approxKl / acc.steps,
      policyLoss: acc.pg / acc.steps,
      valueLoss: acc.vf / acc.steps,
      valueClipFrac: acc.vclip / acc.steps,
      responseLength: sumLen / n,
      eosRate: sumEos / n,
      beta,
      epochs: epochsRun,
      exportS,
      rolloutS: iterRolloutS,
      scoreS,
      updateS: iterUpdateS,
      rolloutTokensPerS: sampledTokens / iterRolloutS,
      updateTokensPerS: acc.tokens / iterUpdateS,
    };
    iterations.push(metrics);
    o.onIteration?.(metrics);
  }
  return {
    iterations,
    episodes,
    finalBeta: kl.beta,
    stoppedBy,
    rolloutTokensPerS: rolloutS > 0 ? rolloutTokens / rolloutS : 0,
    updateTokensPerS: updateS > 0 ? updateTokens / updateS : 0,
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---------------------------------------------------------------------------------------------------------
// One minibatch step

interface StepMetrics {
  policyLoss: number;
  valueLoss: number;
  clipFrac: number;
  valueClipFrac: number;
  approxKl: number;
  entropy: number;
  /** With klLossCoef: mean exact per-token KL to the reference over the minibatch's tokens (NaN otherwise). */
  klToRef: number;
  /** Sequence tokens (prompt + response) through forward and backward. */
  tokens: number;
}

/**
 * Layout: prompts left-padded to a common end column P, responses right-padded to R, so the positions that
 * predict response tokens are the contiguous columns P−1 .. P+R−2 of every row: one slice, no gather (whose
 * gradient the wasm backend lacks).
 */
function ppoStep(policy: GPT, opt: ModelOptimizer, mb: Scored[], cfg: PpoConfig, withEntropy: boolean): StepMetrics {
  const B = mb.length;
  const P = Math.max(...mb.map((e) => e.promptIds.length));
  const R = Math.max(...mb.map((e) => e.responseIds.length));
  const S = P + R;
  const ids = new Int32Array(B * S).fill(PAD_ID), mask = new Int32Array(B * S);
  const M = B * R;
  const target = new Int32Array(M), w = new Float32Array(M), oldLp = new Float32Array(M), oldV = new Float32Array(M);
  const adv = new Float32Array(M), ret = new Float32Array(M);
  let tokens = 0;
  mb.forEach((e, b) => {
    const pad = P - e.promptIds.length;
    ids.set(e.promptIds, b * S + pad);
    ids.set(e.responseIds, b * S + P);
    mask.fill(1, b * S + pad, b * S + P + e.responseIds.length);
    tokens += e.promptIds.length + e.responseIds.length;
    for (let j = 0; j < e.responseIds.length; j++) {
      const k = b * R + j;
      target[k] = e.responseIds[j];
      w[k] = 1;
      oldLp[k] = e.logprobs[j];
      oldV[k] = e.values[j];
      adv[k] = e.advantages[j];
      ret[k] = e.returns[j];
    }
  });
  const inputs: tf.Tensor[] = [];
  const keep = <T extends tf.Tensor>(t: T) => (inputs.push(t), t);
  try {
    const tTarget = keep(tf.tensor1d(target, 'int32')), tW = keep(tf.tensor1d(w)), tOldLp = keep(tf.tensor1d(oldLp)), tOldV = keep(tf.tensor1d(oldV));
    const tAdv = keep(tf.tensor1d(adv)), tRet = keep(tf.tensor1d(ret));
    let tRefDist: tf.Tensor2D | null = null;
    if (cfg.klLossCoef > 0) {
      const V = policy.config.vocabSize;
      const d = new Float32Array(M * V); // padding rows stay 0: their weight is 0
      mb.forEach((e, b) => d.set(e.refDist!, b * R * V));
      tRefDist = keep(tf.tensor2d(d, [M, V]));
    }
    const nTok = keep(tf.sum(tW));
    const wmean = (x: tf.Tensor) => tf.div(tf.sum(tf.mul(x, tW)), nTok) as tf.Scalar;
    const wte = policy.weights.get('wte.weight')!;
    const res = opt.step((aux) => {
      const out = policy.forward({ data: ids, batch: B }, { data: mask, batch: B });
      // Hidden states at the predicting positions → logits through the tied head (only M rows, not B·S).
      const h = out.hidden.slice([0, P - 1, 0], [B, R, policy.config.dModel]).reshape([M, policy.config.dModel]) as tf.Tensor2D;
      let logits = tiedHead(h, wte as unknown as tf.Tensor2D, cfg.freezeEmbeddings);
      if (cfg.temperature !== 1) logits = tf.div(logits, cfg.temperature);
      const newLp = selectedLogProbs(logits, tTarget); // [M]
      const values = out.values!.slice([0, P - 1], [B, R]).reshape([M]); // [M]

      // ratio, approx KL (k3), clip fraction
      const logRatio = tf.sub(newLp, tOldLp);
      const ratio = tf.exp(logRatio);
      aux.approxKl = wmean(tf.sub(tf.sub(ratio, 1), logRatio));
      aux.clipFrac = wmean(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), cfg.clipRange), 'float32'));
      // clipped surrogate
      const pg1 = tf.mul(tf.neg(tAdv), ratio);
      const pg2 = tf.mul(tf.neg(tAdv), tf.clipByValue(ratio, 1 - cfg.clipRange, 1 + cfg.clipRange));
      const pgLoss = wmean(tf.maximum(pg1, pg2));
      // clipped value loss
      const vClipped = tf.add(tOldV, tf.clipByValue(tf.sub(values, tOldV), -cfg.clipRangeValue, cfg.clipRangeValue));
      const vf1 = tf.square(tf.sub(values, tRet)), vf2 = tf.square(tf.sub(vClipped, tRet));
      const vfLoss = tf.mul(0.5, wmean(tf.maximum(vf1, vf2))) as tf.Scalar;
      aux.valueClipFrac = wmean(tf.cast(tf.greater(vf2, vf1), 'float32'));
      aux.policyLoss = pgLoss;
      aux.valueLoss = vfLoss;
      let loss = tf.add(pgLoss, tf.mul(cfg.vfCoef, vfLoss)) as tf.Scalar;
      const lp = cfg.entCoef > 0 || withEntropy || tRefDist ? tf.logSoftmax(logits) : null;
      if (lp && (cfg.entCoef > 0 || withEntropy)) {
        const ent = wmean(tf.neg(tf.sum(tf.mul(tf.exp(lp), lp), -1)));
        aux.entropy = ent;
        if (cfg.entCoef > 0) loss = tf.sub(loss, tf.mul(cfg.entCoef, ent)) as tf.Scalar;
      }
      if (lp && tRefDist) {
        const klRef = wmean(tf.sum(tf.mul(tf.exp(lp), tf.sub(lp, tRefDist)), -1));
        aux.klToRef = klRef;
        loss = tf.add(loss, tf.mul(cfg.klLossCoef, klRef)) as tf.Scalar;
      }
      return loss;
    }, cfg.learningRate);
    return {
    policyLoss: res.aux.policyLoss,
    valueLoss: res.aux.valueLoss,
    clipFrac: res.aux.clipFrac,
    valueClipFrac: res.aux.valueClipFrac,
    approxKl: res.aux.approxKl,
    entropy: res.aux.entropy ?? NaN,
    klToRef: res.aux.klToRef ?? NaN,
    tokens,
  };
  } finally {
    tf.dispose(inputs);
  }
}

/** Tied LM head on M rows: h @ wteᵀ, with hand-written gradients that never use transposed matMul flags
 *  (13–40× slower on wasm). With frozen embeddings wte is a constant: no [V, C] gradient is computed. */
function tiedHead(h: tf.Tensor2D, wte: tf.Tensor2D, frozen: boolean): tf.Tensor2D {
  if (frozen) {
    return tf.customGrad((hi, save) => {
      const x = hi as tf.Tensor2D;
      (save as tf.GradSaveFunc)([wte]);
      return { value: tf.matMul(x, wte.transpose()), gradFunc: (dy, [w]) => [tf.matMul(dy as tf.Tensor2D, w as tf.Tensor2D)] };
    })(h) as tf.Tensor2D;
  }
  return tf.customGrad((hi, wi, save) => {
    const [x, w] = [hi as tf.Tensor2D, wi as tf.Tensor2D];
    (save as tf.GradSaveFunc)([x, w]);
    return {
      value: tf.matMul(x, w.transpose()),
      gradFunc: (dy, [x, w]) => [tf.matMul(dy as tf.Tensor2D, w as tf.Tensor2D), tf.matMul((x as tf.Tensor2D).transpose(), dy as tf.Tensor2D).transpose()],
    };
  })(h, wte) as tf.Tensor2D;
}

/** log softmax(logits)[target] per row, fused so the gradient is the cheap dy·(onehot − softmax).   [M, V] → [M] */
export function selectedLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.customGrad((li, save) => {
    const l = li as tf.Tensor2D;
    const oneHot = tf.cast(tf.oneHot(targets, l.shape[1]), 'float32');
    const lse = tf.logSumExp(l, -1); // [M]
    const p = tf.exp(tf.sub(l, lse.expandDims(1)));
    (save as tf.GradSaveFunc)([p, oneHot]);
    return {
      value: tf.sub(tf.sum(tf.mul(l, oneHot), -1), lse) as tf.Tensor1D,
      gradFunc: (dy, [p, oneHot]) => [tf.mul(tf.sub(oneHot, p), (dy as tf.Tensor1D).expandDims(1))],
    };
  })(logits) as tf.Tensor1D;
}
