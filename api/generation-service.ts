// One generation request from acceptance to storage, shared by POST /v1/generations and the OpenAI-compatible
// POST /v1/completions: lease the policy, check the prompt fits the context (400 naming `prompt`), run the
// shared sampling loop, store every output in `generations` (one row per output, one request id; group-committed
// with other requests' by api/generation-writer.ts), release.
// prepare() does every check that can fail with a 4xx/503 before a streamed response starts.
import { newId } from '../shared/ids';
import { randomSeed, type SequenceResult } from '../shared/sampling';
import type { AppContext } from './context';
import { ApiError } from './errors';
import { NoLivePolicyError, PolicyNotFoundError, PolicyUnavailableError, type PolicyLease, type PolicyRegistry } from './policy/registry';

export interface GenerationInput {
  prompt: string;
  n: number;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  stop: string[];
  seed?: number;
  ignoreEos?: boolean;
  version: number | 'live';
}

export interface StoredGeneration {
  id: string;
  index: number;
  text: string;
  finishReason: 'stop' | 'length';
  completionTokens: number;
}

export interface PreparedGeneration {
  requestId: string;
  policyVersion: number;
  seed: number;
  promptTokens: number;
  /** Generation ids, known before the outputs (streams carry them from the first event). */
  ids: string[];
  /** Generates, stores and returns the outputs; releases the policy lease in every case. */
  run(hooks?: { onDelta?: (index: number, delta: string) => void; onSequenceEnd?: (index: number, g: StoredGeneration) => void; signal?: AbortSignal }): Promise<StoredGeneration[]>;
  /** Releases the lease without running (the client went away before the stream started). */
  cancel(): void;
}

export function registryOf(ctx: AppContext): PolicyRegistry {
  const r = ctx.deps.policies;
  if (!r) throw new ApiError(503, 'no_live_policy', 'this API instance serves no policies (no policy runtime configured)');
  return r;
}

/** Registry errors as API errors (503 no_live_policy / policy_unavailable, 404 policy_not_found). */
export function toApiError(e: unknown): unknown {
  if (e instanceof NoLivePolicyError) return new ApiError(503, 'no_live_policy', e.message);
  if (e instanceof PolicyUnavailableError) return new ApiError(503, 'policy_unavailable', e.message);
  if (e instanceof PolicyNotFoundError) return new ApiError(404, 'policy_not_found', e.message);
  return e;
}

export async function prepareGeneration(ctx: AppContext, projectId: string, input: GenerationInput): Promise<PreparedGeneration> {
  let lease: PolicyLease;
  try {
    lease = await registryOf(ctx).acquire(projectId, input.version);
  } catch (e) {
    throw toApiError(e);
  }
  const { engine, config } = lease.model;
  const promptIds = engine.encodePrompt(input.prompt);
  if (promptIds.length > config.contextLength) {
    lease.release();
    throw new ApiError(400, 'validation_failed', `prompt: ${promptIds.length} tokens; the policy's context holds ${config.contextLength}`, [
      { path: 'prompt', code: 'too_big', message: `prompt is ${promptIds.length} tokens, over the context length ${config.contextLength}` },
    ]);
  }
  const seed = input.seed ?? randomSeed();
  const requestId = newId('req');
  const ids = Array.from({ length: input.n }, () => newId('gen'));
  let done = false;
  const finishLease = () => {
    if (!done) {
      done = true;
      lease.release();
    }
  };
  return {
    requestId,
    policyVersion: lease.version,
    seed,
    promptTokens: promptIds.length,
    ids,
    cancel: finishLease,
    async run(hooks = {}) {
      try {
        const toStored = (s: SequenceResult): StoredGeneration => ({
          id: ids[s.index],
          index: s.index,
          text: s.text,
          finishReason: s.finishReason,
          completionTokens: s.tokenIds.length,
        });
        const result = await engine.generate({
          promptIds,
          n: input.n,
          maxTokens: input.maxTokens,
          temperature: input.temperature,
          topP: input.topP,
          topK: input.topK,
          stop: input.stop,
          seed,
          ignoreEos: input.ignoreEos,
          signal: hooks.signal,
          onDelta: hooks.onDelta,
          onSequenceEnd: hooks.onSequenceEnd ? (s) => hooks.onSequenceEnd!(s.index, toStored(s)) : undefined,
        });
        finishLease();
        const out = result.sequences.map(toStored);
        const now = ctx.clock();
        const params = {
          temperature: input.temperature,
          top_p: input.topP,
          top_k: input.topK,
          max_tokens: input.maxTokens,
          stop: input.stop,
          seed,
          n: input.n,
          ...(input.ignoreEos ? { ignore_eos: true } : {}),
        };
        await ctx.generationWriter.write(
          out.map((g) => ({
            id: g.id,
            projectId,
            requestId,
            policyVersion: lease.version,
            prompt: input.prompt,
            output: g.text,
            params,
            promptTokens: promptIds.length,
            completionTokens: g.completionTokens,
            finishReason: g.finishReason,
            createdAt: now,
          })),
        );
        return out;
      } finally {
        finishLease();
      }
    },
  };
}
