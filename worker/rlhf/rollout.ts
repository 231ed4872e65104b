// Rollouts: one response per prompt from a policy.onnx session through the serving sampler (shared/sampling),
// all prompts submitted at once so the engine decodes them as one batch. The sampler returns per-token
// log-probabilities (at the sampling temperature) and value-head outputs, which PPO uses as its rollout
// ("old") log-probs and values: no second forward pass.
import type { ModelConfig } from '../../shared/model-config';
import { GenerationEngine, type PolicySession } from '../../shared/sampling';
import { BOS_ID, type Tokenizer } from '../../shared/tokenizer';
import type { OnnxSession } from './scoring';

export interface Episode {
  prompt: string;
  /** BOS + prompt (cut to its last tokens), as fed to the sampler. */
  promptIds: number[];
  /** Sampled tokens, EOS included when sampled. */
  responseIds: number[];
  text: string;
  /** log π_rollout(token), per response token. */
  logprobs: Float32Array;
  /** V(prefix) at the position that produced each token. */
  values: Float32Array;
  endedWithEos: boolean;
}

/** BOS + the prompt's last tokens, so that prompt + response fits the context. */
export function promptIdsFor(tok: Tokenizer, prompt: string, maxPromptLength: number, responseLength: number, config: ModelConfig): number[] {
  const keep = Math.max(1, Math.min(maxPromptLength, config.contextLength - responseLength) - 1);
  const ids = tok.encode(prompt);
  return [BOS_ID, ...ids.slice(Math.max(0, ids.length - keep))];
}

export interface SampleOptions {
  responseLength: number;
  temperature: number;
  maxPromptLength: number;
  /** Prompt i samples with seed `seed + i`. */
  seed: number;
  signal?: AbortSignal;
}

/** One response per prompt. */
export async function sampleEpisodes(session: OnnxSession, config: ModelConfig, tok: Tokenizer, prompts: string[], o: SampleOptions): Promise<Episode[]> {
  // The sampler's session type also allows an output-name list; onnxruntime's run accepts one at runtime.
  const engine = new GenerationEngine(session as PolicySession, { config, tokenizer: tok, maxBatchRows: Math.max(1, prompts.length) });
  const results = await Promise.all(
    prompts.map((prompt, i) => {
      const promptIds = promptIdsFor(tok, prompt, o.maxPromptLength, o.responseLength, config);
      return engine.generate({ promptIds, maxTokens: o.responseLength, temperature: o.temperature, seed: (o.seed + i) >>> 0, signal: o.signal }).then((r) => ({ prompt, promptIds, r }));
    }),
  );
  return results.map(({ prompt, promptIds, r }) => {
    const s = r.sequences[0];
    return {
      prompt,
      promptIds,
      responseIds: s.tokenIds,
      text: s.text,
      logprobs: Float32Array.from(s.logprobs),
      values: s.values.length === s.tokenIds.length ? Float32Array.from(s.values) : new Float32Array(s.tokenIds.length),
      endedWithEos: s.tokenIds[s.tokenIds.length - 1] === tok.eosId,
    };
  });
}
