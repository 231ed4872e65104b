// The policy registry over HTTP: GET /v1/policies (the project's lineage), GET /v1/policies/live, and
// POST /v1/policies/{version}/activate (admin). Activation loads and checks the artifact (sha256, session,
// smoke pass) before the database changes; rollback is activating an older version. The previous live
// version becomes `retired`. Other API processes follow within one poll interval.
import { createRoute, z } from '@hono/zod-openapi';
import { ActivateResponse, LivePolicy, PolicyList } from '../../shared/serving-contract';
import { requireScope } from '../auth';
import type { RegisterRoutes } from '../context';
import { ApiError } from '../errors';
import { registryOf, toApiError } from '../generation-service';
import { PolicyUnavailableError, type PolicyRow } from '../policy/registry';
import { bearerSecurity, errorResponses } from './common';

export function policyJson(r: PolicyRow) {
  return {
    version: r.version,
    parent_version: r.parentVersion,
    artifact_uri: r.artifactUri,
    sha256: r.sha256,
    status: r.status,
    metrics: r.metrics,
    training_run_id: r.trainingRunId,
    created_at: r.createdAt,
    activated_at: r.activatedAt,
  };
}

const unavailable = { 503: { description: 'No live policy (`no_live_policy`)', content: errorResponses(503)[503].content } };

const list = createRoute({
  method: 'get',
  path: '/v1/policies',
  tags: ['policies'],
  summary: "The project's policies, newest first",
  security: bearerSecurity,
  responses: { 200: { description: 'Policies', content: { 'application/json': { schema: PolicyList } } }, ...errorResponses(401, 403, 429) },
});

const live = createRoute({
  method: 'get',
  path: '/v1/policies/live',
  tags: ['policies'],
  summary: 'The live policy (bootstraps version 1 = the base model for a project that has none)',
  security: bearerSecurity,
  responses: { 200: { description: 'The live policy', content: { 'application/json': { schema: LivePolicy } } }, ...errorResponses(401, 403, 429), ...unavailable },
});

const activate = createRoute({
  method: 'post',
  path: '/v1/policies/{version}/activate',
  tags: ['policies'],
  summary: 'Make a version live (admin); rollback = activating an older version. Send `{}` as the body.',
  security: bearerSecurity,
  request: { params: z.object({ version: z.coerce.number().int().min(1).openapi({ param: { name: 'version', in: 'path' }, example: 2 }) }) },
  responses: {
    200: { description: 'Activated', content: { 'application/json': { schema: ActivateResponse } } },
    ...errorResponses(400, 401, 403, 404, 415, 429),
    409: { description: 'The artifact failed its checks (`policy_load_failed`); nothing changed', content: errorResponses(409)[409].content },
  },
});

export const registerPolicyRoutes: RegisterRoutes = (app, ctx) => {
  app.openapi(list, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const registry = registryOf(ctx);
    const rows = await registry.list(auth.projectId);
    return c.json({ policies: rows.map(policyJson), serving_version: registry.servingVersion(auth.projectId) }, 200);
  });

  app.openapi(live, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const registry = registryOf(ctx);
    try {
      (await registry.acquire(auth.projectId)).release(); // bootstraps and loads on first use
    } catch (e) {
      const mapped = toApiError(e);
      if (!(mapped instanceof ApiError && mapped.code === 'policy_unavailable')) throw mapped;
    }
    const info = await registry.liveInfo(auth.projectId);
    if (!info.row) throw new ApiError(503, 'no_live_policy', `project ${auth.projectId} has no live policy`);
    return c.json({ policy: policyJson(info.row), serving_version: info.servingVersion }, 200);
  });

  app.openapi(activate, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'admin');
    const { version } = c.req.valid('param');
    try {
      const r = await registryOf(ctx).activate(auth.projectId, version);
      return c.json({ policy: policyJson(r.row), previous_version: r.previousVersion }, 200);
    } catch (e) {
      if (e instanceof PolicyUnavailableError) throw new ApiError(409, 'policy_load_failed', e.message);
      throw toApiError(e);
    }
  });
};
