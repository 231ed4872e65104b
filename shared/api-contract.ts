// The HTTP contract of prefloop's feedback API as zod schemas: the API validates requests with them and generates
// /openapi.json from them; clients (and tests) can import them too. Field names are snake_case on the wire.
import { z } from '@hono/zod-openapi';
import { feedbackTypes } from './schema';

// ---------------------------------------------------------------------------------------------------------------
// Errors

export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'validation_failed' }),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi('Error');
export type ErrorBody = z.infer<typeof ErrorBody>;

// ---------------------------------------------------------------------------------------------------------------
// Feedback events (requests)

/** Upper bound on a single text field; the request body limit (default 1 MiB) applies on top. */
export const MAX_TEXT = 200_000;
const text = z.string().min(1).max(MAX_TEXT);

const common = {
  id: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only')
    .optional()
    .openapi({ description: 'Client-chosen idempotency id, unique per project. Same id + same body replays; another body is 409.' }),
  user_id: z.string().min(1).max(256).optional().openapi({ description: 'The end user who gave the feedback (your id).' }),
  metadata: z.record(z.string(), z.unknown()).optional().openapi({ description: 'Free-form JSON object stored with the event.' }),
  comment: z.string().max(10_000).optional(),
};

/** The rated output: a prefloop generation id, or inline prompt + response text produced elsewhere. */
const ratedOutput = {
  generation_id: z.string().min(1).max(128).optional().openapi({ description: 'A generation of this project.' }),
  prompt: text.optional().openapi({ description: 'Inline prompt (with `response`), when the output did not come from prefloop.' }),
  response: text.optional().openapi({ description: 'Inline output text (with `prompt`).' }),
};

type Ctx = z.RefinementCtx;
function requireRatedOutput(v: { generation_id?: string; prompt?: string; response?: string }, ctx: Ctx) {
  if (v.generation_id !== undefined) {
    for (const k of ['prompt', 'response'] as const) {
      if (v[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `give either generation_id or inline prompt + response, not both` });
    }
  } else {
    for (const k of ['prompt', 'response'] as const) {
      if (v[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: `required when generation_id is absent` });
    }
  }
}

export const ThumbsEvent = z
  .strictObject({
    type: z.literal('thumbs'),
    ...common,
    ...ratedOutput,
    value: z.enum(['up', 'down']),
  })
  .superRefine(requireRatedOutput)
  .openapi('ThumbsEvent');

export const ScoreEvent = z
  .strictObject({
    type: z.literal('score'),
    ...common,
    ...ratedOutput,
    name: z.string().min(1).max(100).openapi({ example: 'helpfulness' }),
    value: z.number().finite(),
  })
  .superRefine(requireRatedOutput)
  .openapi('ScoreEvent');

export const ComparisonEvent = z
  .strictObject({
    type: z.literal('comparison'),
    ...common,
    prompt: text.optional().openapi({ description: 'Required when either side is inline text.' }),
    chosen: text.optional().openapi({ description: 'Preferred output text (or chosen_generation_id).' }),
    rejected: text.optional().openapi({ description: 'Rejected output text (or rejected_generation_id).' }),
    chosen_generation_id: z.string().min(1).max(128).optional(),
    rejected_generation_id: z.string().min(1).max(128).optional(),
  })
  .superRefine((v, ctx) => {
    for (const side of ['chosen', 'rejected'] as const) {
      const hasId = v[`${side}_generation_id`] !== undefined;
      const hasText = v[side] !== undefined;
      if (hasId === hasText) ctx.addIssue({ code: 'custom', path: [side], message: `give exactly one of ${side} or ${side}_generation_id` });
    }
    const anyInline = v.chosen !== undefined || v.rejected !== undefined;
    if (anyInline && v.prompt === undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'required when an output is given as text' });
    if (!anyInline && v.prompt !== undefined) ctx.addIssue({ code: 'custom', path: ['prompt'], message: 'taken from the generations; leave it out' });
  })
  .openapi('ComparisonEvent');

export const CorrectionEvent = z
  .strictObject({
    type: z.literal('correction'),
    ...common,
    ...ratedOutput,
    correction: text.openapi({ description: 'The corrected output, which beats the original.' }),
  })
  .superRefine(requireRatedOutput)
  .openapi('CorrectionEvent');

export const FeedbackEvent = z
  .discriminatedUnion('type', [ThumbsEvent, ScoreEvent, ComparisonEvent, CorrectionEvent])
  .openapi('FeedbackEvent');
export type FeedbackEvent = z.infer<typeof FeedbackEvent>;

export const MAX_BATCH = 1000;

export const FeedbackBatchRequest = z
  .strictObject({
    events: z
      .array(z.unknown().openapi({ $ref: '#/components/schemas/FeedbackEvent' } as never))
      .min(1)
      .max(MAX_BATCH)
      .openapi({ description: `1 to ${MAX_BATCH} FeedbackEvent objects; each is validated on its own.` }),
  })
  .openapi('FeedbackBatchRequest');

// ---------------------------------------------------------------------------------------------------------------
// Responses

export const FeedbackRecord = z
  .object({
    id: z.string(),
    type: z.enum(feedbackTypes),
    generation_id: z.string().nullable(),
    rejected_generation_id: z.string().nullable(),
    prompt: z.string(),
    response: z.string().openapi({ description: 'Rated output, or the chosen output of a comparison.' }),
    rejected: z.string().nullable(),
    correction: z.string().nullable(),
    value: z.union([z.enum(['up', 'down']), z.number()]).nullable(),
    name: z.string().nullable(),
    comment: z.string().nullable(),
    user_id: z.string().nullable(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    created_at: z.string().openapi({ description: 'ISO 8601, UTC.' }),
  })
  .openapi('FeedbackRecord');
export type FeedbackRecord = z.infer<typeof FeedbackRecord>;

export const BatchItemResult = z
  .object({
    index: z.number().int(),
    status: z.number().int().openapi({ description: '201 created, 200 replayed, 400, 404 or 409 like the single endpoint.' }),
    id: z.string().optional(),
    error: ErrorBody.shape.error.optional(),
  })
  .openapi('BatchItemResult');

export const FeedbackBatchResponse = z
  .object({
    results: z.array(BatchItemResult),
    created: z.number().int(),
    replayed: z.number().int(),
    failed: z.number().int(),
  })
  .openapi('FeedbackBatchResponse');

/** since/until accept ISO 8601 or epoch milliseconds. */
export function parseTime(value: string): number | undefined {
  if (/^\d{1,16}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : t;
}
const timeParam = z
  .string()
  .refine((v) => parseTime(v) !== undefined, 'an ISO 8601 time or epoch milliseconds')
  .optional();

export const FeedbackListQuery = z.object({
  type: z.enum(feedbackTypes).optional(),
  since: timeParam.openapi({ description: 'Events created at or after this time (ISO 8601 or epoch ms).' }),
  until: timeParam.openapi({ description: 'Events created before this time (ISO 8601 or epoch ms).' }),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(200).optional().openapi({ description: 'next_cursor from the previous page.' }),
});

export const FeedbackPage = z
  .object({
    data: z.array(FeedbackRecord),
    next_cursor: z.string().nullable().openapi({ description: 'Pass as `cursor` for the next page; null at the end.' }),
  })
  .openapi('FeedbackPage');

export const DatasetQuery = z.object({
  format: z.enum(['trl', 'openai']).default('trl'),
  split: z.enum(['all', 'train', 'heldout']).default('all').openapi({ description: 'Stable prompt-hash split (10% held out).' }),
});

const TypeCount = z.object({ total: z.number().int(), last_24h: z.number().int() });
export const StatsResponse = z
  .object({
    project_id: z.string(),
    total: z.number().int(),
    last_24h: z.number().int(),
    by_type: z.object({ thumbs: TypeCount, score: TypeCount, comparison: TypeCount, correction: TypeCount }),
  })
  .openapi('Stats');
