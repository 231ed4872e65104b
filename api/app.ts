// The portable prefloop API: createApp(deps) builds one OpenAPIHono app from injected dependencies (database,
// clock, settings, optional queue / artifact store / policy runtime). It imports no runtime-specific module, so
// the Node entry (api/server.ts) and a workerd entry can both serve it.
//
// Request pipeline for /v1/*: auth (401) → per-key rate limit (429) → JSON content type on writes (415) → body
// size limit (413) → route validation (400) → handler. Every failure is {"error": {"code","message","details"?}}.
// Route modules live in api/routes/, one per resource; adding one is a single `register...(app, ctx)` line below.
import { OpenAPIHono } from '@hono/zod-openapi';
import { Scalar } from '@scalar/hono-api-reference';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { type App, type AppContext, type AppEnv, createAppContext } from './context';
import type { AppDeps } from './deps';
import { ApiError, validationError } from './errors';
import { registerDatasetRoutes } from './routes/datasets';
import { registerFeedbackRoutes } from './routes/feedback';
import { registerHealthRoutes } from './routes/health';
import { registerStatsRoutes } from './routes/stats';
import { registerCompletionRoutes } from './routes/completions';
import { registerGenerationRoutes } from './routes/generations';
import { registerPolicyRoutes } from './routes/policies';
import { registerTrainingRunRoutes } from './routes/training-runs';

export type { AppDeps } from './deps';

export function createApp(deps: AppDeps): App & { ctx: AppContext } {
  const ctx = createAppContext(deps);
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error);
    },
  });

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json(err.toBody(), err.status, err.headers);
    if (err instanceof HTTPException && err.status < 500) {
      // Hono's own 4xx (e.g. a body that is not valid JSON) in our error shape.
      const code = err.status === 400 ? 'invalid_json' : `http_${err.status}`;
      return c.json({ error: { code, message: err.message || 'bad request' } }, err.status);
    }
    console.error('unhandled error', err);
    return c.json({ error: { code: 'internal_error', message: 'internal server error' } }, 500);
  });
  app.notFound((c) => c.json({ error: { code: 'not_found', message: `no route for ${c.req.method} ${c.req.path}` } }, 404));

  // Unauthenticated routes first, before any /v1 middleware.
  registerHealthRoutes(app, ctx);

  app.use('/v1/*', async (c, next) => {
    const auth = await ctx.auth.authenticate(c.req.header('authorization'));
    const verdict = ctx.limiter.take(auth.keyId, ctx.clock());
    if (!verdict.ok) {
      throw new ApiError(429, 'rate_limited', `rate limit exceeded; retry in ${verdict.retryAfterS} s`, undefined, { 'Retry-After': String(verdict.retryAfterS) });
    }
    c.set('auth', auth);
    if (c.req.method === 'POST' || c.req.method === 'PUT' || c.req.method === 'PATCH') {
      const type = c.req.header('content-type') ?? '';
      if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
        throw new ApiError(415, 'unsupported_media_type', 'send the body as application/json');
      }
    }
    await next();
  });
  // Body limit. A declared Content-Length is checked from the header alone: touching `c.req.raw.body` (as Hono's
  // bodyLimit does first) makes @hono/node-server build a full web Request + stream per request, which measured as
  // the single largest cost of a small POST. Chunked bodies go through Hono's counting bodyLimit.
  const tooLarge = (c: Context) =>
    c.json({ error: { code: 'payload_too_large', message: `request body over ${ctx.settings.bodyLimitBytes} bytes` } }, 413);
  const countingLimit = bodyLimit({ maxSize: ctx.settings.bodyLimitBytes, onError: tooLarge });
  app.use('/v1/*', async (c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    const declared = c.req.header('content-length');
    if (declared !== undefined && c.req.header('transfer-encoding') === undefined) {
      return Number(declared) > ctx.settings.bodyLimitBytes ? tooLarge(c) : next();
    }
    return countingLimit(c, next);
  });

  registerFeedbackRoutes(app, ctx);
  registerDatasetRoutes(app, ctx);
  registerStatsRoutes(app, ctx);
  registerGenerationRoutes(app, ctx);
  registerPolicyRoutes(app, ctx);
  registerCompletionRoutes(app, ctx);
  registerTrainingRunRoutes(app, ctx);

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'An API key (`pfk_...`) with the `ingest` or `admin` scope.',
  });
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'prefloop API',
      version: '0.1.0',
      description: 'Records user feedback on generations and exports preference datasets. Errors: {"error": {"code", "message", "details"?}}.',
    },
  });
  app.get('/docs', Scalar({ url: '/openapi.json', pageTitle: 'prefloop API' }));

  return Object.assign(app, { ctx });
}
