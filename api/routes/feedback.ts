// Feedback ingestion and listing: POST /v1/feedback (one event), POST /v1/feedback/batch (up to 1,000, 207 with a
// status per item), GET /v1/feedback (keyset pagination on seq, filters by type and time).
import { createRoute } from '@hono/zod-openapi';
import { and, asc, eq, gt, gte, lt } from 'drizzle-orm';
import {
  FeedbackBatchRequest,
  FeedbackBatchResponse,
  FeedbackEvent,
  FeedbackListQuery,
  FeedbackPage,
  FeedbackRecord,
  parseTime,
} from '../../shared/api-contract';
import { feedback } from '../../shared/schema';
import { requireScope } from '../auth';
import type { RegisterRoutes } from '../context';
import { ApiError, validationError } from '../errors';
import { parseFeedbackEvent, validFeedbackEvent } from '../feedback-validate';
import { bodyHash, eventToRow, loadGenerations, rowToRecord } from '../feedback-events';
import type { NewFeedbackRow } from '../feedback-writer';
import { bearerSecurity, decodeCursor, encodeCursor, errorResponses } from './common';

const json = <T>(schema: T) => ({ content: { 'application/json': { schema } } });

const postOne = createRoute({
  method: 'post',
  path: '/v1/feedback',
  tags: ['feedback'],
  summary: 'Record one feedback event',
  description:
    'Thumbs, score, comparison or correction on a prefloop generation (by id) or on inline text. With a client `id`, ' +
    'a retry with the same body returns the stored record (200); the same id with another body is 409.',
  security: bearerSecurity,
  request: { body: { required: true, ...json(FeedbackEvent) } },
  responses: {
    201: { description: 'Stored', ...json(FeedbackRecord) },
    200: { description: 'Replay of an already stored event (same id, same body)', ...json(FeedbackRecord) },
    ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429),
  },
});

const postBatch = createRoute({
  method: 'post',
  path: '/v1/feedback/batch',
  tags: ['feedback'],
  summary: 'Record up to 1,000 feedback events',
  description: 'Each event is validated on its own; the valid ones are stored in one transaction. 207 with a result per item.',
  security: bearerSecurity,
  request: { body: { required: true, ...json(FeedbackBatchRequest) } },
  responses: { 207: { description: 'One result per event, in order', ...json(FeedbackBatchResponse) }, ...errorResponses(400, 401, 403, 413, 415, 429) },
});

const list = createRoute({
  method: 'get',
  path: '/v1/feedback',
  tags: ['feedback'],
  summary: 'List feedback, oldest first',
  security: bearerSecurity,
  request: { query: FeedbackListQuery },
  responses: { 200: { description: 'A page of events', ...json(FeedbackPage) }, ...errorResponses(400, 401, 403, 429) },
});

export const registerFeedbackRoutes: RegisterRoutes = (app, ctx) => {
  // Documented from the route (schema and all), validated by validFeedbackEvent: the same schema behind a fast path
  // for the common shapes, with the same 400/415 contract (api/feedback-validate.ts).
  app.openAPIRegistry.registerPath(postOne);
  app.openapi({ ...postOne, request: undefined, hide: true }, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const event = await validFeedbackEvent(c);
    const gens = await loadGenerations(ctx.db, auth.projectId, [event]);
    const hash = bodyHash(event, ctx.sha256);
    const row = eventToRow(event, auth.projectId, gens, ctx.clock(), typeof hash === 'string' ? hash : await hash);
    if (row instanceof ApiError) throw row;
    const [outcome] = await ctx.feedbackWriter.write([row], [event.id !== undefined]);
    if (outcome.status === 'conflict') throw idempotencyConflict(row.id);
    return c.json(rowToRecord(outcome.row), outcome.status === 'created' ? 201 : 200);
  });

  app.openapi(postBatch, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'ingest');
    const { events } = c.req.valid('json');
    const now = ctx.clock();
    const results: Array<{ index: number; status: number; id?: string; error?: ReturnType<ApiError['toBody']>['error'] }> = new Array(events.length);

    const parsed: Array<{ index: number; event: FeedbackEvent }> = [];
    events.forEach((raw, index) => {
      const r = parseFeedbackEvent(raw);
      if (r.success) parsed.push({ index, event: r.data });
      else results[index] = { index, status: 400, error: validationError(r.error, `events.${index}`).toBody().error };
    });
    const gens = await loadGenerations(
      ctx.db,
      auth.projectId,
      parsed.map((p) => p.event),
    );
    const rows: NewFeedbackRow[] = [];
    const clientIds: boolean[] = [];
    const rowIndex: number[] = [];
    for (const { index, event } of parsed) {
      const hash = bodyHash(event, ctx.sha256);
      const row = eventToRow(event, auth.projectId, gens, now, typeof hash === 'string' ? hash : await hash);
      if (row instanceof ApiError) results[index] = { index, status: row.status, error: row.toBody().error };
      else {
        rows.push(row);
        clientIds.push(event.id !== undefined);
        rowIndex.push(index);
      }
    }
    const outcomes = await ctx.feedbackWriter.write(rows, clientIds);
    let created = 0;
    let replayed = 0;
    outcomes.forEach((o, i) => {
      const index = rowIndex[i];
      if (o.status === 'created') {
        created++;
        results[index] = { index, status: 201, id: o.row.id };
      } else if (o.status === 'replayed') {
        replayed++;
        results[index] = { index, status: 200, id: o.row.id };
      } else results[index] = { index, status: 409, id: o.row.id, error: idempotencyConflict(o.row.id).toBody().error };
    });
    return c.json({ results, created, replayed, failed: events.length - created - replayed }, 207);
  });

  app.openapi(list, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'admin');
    const q = c.req.valid('query');
    const conditions = [eq(feedback.projectId, auth.projectId)];
    if (q.type) conditions.push(eq(feedback.type, q.type));
    if (q.since) conditions.push(gte(feedback.createdAt, parseTime(q.since)!));
    if (q.until) conditions.push(lt(feedback.createdAt, parseTime(q.until)!));
    if (q.cursor) conditions.push(gt(feedback.seq, decodeCursor(q.cursor)));
    const rows = await ctx.db
      .select()
      .from(feedback)
      .where(and(...conditions))
      .orderBy(asc(feedback.seq))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    const more = rows.length > q.limit;
    return c.json({ data: page.map(rowToRecord), next_cursor: more ? encodeCursor(page[page.length - 1].seq) : null }, 200);
  });
};

function idempotencyConflict(id: string): ApiError {
  return new ApiError(409, 'idempotency_conflict', `feedback ${id} already exists with a different body`, [{ path: 'id', code: 'custom', message: 'id reused with another body' }]);
}
