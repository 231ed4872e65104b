// Validated feedback events into stored rows (resolving generation ids within the caller's project), and stored
// rows back into the API's record shape.
import { and, eq, inArray } from 'drizzle-orm';
import type { FeedbackEvent, FeedbackRecord } from '../shared/api-contract';
import { type Sha256Hex, canonicalJson } from '../shared/hash';
import { newId } from '../shared/ids';
import { generations } from '../shared/schema';
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
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .select({ id: generations.id, prompt: generations.prompt, output: generations.output })
      .from(generations)
      .where(and(eq(generations.projectId, projectId), inArray(generations.id, ids.slice(i, i + 500))));
    for (const r of rows) out.set(r.id, { prompt: r.prompt, output: r.output });
  }
  return out;
}

/**
 * The row to store for one event, or an ApiError (404 unknown generation, 400 comparison across prompts).
 * The body hash covers the canonical form of the validated event, so key order and whitespace do not matter.
 */
export async function eventToRow(
  e: FeedbackEvent,
  projectId: string,
  gens: Map<string, GenerationText>,
  now: number,
  sha256: Sha256Hex,
): Promise<NewFeedbackRow | ApiError> {
  const gen = (id: string, field: string): GenerationText | ApiError =>
    gens.get(id) ?? new ApiError(404, 'generation_not_found', `${field}: no generation ${id} in this project`);

  const base = {
    id: e.id ?? newId('fb'),
    projectId,
    type: e.type,
    generationId: null as string | null,
    rejectedGenerationId: null as string | null,
    rejected: null as string | null,
    correction: null as string | null,
    value: null as number | null,
    name: null as string | null,
    comment: e.comment ?? null,
    userId: e.user_id ?? null,
    metadata: e.metadata ?? null,
    bodyHash: await sha256(canonicalJson(e)),
    createdAt: now,
  };

  if (e.type === 'comparison') {
    let prompt = e.prompt;
    let chosen = e.chosen;
    let rejected = e.rejected;
    if (e.chosen_generation_id !== undefined) {
      const g = gen(e.chosen_generation_id, 'chosen_generation_id');
      if (g instanceof ApiError) return g;
      prompt ??= g.prompt;
      chosen = g.output;
      if (g.prompt !== prompt) return promptMismatch();
    }
    if (e.rejected_generation_id !== undefined) {
      const g = gen(e.rejected_generation_id, 'rejected_generation_id');
      if (g instanceof ApiError) return g;
      prompt ??= g.prompt;
      rejected = g.output;
      if (g.prompt !== prompt) return promptMismatch();
    }
    return {
      ...base,
      generationId: e.chosen_generation_id ?? null,
      rejectedGenerationId: e.rejected_generation_id ?? null,
      prompt: prompt!,
      response: chosen!,
      rejected: rejected!,
    };
  }

  let prompt = e.prompt;
  let response = e.response;
  if (e.generation_id !== undefined) {
    const g = gen(e.generation_id, 'generation_id');
    if (g instanceof ApiError) return g;
    prompt = g.prompt;
    response = g.output;
  }
  const row = { ...base, generationId: e.generation_id ?? null, prompt: prompt!, response: response! };
  if (e.type === 'thumbs') return { ...row, value: e.value === 'up' ? 1 : -1 };
  if (e.type === 'score') return { ...row, value: e.value, name: e.name };
  return { ...row, correction: e.correction };
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
