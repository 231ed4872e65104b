// GET /v1/datasets/preferences: the project's preference pairs as JSONL, streamed. The database is read page by
// page in (prompt, seq) order through the (project_id, prompt) index, pairs are derived one prompt group at a time
// (shared/preference-pairs.ts, the same code the worker trains from), and lines are written as the client reads:
// memory is bounded by the page size and the largest single prompt group, never by the dataset.
import { createRoute, z } from '@hono/zod-openapi';
import { and, asc, eq, inArray, sql } from 'drizzle-orm';
import { DatasetQuery } from '../../shared/api-contract';
import { type PairSourceEvent, pairsFromGroupedEvents, splitOf, toOpenAiRecord, toTrlRecord } from '../../shared/preference-pairs';
import { feedback } from '../../shared/schema';
import { requireScope } from '../auth';
import type { RegisterRoutes } from '../context';
import type { Database } from '../deps';
import { bearerSecurity, errorResponses } from './common';

const route = createRoute({
  method: 'get',
  path: '/v1/datasets/preferences',
  tags: ['datasets'],
  summary: 'Preference pairs as JSONL (TRL or OpenAI format)',
  description:
    'Pairs from comparisons, corrections (corrected beats original) and up-vs-down thumbs on the same prompt; ' +
    'deduplicated, contradictions settled by majority (ties dropped). `format=trl` (default) writes ' +
    '{"prompt","chosen","rejected"} lines; `format=openai` writes OpenAI preference fine-tuning records.',
  security: bearerSecurity,
  request: { query: DatasetQuery },
  responses: {
    200: { description: 'One JSON object per line', content: { 'application/x-ndjson': { schema: z.string() } } },
    ...errorResponses(400, 401, 403, 429),
  },
});

/** The pair-relevant events of a project, in (prompt, seq) order, one page of `pageSize` rows at a time. */
async function* eventsByPrompt(db: Database, projectId: string, pageSize: number): AsyncGenerator<PairSourceEvent> {
  let after: { prompt: string; seq: number } | undefined;
  for (;;) {
    const rows = await db
      .select({
        seq: feedback.seq,
        type: feedback.type,
        prompt: feedback.prompt,
        response: feedback.response,
        rejected: feedback.rejected,
        correction: feedback.correction,
        value: feedback.value,
      })
      .from(feedback)
      .where(
        and(
          eq(feedback.projectId, projectId),
          inArray(feedback.type, ['thumbs', 'comparison', 'correction']),
          // Row-value comparison: SQLite turns it into a range on the (project_id, prompt, rowid) index.
          after ? sql`(${feedback.prompt}, ${feedback.seq}) > (${after.prompt}, ${after.seq})` : undefined,
        ),
      )
      .orderBy(asc(feedback.prompt), asc(feedback.seq))
      .limit(pageSize);
    yield* rows;
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1];
    after = { prompt: last.prompt, seq: last.seq };
  }
}

/** Lines are gathered into chunks of about this many bytes before being handed to the socket. */
const CHUNK_CHARS = 64 * 1024;

export const registerDatasetRoutes: RegisterRoutes = (app, ctx) => {
  app.openapi(route, async (c) => {
    const auth = c.get('auth');
    requireScope(auth, 'admin');
    const { format, split } = c.req.valid('query');
    const toRecord = format === 'openai' ? toOpenAiRecord : toTrlRecord;
    const pairs = pairsFromGroupedEvents(eventsByPrompt(ctx.db, auth.projectId, ctx.settings.exportPageSize));
    const encoder = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        let chunk = '';
        while (chunk.length < CHUNK_CHARS) {
          const next = await pairs.next();
          if (next.done) {
            if (chunk) controller.enqueue(encoder.encode(chunk));
            controller.close();
            return;
          }
          if (split !== 'all' && splitOf(next.value.prompt, ctx.settings.heldOutFraction) !== split) continue;
          chunk += `${JSON.stringify(toRecord(next.value))}\n`;
        }
        controller.enqueue(encoder.encode(chunk));
      },
      async cancel() {
        await pairs.return(undefined);
      },
    });
    // A raw streamed Response: the typed-response helpers only cover JSON/text bodies.
    const response = new Response(body, {
      status: 200,
      headers: {
        'content-type': 'application/x-ndjson; charset=utf-8',
        'content-disposition': `attachment; filename="preferences-${format}${split === 'all' ? '' : `-${split}`}.jsonl"`,
        'cache-control': 'no-store',
      },
    });
    return response as never;
  });
};
