// GET /health: unauthenticated liveness, kept as cheap as a route can be (it is the benchmark's baseline).
import { createRoute, z } from '@hono/zod-openapi';
import type { RegisterRoutes } from '../context';

const route = createRoute({
  method: 'get',
  path: '/health',
  tags: ['meta'],
  summary: 'Liveness check (no auth)',
  responses: { 200: { description: 'The process is serving', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
});

export const registerHealthRoutes: RegisterRoutes = (app) => {
  app.openapi(route, (c) => c.json({ status: 'ok' as const }, 200));
};
