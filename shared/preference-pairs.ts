// Feedback events into preference pairs (METHOD.md "Feedback into pairs"): one pure, runtime-neutral module the
// API's dataset export and the worker's training both use, so the pairs a user downloads are the pairs the reward
// model trains on.
//
// The rule, exactly:
//  1. Events are grouped by their prompt text (byte-equal). Pairs never cross prompts.
//  2. Thumbs first settle per response: for each distinct response text of a prompt, net = (#up − #down).
//     net > 0 makes it an "up" response, net < 0 a "down" response, net = 0 (contradicting thumbs tied) drops it.
//  3. Votes, each saying "A is preferred to B" for the prompt:
//       - a comparison event: chosen over rejected (one vote);
//       - a correction of y into y': y' over y (one vote; y' is also an SFT demonstration, see `demonstrations`);
//       - every (up response, down response) combination from step 2: up over down (one vote).
//     Score events give no votes (they are pointwise signals; the worker may use them for the pointwise RM term).
//  4. Votes are tallied per unordered pair {A, B} (A ≠ B; a vote whose two texts are equal is ignored). The pair is
//     kept once, oriented towards the side with strictly more votes; a tie (contradicting duplicates with no
//     majority) drops it. Repeats of the same vote therefore deduplicate into one pair.
//  5. Output order is deterministic: pairs in the order their unordered key first received a vote.
// Train/held-out: `splitOf(prompt)` buckets a prompt by a stable 32-bit hash, so a prompt is held out in every run
// and every export, forever; nothing held out leaks into training across runs.
import { fnv1a32 } from './hash';

/** The fields of a stored feedback event that pair derivation reads. */
export interface PairSourceEvent {
  type: 'thumbs' | 'score' | 'comparison' | 'correction';
  prompt: string;
  /** Rated output (thumbs, correction) or the chosen output (comparison). */
  response: string;
  /** comparison: the rejected output. */
  rejected?: string | null;
  /** correction: the corrected output. */
  correction?: string | null;
  /** thumbs: +1 up, −1 down. */
  value?: number | null;
}

export interface PreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
  /** Votes for chosen minus votes for rejected (≥ 1). */
  margin: number;
}

export type Split = 'train' | 'heldout';

/** Default share of prompts held out for evaluation. */
export const DEFAULT_HELDOUT_FRACTION = 0.1;

/** The split a prompt belongs to; stable across runs, processes and runtimes. */
export function splitOf(prompt: string, heldOutFraction = DEFAULT_HELDOUT_FRACTION): Split {
  return fnv1a32(prompt) / 0x1_0000_0000 < heldOutFraction ? 'heldout' : 'train';
}

/** Pairs from the events of ONE prompt (all events must share `prompt`). */
export function pairsForPrompt(prompt: string, events: Iterable<PairSourceEvent>): PreferencePair[] {
  const thumbsNet = new Map<string, number>();
  // Unordered key -> tally, keyed in first-vote order (Map keeps insertion order).
  const tallies = new Map<string, { a: string; b: string; aOverB: number; bOverA: number }>();
  const vote = (winner: string, loser: string) => {
    if (winner === loser) return;
    const [a, b] = winner < loser ? [winner, loser] : [loser, winner];
    const key = JSON.stringify([a, b]);
    let t = tallies.get(key);
    if (!t) tallies.set(key, (t = { a, b, aOverB: 0, bOverA: 0 }));
    if (winner === a) t.aOverB++;
    else t.bOverA++;
  };

  for (const e of events) {
    if (e.type === 'comparison' && e.rejected != null) vote(e.response, e.rejected);
    else if (e.type === 'correction' && e.correction != null) vote(e.correction, e.response);
    else if (e.type === 'thumbs' && e.value != null && e.value !== 0) {
      thumbsNet.set(e.response, (thumbsNet.get(e.response) ?? 0) + Math.sign(e.value));
    }
  }
  const ups: string[] = [];
  const downs: string[] = [];
  for (const [response, net] of thumbsNet) {
    if (net > 0) ups.push(response);
    else if (net < 0) downs.push(response);
  }
  for (const up of ups) for (const down of downs) vote(up, down);

  const pairs: PreferencePair[] = [];
  for (const t of tallies.values()) {
    if (t.aOverB > t.bOverA) pairs.push({ prompt, chosen: t.a, rejected: t.b, margin: t.aOverB - t.bOverA });
    else if (t.bOverA > t.aOverB) pairs.push({ prompt, chosen: t.b, rejected: t.a, margin: t.bOverA - t.aOverB });
  }
  return pairs;
}

/**
 * Pairs from a stream of events ordered (or at least grouped) by prompt: holds one prompt's events at a time, so
 * memory is bounded by the largest prompt group, not by the dataset.
 */
export async function* pairsFromGroupedEvents(
  events: AsyncIterable<PairSourceEvent> | Iterable<PairSourceEvent>,
): AsyncGenerator<PreferencePair> {
  let current: string | undefined;
  let group: PairSourceEvent[] = [];
  for await (const e of events) {
    if (current !== undefined && e.prompt !== current) {
      yield* pairsForPrompt(current, group);
      group = [];
    }
    current = e.prompt;
    group.push(e);
  }
  if (current !== undefined) yield* pairsForPrompt(current, group);
}

/** An SFT demonstration: the corrected output, and the output it corrected. */
export interface DemonstrationRecord {
  prompt: string;
  completion: string;
  original: string;
}

/** SFT demonstrations (prompt, corrected output) from correction events, deduplicated. */
export function demonstrations(events: Iterable<PairSourceEvent>): DemonstrationRecord[] {
  const seen = new Set<string>();
  const out: DemonstrationRecord[] = [];
  for (const e of events) {
    if (e.type !== 'correction' || e.correction == null) continue;
    const key = JSON.stringify([e.prompt, e.correction]);
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ prompt: e.prompt, completion: e.correction, original: e.response });
  }
  return out;
}

/** TRL's preference format (DPOTrainer / RewardTrainer): one JSON object per line. */
export function toTrlRecord(p: PreferencePair): { prompt: string; chosen: string; rejected: string } {
  return { prompt: p.prompt, chosen: p.chosen, rejected: p.rejected };
}

/** OpenAI's preference fine-tuning (DPO) JSONL format. */
export function toOpenAiRecord(p: PreferencePair) {
  return {
    input: { messages: [{ role: 'user' as const, content: p.prompt }] },
    preferred_output: [{ role: 'assistant' as const, content: p.chosen }],
    non_preferred_output: [{ role: 'assistant' as const, content: p.rejected }],
  };
}
