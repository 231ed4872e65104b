// The HTTP contract of prefloop's serving API (generations, policies, OpenAI-compatible completions) as zod
// schemas: the API validates requests with them and /openapi.json is generated from them. snake_case on the wire.
import { z } from '@hono/zod-openapi';

/** Most sequences one request may ask for (n = 2 is how an app offers a pairwise choice). */
export const MAX_N = 8;
export const MAX_STOP = 4;

const stop = z
  .union([z.string().min(1).max(64), z.array(z.string().min(1).max(64)).max(MAX_STOP)])
  .optional()
  .openapi({ description: `Up to ${MAX_STOP} strings; generation ends before the first occurrence (excluded from the text).` });

/** A policy version by number (`3`), `v`-prefixed name (`"v3"`), or `"live"`. */
export const PolicyRef = z.union([z.literal('live'), z.string().regex(/^v?\d{1,9}$/, 'a version like "v3", "3" or "live"'), z.number().int().min(1)]);

export function parsePolicyRef(ref: string | number | undefined): number | 'live' {
  if (ref === undefined || ref === 'live') return 'live';
  return typeof ref === 'number' ? ref : Number(ref.replace(/^v/, ''));
}

const sampling = {
  max_tokens: z.number().int().min(1).max(4096).default(16).openapi({ description: 'Most tokens per output; the context length may end an output earlier (finish_reason `length`).' }),
  temperature: z.number().min(0).max(2).default(1).openapi({ description: '0 = greedy.' }),
  top_p: z.number().gt(0).max(1).default(1),
  seed: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER).optional().openapi({ description: 'Same seed + same policy = same text. Random when absent (returned).' }),
  n: z.number().int().min(1).max(MAX_N).default(1),
  stream: z.boolean().default(false),
  stop,
};

export const GenerationRequest = z
  .object({
    prompt: z.string().max(100_000),
    ...sampling,
    top_k: z.number().int().min(0).max(100_000).default(0).openapi({ description: '0 = off.' }),
    policy_version: PolicyRef.optional().openapi({ description: 'Serve from this version instead of the live one.' }),
    ignore_eos: z.boolean().default(false).openapi({ description: 'Keep generating past the end-of-sequence token (benchmarks; vLLM `ignore_eos`).' }),
  })
  .strict()
  .openapi('GenerationRequest');
export type GenerationRequest = z.infer<typeof GenerationRequest>;

export const Generation = z
  .object({
    id: z.string().openapi({ example: 'gen_4Vb0kq1v8xw1N3yQ2pLs' }),
    index: z.number().int(),
    text: z.string(),
    finish_reason: z.enum(['stop', 'length']),
    completion_tokens: z.number().int(),
  })
  .openapi('Generation');

export const GenerationResponse = z
  .object({
    request_id: z.string(),
    policy_version: z.number().int(),
    seed: z.number().int(),
    prompt_tokens: z.number().int(),
    generations: z.array(Generation),
    usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() }),
  })
  .openapi('GenerationResponse');

export const Policy = z
  .object({
    version: z.number().int(),
    parent_version: z.number().int().nullable(),
    artifact_uri: z.string(),
    sha256: z.string(),
    status: z.enum(['candidate', 'live', 'rejected', 'retired']),
    metrics: z.record(z.string(), z.union([z.number(), z.string(), z.null()])),
    training_run_id: z.string().nullable(),
    created_at: z.number().int(),
    activated_at: z.number().int().nullable(),
  })
  .openapi('Policy');

export const PolicyList = z.object({ policies: z.array(Policy), serving_version: z.number().int().nullable() }).openapi('PolicyList');
export const LivePolicy = z
  .object({ policy: Policy, serving_version: z.number().int().nullable().openapi({ description: 'The version this API process serves now (it may lag the database by one poll interval).' }) })
  .openapi('LivePolicy');
export const ActivateResponse = z.object({ policy: Policy, previous_version: z.number().int().nullable() }).openapi('ActivateResponse');

// OpenAI-compatible completions (https://platform.openai.com/docs/api-reference/completions). Fields prefloop
// does not implement are accepted only at their neutral values.
export const CompletionRequest = z
  .object({
    model: PolicyRef.openapi({ description: 'A policy version ("v3" or "3") or "live".' }),
    prompt: z.union([z.string().max(100_000), z.array(z.string().max(100_000)).length(1)]),
    ...sampling,
    stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
    logprobs: z.null().optional(),
    echo: z.literal(false).optional(),
    best_of: z.literal(1).optional(),
    presence_penalty: z.literal(0).optional(),
    frequency_penalty: z.literal(0).optional(),
    user: z.string().optional(),
  })
  .openapi('CompletionRequest');
export type CompletionRequest = z.infer<typeof CompletionRequest>;

export const CompletionChoice = z
  .object({
    index: z.number().int(),
    text: z.string(),
    logprobs: z.null(),
    finish_reason: z.enum(['stop', 'length']).nullable(),
    generation_id: z.string().openapi({ description: 'prefloop extension: the stored generation, for POST /v1/feedback.' }),
  })
  .openapi('CompletionChoice');

export const CompletionResponse = z
  .object({
    id: z.string(),
    object: z.literal('text_completion'),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(CompletionChoice),
    usage: z.object({ prompt_tokens: z.number().int(), completion_tokens: z.number().int(), total_tokens: z.number().int() }).optional(),
    system_fingerprint: z.string().optional(),
  })
  .openapi('CompletionResponse');

export const Model = z.object({ id: z.string(), object: z.literal('model'), created: z.number().int(), owned_by: z.string() }).openapi('Model');
export const ModelList = z.object({ object: z.literal('list'), data: z.array(Model) }).openapi('ModelList');
