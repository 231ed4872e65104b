// Validation of feedback events on the ingest hot path. The zod schema (shared/api-contract.ts FeedbackEvent) is the
// contract and the only source of error messages; it cost ~8% of a single-event POST's server CPU (measured with
// --cpu-prof). fastFeedbackEvent accepts exactly the inputs the schema accepts in the shapes clients send, with
// straight-line checks, and answers `undefined` for anything else: the caller then runs the schema, which either
// accepts (an input outside the fast shapes) or produces the 400 it always did. So the fast path can only decide
// "valid", never reject. api/feedback-validate.test.ts checks it against the schema on many generated inputs.
import { HTTPException } from 'hono/http-exception';
import type { Context } from 'hono';
import { FeedbackEvent, MAX_TEXT } from '../shared/api-contract';
import { validationError } from './errors';

const ID = /^[A-Za-z0-9_.:-]+$/;
const COMMON = ['type', 'id', 'user_id', 'metadata', 'comment'];
const RATED = [...COMMON, 'generation_id', 'prompt', 'response'];
/** Keys each event type may carry (the schemas are strict objects). */
const ALLOWED = new Map<unknown, Set<string>>([
  ['thumbs', new Set([...RATED, 'value'])],
  ['score', new Set([...RATED, 'name', 'value'])],
  ['correction', new Set([...RATED, 'correction'])],
  ['comparison', new Set([...COMMON, 'prompt', 'chosen', 'rejected', 'chosen_generation_id', 'rejected_generation_id'])],
]);

type Obj = Record<string, unknown>;

/** Absent, or a string whose length is in [min, max]. */
function optString(v: unknown, min: number, max: number): boolean {
  return v === undefined || (typeof v === 'string' && v.length >= min && v.length <= max);
}

function isPlainObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;
}

/**
 * `raw` as a FeedbackEvent when it is certainly valid (a plain JSON object of one of the four shapes, every field
 * within its bounds, the rated output given one way), else undefined (run the schema).
 */
export function fastFeedbackEvent(raw: unknown): FeedbackEvent | undefined {
  if (!isPlainObject(raw)) return undefined;
  const allowed = ALLOWED.get(raw.type);
  if (!allowed) return undefined;
  for (const k in raw) if (!allowed.has(k)) return undefined;

  if (!optString(raw.id, 1, 128) || (raw.id !== undefined && !ID.test(raw.id as string))) return undefined;
  if (!optString(raw.user_id, 1, 256) || !optString(raw.comment, 0, 10_000)) return undefined;
  // zod copies a record key by key and skips `__proto__`: such metadata goes the slow way so both agree.
  if (raw.metadata !== undefined && (!isPlainObject(raw.metadata) || Object.hasOwn(raw.metadata, '__proto__'))) return undefined;

  if (raw.type === 'comparison') {
    if (!optString(raw.prompt, 1, MAX_TEXT) || !optString(raw.chosen, 1, MAX_TEXT) || !optString(raw.rejected, 1, MAX_TEXT)) return undefined;
    if (!optString(raw.chosen_generation_id, 1, 128) || !optString(raw.rejected_generation_id, 1, 128)) return undefined;
    if ((raw.chosen === undefined) === (raw.chosen_generation_id === undefined)) return undefined;
    if ((raw.rejected === undefined) === (raw.rejected_generation_id === undefined)) return undefined;
    const anyInline = raw.chosen !== undefined || raw.rejected !== undefined;
    if (anyInline !== (raw.prompt !== undefined)) return undefined;
    return raw as FeedbackEvent;
  }

  if (!optString(raw.prompt, 1, MAX_TEXT) || !optString(raw.response, 1, MAX_TEXT) || !optString(raw.generation_id, 1, 128)) return undefined;
  if (raw.generation_id !== undefined ? raw.prompt !== undefined || raw.response !== undefined : raw.prompt === undefined || raw.response === undefined) {
    return undefined;
  }
  if (raw.type === 'thumbs') return raw.value === 'up' || raw.value === 'down' ? (raw as FeedbackEvent) : undefined;
  if (raw.type === 'score') {
    const ok = typeof raw.value === 'number' && Number.isFinite(raw.value) && typeof raw.name === 'string' && raw.name.length >= 1 && raw.name.length <= 100;
    return ok ? (raw as FeedbackEvent) : undefined;
  }
  return typeof raw.correction === 'string' && raw.correction.length >= 1 && raw.correction.length <= MAX_TEXT ? (raw as FeedbackEvent) : undefined;
}

/** One event: the fast path, else the schema. */
export function parseFeedbackEvent(raw: unknown): { success: true; data: FeedbackEvent } | { success: false; error: import('zod').ZodError } {
  const fast = fastFeedbackEvent(raw);
  if (fast) return { success: true, data: fast };
  return FeedbackEvent.safeParse(raw) as { success: true; data: FeedbackEvent } | { success: false; error: import('zod').ZodError };
}

// What @hono/zod-openapi does before a JSON body schema runs, kept identical (same patterns, same exceptions): its
// media-type gate (415), then Hono's json validator, which reads the body only under a JSON media type (anything else
// validates as `{}`) and turns unparsable JSON into a 400 (the app maps that to invalid_json).
const GATE_JSON = /^application\/([a-z-\.]+\+)?json(;\s*[a-zA-Z0-9\-]+\=([^;]+))*$/i;
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

export async function readJsonBody(c: Context): Promise<unknown> {
  const contentType = c.req.header('content-type');
  if (contentType && !GATE_JSON.test(contentType)) throw new HTTPException(415, { message: 'Unsupported Media Type' });
  const mediaType = contentType ? contentType.split(';')[0].trim().toLowerCase() : '';
  if (!JSON_MEDIA_TYPE.test(mediaType)) return {};
  try {
    return await c.req.json();
  } catch {
    throw new HTTPException(400, { message: 'Malformed JSON in request body' });
  }
}

/** The single-event route's body validation: the event, or the 400 the app's zod hook would have thrown. */
export async function validFeedbackEvent(c: Context): Promise<FeedbackEvent> {
  const r = parseFeedbackEvent(await readJsonBody(c));
  if (!r.success) throw validationError(r.error);
  return r.data;
}
