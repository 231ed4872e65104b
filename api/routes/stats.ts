// GET /v1/stats: feedback counts by type, all time and over the last 24 hours (by the app's clock).
import { createRoute } from '@hono/zod-openapi';
import { eq, sql } from 'drizzle-orm';
import { StatsResponse } from '../../shared/api-contract';
import { feedback, feedbackTypes } from '../../shared/schema';
import { requireScope } from '../auth';
import type { RegisterRoutes } from '../context';
import { bearerSecurity, errorResponses } from './common';

const DAY_MS = 24 * 60 * 60 * 1000;

const route = createRoute({
  method: 'get',
  path: '/v1/stats',
  tags: ['meta'],
  summary: 'Feedback counts by type (total and last 24 h)',
  security: bearerSecurity,
  responses: { 200: { description: 'Counts', content: { 'application/json': { schema: StatsResponse } } }, ...errorResponses(401, 403, 429) },
});

export const registerStatsRoutes: RegisterRoutes = (app, ctx) => {
  app.openapi(route, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'admin');
    const since = ctx.clock() - DAY_MS;
    const rows = await ctx.db
      .select({
        type: feedback.type,
        total: sql<number>`count(*)`,
        recent: sql<number>`coalesce(sum(${feedback.createdAt} >= ${since}), 0)`,
      })
      .from(feedback)
      .where(eq(feedback.projectId, auth.projectId))
      .groupBy(feedback.type);
    const byType = Object.fromEntries(feedbackTypes.map((t) => [t, { total: 0, last_24h: 0 }])) as Record<(typeof feedbackTypes)[number], { total: number; last_24h: number }>;
    for (const r of rows) byType[r.type] = { total: Number(r.total), last_24h: Number(r.recent) };
    const total = rows.reduce((s, r) => s + Number(r.total), 0);
    const last24h = rows.reduce((s, r) => s + Number(r.recent), 0);
    return c.json({ project_id: auth.projectId, total, last_24h: last24h, by_type: byType }, 200);
  });
};
