// POST /v1/generations: text from the project's live policy (or a named version); n outputs per request
// (n = 2 offers a pairwise choice), each stored with its id, policy version and parameters for feedback.
// `stream: true` answers with server-sent events: `start` (ids, version, seed), `delta` per piece of text
// ({index, generation_id, text}; the deltas of an output concatenate to its final text), then `done` with the
// same body as the non-streamed response once the outputs are stored (or `error`).
import { createRoute } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import { GenerationRequest, GenerationResponse, parsePolicyRef } from '../../shared/serving-contract';
import { requireScope } from '../auth';
import type { RegisterRoutes } from '../context';
import { ApiError } from '../errors';
import { prepareGeneration, type PreparedGeneration, type StoredGeneration } from '../generation-service';
import { bearerSecurity, errorResponses } from './common';

const route = createRoute({
  method: 'post',
  path: '/v1/generations',
  tags: ['generations'],
  summary: 'Generate text from the live policy (n outputs; stream with SSE)',
  security: bearerSecurity,
  request: { body: { required: true, content: { 'application/json': { schema: GenerationRequest } } } },
  responses: {
    200: {
      description: 'The stored generations (or, with stream: true, text/event-stream: start, delta..., done)',
      content: { 'application/json': { schema: GenerationResponse }, 'text/event-stream': { schema: { type: 'string' } } },
    },
    ...errorResponses(400, 401, 403, 404, 413, 415, 429),
    503: { description: 'No live policy (`no_live_policy`) or it cannot be loaded (`policy_unavailable`)', content: errorResponses(503)[503].content },
  },
});

function responseBody(p: PreparedGeneration, out: StoredGeneration[]) {
  const completion = out.reduce((s, g) => s + g.completionTokens, 0);
  return {
    request_id: p.requestId,
    policy_version: p.policyVersion,
    seed: p.seed,
    prompt_tokens: p.promptTokens,
    generations: out.map((g) => ({ id: g.id, index: g.index, text: g.text, finish_reason: g.finishReason, completion_tokens: g.completionTokens })),
    usage: { prompt_tokens: p.promptTokens, completion_tokens: completion, total_tokens: p.promptTokens + completion },
  };
}

export const registerGenerationRoutes: RegisterRoutes = (app, ctx) => {
  app.openapi(route, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const body = c.req.valid('json');
    const prepared = await prepareGeneration(ctx, auth.projectId, {
      prompt: body.prompt,
      n: body.n,
      maxTokens: body.max_tokens,
      temperature: body.temperature,
      topP: body.top_p,
      topK: body.top_k,
      stop: body.stop === undefined ? [] : typeof body.stop === 'string' ? [body.stop] : body.stop,
      seed: body.seed,
      ignoreEos: body.ignore_eos,
      version: parsePolicyRef(body.policy_version),
    });
    if (!body.stream) {
      const out = await prepared.run({ signal: c.req.raw.signal });
      return c.json(responseBody(prepared, out), 200);
    }
    return streamSSE(c, async (stream) => {
      const ac = new AbortController();
      stream.onAbort(() => ac.abort());
      const send = (event: string, data: unknown) => stream.writeSSE({ event, data: JSON.stringify(data) }).catch(() => undefined);
      void send('start', {
        request_id: prepared.requestId,
        policy_version: prepared.policyVersion,
        seed: prepared.seed,
        prompt_tokens: prepared.promptTokens,
        generation_ids: prepared.ids,
      });
      try {
        const out = await prepared.run({
          signal: ac.signal,
          onDelta: (index, text) => void send('delta', { index, generation_id: prepared.ids[index], text }),
        });
        await send('done', responseBody(prepared, out));
      } catch (e) {
        if (ac.signal.aborted) return;
        console.error('streamed generation failed', e);
        await send('error', e instanceof ApiError ? e.toBody() : { error: { code: 'internal_error', message: 'generation failed' } });
      }
    }) as never;
  });
};
