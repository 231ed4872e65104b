// Validated feedback events into stored rows (resolving generation ids within the caller's project), and stored
// rows back into the API's record shape.
import { and, eq } from 'drizzle-orm';
import type { FeedbackEvent, FeedbackRecord } from '../shared/api-contract';
import { type Sha256Hex, canonicalJson } from '../shared/hash';
import { newTimeOrderedId } from '../shared/ids';
import { generations } from '../shared/schema';
import { inJsonList } from '../shared/sql-lists';
import type { Database } from './deps';
import { ApiError } from './errors';
import type { FeedbackRow, NewFeedbackRow } from './feedback-writer';

interface GenerationText {
  prompt: string;
  output: string;
}

/** Every generation id an event refers to. */
function generationIds(e: FeedbackEvent): string[] {
  if (e.type === 'comparison') return [e.chosen_generation_id, e.rejected_generation_id].filter((x): x is string => x !== undefined);
  return e.generation_id === undefined ? [] : [e.generation_id];
}

/** Loads the referenced generations of one project in one query; another project's ids are simply not found. */
export async function loadGenerations(db: Database, projectId: string, events: FeedbackEvent[]): Promise<Map<string, GenerationText>> {
  const ids = [...new Set(events.flatMap(generationIds))];
  const out = new Map<string, GenerationText>();
  if (ids.length === 0) return out;
  const rows = await db
    .select({ id: generations.id, prompt: generations.prompt, output: generations.output })
    .from(generations)
    .where(and(eq(generations.projectId, projectId), inJsonList(generations.id, ids)));
  for (const r of rows) out.set(r.id, { prompt: r.prompt, output: r.output });
  return out;
}

/**
 * The row to store for one event, or an ApiError (404 unknown generation, 400 comparison across prompts).
 * `bodyHash` is bodyHash(e) (computed apart because it may be async). Generated ids are time-ordered (newTimeOrderedId): the unique (project_id, id) index then grows at its right edge.
 * Written without closures or spreads and with every field set in one literal: this runs once per ingested event.
 */
export function eventToRow(
  e: FeedbackEvent,
  projectId: string,
  gens: Map<string, GenerationText>,
  now: number,
  bodyHash: string,
): NewFeedbackRow | ApiError {
  let generationId: string | null = null;
  let rejectedGenerationId: string | null = null;
  let prompt: string | undefined;
  let response: string | undefined;
  let rejected: string | null = null;
  let correction: string | null = null;
  let value: number | null = null;
  let name: string | null = null;

  if (e.type === 'comparison') {
    prompt = e.prompt;
    response = e.chosen;
    rejected = e.rejected ?? null;
    if (e.chosen_generation_id !== undefined) {
      const g = gens.get(e.chosen_generation_id);
      if (!g) return generationNotFound('chosen_generation_id', e.chosen_generation_id);
      prompt ??= g.prompt;
      response = g.output;
      if (g.prompt !== prompt) return promptMismatch();
      generationId = e.chosen_generation_id;
    }
    if (e.rejected_generation_id !== undefined) {
      const g = gens.get(e.rejected_generation_id);
      if (!g) return generationNotFound('rejected_generation_id', e.rejected_generation_id);
      prompt ??= g.prompt;
      rejected = g.output;
      if (g.prompt !== prompt) return promptMismatch();
      rejectedGenerationId = e.rejected_generation_id;
    }
  } else {
    prompt = e.prompt;
    response = e.response;
    if (e.generation_id !== undefined) {
      const g = gens.get(e.generation_id);
      if (!g) return generationNotFound('generation_id', e.generation_id);
      prompt = g.prompt;
      response = g.output;
      generationId = e.generation_id;
    }
    if (e.type === 'thumbs') value = e.value === 'up' ? 1 : -1;
    else if (e.type === 'score') {
      value = e.value;
      name = e.name;
    } else correction = e.correction;
  }
  return {
    id: e.id ?? newTimeOrderedId('fb', now),
    projectId,
    type: e.type,
    generationId,
    rejectedGenerationId,
    prompt: prompt!,
    response: response!,
    rejected,
    correction,
    value,
    name,
    comment: e.comment ?? null,
    userId: e.user_id ?? null,
    metadata: e.metadata ?? null,
    bodyHash,
    createdAt: now,
  };
}

/**
 * Stored as the body hash of an event without a client id. Nothing can replay such an event: a later request naming
 * its (server-generated) id carries an `id` member the original lacked, so its hash could never match and the answer
 * is 409 either way. Skipping the hash saves the canonical form and the SHA-256 (~7% of a single-event POST's
 * event-loop CPU, measured with --cpu-prof).
 */
export const NO_REPLAY_HASH = '';

/**
 * SHA-256 of the canonical form of the validated event, so key order and whitespace do not matter: what idempotent
 * replays are compared by. Synchronous when the injected hash is (Node), so a batch pays no promise per event.
 */
export function bodyHash(e: FeedbackEvent, sha256: Sha256Hex): string | Promise<string> {
  return e.id === undefined ? NO_REPLAY_HASH : sha256(canonicalJson(e));
}

function generationNotFound(field: string, id: string): ApiError {
  return new ApiError(404, 'generation_not_found', `${field}: no generation ${id} in this project`);
}

function promptMismatch(): ApiError {
  return new ApiError(400, 'prompt_mismatch', 'chosen and rejected must answer the same prompt', [
    { path: 'rejected_generation_id', code: 'custom', message: 'answers a different prompt than the chosen output' },
  ]);
}

export function rowToRecord(r: NewFeedbackRow | FeedbackRow): FeedbackRecord {
  return {
    id: r.id,
    type: r.type,
    generation_id: r.generationId,
    rejected_generation_id: r.rejectedGenerationId,
    prompt: r.prompt,
    response: r.response,
    rejected: r.rejected,
    correction: r.correction,
    value: r.type === 'thumbs' ? (r.value != null && r.value > 0 ? 'up' : 'down') : r.value,
    name: r.name,
    comment: r.comment,
    user_id: r.userId,
    metadata: r.metadata,
    created_at: new Date(r.createdAt).toISOString(),
  };
}
