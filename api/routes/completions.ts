// OpenAI-compatible text completions, the convention vLLM, llama.cpp and Ollama servers follow, so the
// official clients work against prefloop: POST /v1/completions and GET /v1/models.
// - `model` names a policy version ("v3" or "3") or "live"; GET /v1/models lists "live" and every version.
// - prompt, n, max_tokens, temperature, top_p, stop, seed, stream (SSE chunks, then `data: [DONE]`,
//   usage chunk with stream_options.include_usage) behave as OpenAI documents them.
// - Extension: every choice carries `generation_id`, the stored generation to send feedback on. In a stream,
//   every chunk's choice carries it.
// - Unsupported OpenAI fields (logprobs, echo, best_of, penalties) are accepted only at their neutral values.
import { createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { CompletionRequest, CompletionResponse, Model, ModelList, parsePolicyRef } from '../../shared/serving-contract';
import { requireScope } from '../auth';
import type { RegisterRoutes } from '../context';
import { ApiError } from '../errors';
import { prepareGeneration, registryOf } from '../generation-service';
import { bearerSecurity, errorResponses } from './common';

const unavailable = { 503: { description: 'No live policy (`no_live_policy`)', content: errorResponses(503)[503].content } };

const completions = createRoute({
  method: 'post',
  path: '/v1/completions',
  tags: ['openai'],
  summary: 'OpenAI-compatible completion (choices carry `generation_id`)',
  security: bearerSecurity,
  request: { body: { required: true, content: { 'application/json': { schema: CompletionRequest } } } },
  responses: {
    200: { description: 'Completion (or SSE chunks ending with `data: [DONE]`)', content: { 'application/json': { schema: CompletionResponse } } },
    ...errorResponses(400, 401, 403, 404, 413, 415, 429),
    ...unavailable,
  },
});

const models = createRoute({
  method: 'get',
  path: '/v1/models',
  tags: ['openai'],
  summary: 'Policies as OpenAI models: "live" and "v<version>"',
  security: bearerSecurity,
  responses: { 200: { description: 'Models', content: { 'application/json': { schema: ModelList } } }, ...errorResponses(401, 403, 429) },
});

const oneModel = createRoute({
  method: 'get',
  path: '/v1/models/{model}',
  tags: ['openai'],
  summary: 'One policy as an OpenAI model',
  security: bearerSecurity,
  request: { params: z.object({ model: z.string().openapi({ param: { name: 'model', in: 'path' }, example: 'v1' }) }) },
  responses: { 200: { description: 'Model', content: { 'application/json': { schema: Model } } }, ...errorResponses(401, 403, 404, 429) },
});

export const registerCompletionRoutes: RegisterRoutes = (app, ctx) => {
  app.openapi(completions, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const body = c.req.valid('json');
    const prompt = typeof body.prompt === 'string' ? body.prompt : body.prompt[0];
    const prepared = await prepareGeneration(ctx, auth.projectId, {
      prompt,
      n: body.n,
      maxTokens: body.max_tokens,
      temperature: body.temperature,
      topP: body.top_p,
      topK: 0,
      stop: body.stop === undefined ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
      seed: body.seed,
      version: parsePolicyRef(body.model),
    });
    const id = `cmpl-${prepared.requestId.replace(/^req_/, '')}`;
    const created = Math.floor(ctx.clock() / 1000);
    const model = `v${prepared.policyVersion}`;
    const fingerprint = `prefloop-v${prepared.policyVersion}`;
    if (!body.stream) {
      const out = await prepared.run({ signal: c.req.raw.signal });
      const completion = out.reduce((s, g) => s + g.completionTokens, 0);
      return c.json(
        {
          id,
          object: 'text_completion' as const,
          created,
          model,
          system_fingerprint: fingerprint,
          choices: out.map((g) => ({ index: g.index, text: g.text, logprobs: null, finish_reason: g.finishReason, generation_id: g.id })),
          usage: { prompt_tokens: prepared.promptTokens, completion_tokens: completion, total_tokens: prepared.promptTokens + completion },
        },
        200,
      );
    }
    return streamSSE(c, async (stream) => {
      const ac = new AbortController();
      stream.onAbort(() => ac.abort());
      const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
        stream.writeSSE({ data: JSON.stringify({ id, object: 'text_completion', created, model, system_fingerprint: fingerprint, choices, ...extra }) }).catch(() => undefined);
      try {
        const out = await prepared.run({
          signal: ac.signal,
          onDelta: (index, text) => void chunk([{ index, text, logprobs: null, finish_reason: null, generation_id: prepared.ids[index] }]),
          onSequenceEnd: (index, g) => void chunk([{ index, text: '', logprobs: null, finish_reason: g.finishReason, generation_id: g.id }]),
        });
        if (body.stream_options?.include_usage) {
          const completion = out.reduce((s, g) => s + g.completionTokens, 0);
          await chunk([], { usage: { prompt_tokens: prepared.promptTokens, completion_tokens: completion, total_tokens: prepared.promptTokens + completion } });
        }
        await stream.writeSSE({ data: '[DONE]' }).catch(() => undefined);
      } catch (e) {
        if (ac.signal.aborted) return;
        console.error('streamed completion failed', e);
        const err = e instanceof ApiError ? e.toBody() : { error: { code: 'internal_error', message: 'completion failed' } };
        await stream.writeSSE({ data: JSON.stringify(err) }).catch(() => undefined);
      }
    }) as never;
  });

  app.openapi(models, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const rows = await registryOf(ctx).list(auth.projectId);
    const liveRow = rows.find((r) => r.status === 'live');
    const data = [
      ...(liveRow ? [{ id: 'live', object: 'model' as const, created: Math.floor((liveRow.activatedAt ?? liveRow.createdAt) / 1000), owned_by: 'prefloop' }] : []),
      ...rows.filter((r) => r.status !== 'rejected').map((r) => ({ id: `v${r.version}`, object: 'model' as const, created: Math.floor(r.createdAt / 1000), owned_by: 'prefloop' })),
    ];
    return c.json({ object: 'list' as const, data }, 200);
  });

  app.openapi(oneModel, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const { model } = c.req.valid('param');
    const rows = await registryOf(ctx).list(auth.projectId);
    const ref = /^(live|v?\d{1,9})$/.test(model) ? parsePolicyRef(model) : null;
    const row = ref === 'live' ? rows.find((r) => r.status === 'live') : rows.find((r) => r.version === ref && r.status !== 'rejected');
    if (!row) throw new ApiError(404, 'model_not_found', `no model ${model}`);
    return c.json({ id: model, object: 'model' as const, created: Math.floor(row.createdAt / 1000), owned_by: 'prefloop' }, 200);
  });
};
