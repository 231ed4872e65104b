// The gate's numbers for one policy (METHOD.md "Incremental, gated updates"): one sampled response per
// held-out prompt, its RM score, and its KL to the reference in nats per response. Prompt i samples with seed
// samplingSeed + i, so candidate and live are compared on the same random numbers (common random numbers
// make the score difference far less noisy than two independent samples would).
import type { EvaluatePolicyOptions, EvaluatePolicyResult } from './index';
import { klPenalty } from './ppo-math';
import { abortError } from './reward-model';
import { sampleEpisodes } from './rollout';
import { responseLogProbs, rewardScores } from './scoring';

export async function evaluatePolicyImpl(o: EvaluatePolicyOptions): Promise<EvaluatePolicyResult> {
  const temperature = o.temperature ?? 1;
  const config = o.config;
  const episodes = await sampleEpisodes(o.policy, config, o.tokenizer, o.prompts, {
    responseLength: o.responseLength,
    temperature,
    maxPromptLength: o.maxPromptLength ?? 64,
    seed: o.samplingSeed,
    signal: o.signal,
  });
  if (o.signal?.aborted) throw abortError();
  const refLp = await responseLogProbs(o.reference, config, episodes, temperature);
  const raw = await rewardScores(o.rewardModel, episodes);
  const penalty = o.missingEosPenalty ?? 0;
  let k3 = 0, k1 = 0, len = 0, eos = 0, score = 0;
  const scores = episodes.map((e, i) => {
    for (let t = 0; t < e.responseIds.length; t++) {
      k3 += klPenalty(e.logprobs[t], refLp[i][t], 'k3');
      k1 += e.logprobs[t] - refLp[i][t];
    }
    len += e.responseIds.length;
    eos += e.endedWithEos ? 1 : 0;
    const s = raw[i] - (e.endedWithEos ? 0 : penalty);
    score += s;
    return s;
  });
  const n = Math.max(1, episodes.length);
  return { meanScore: score / n, klToRef: k3 / n, klToRefK1: k1 / n, meanLength: len / n, eosRate: eos / n, scores, texts: episodes.map((e) => e.text) };
}
