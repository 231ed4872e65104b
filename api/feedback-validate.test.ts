// The fast path must never accept what the zod contract rejects, and must give the same event when it accepts:
// checked on the common shapes and on thousands of seeded random mutations of them (boundary lengths, wrong types,
// unknown keys, missing or doubled rated outputs, odd metadata).
import { describe, expect, it } from 'vitest';
import { FeedbackEvent, MAX_TEXT } from '../shared/api-contract';
import { canonicalJson } from '../shared/hash';
import { fastFeedbackEvent, parseFeedbackEvent } from './feedback-validate';

const templates: Record<string, unknown>[] = [
  { type: 'thumbs', value: 'up', prompt: 'p', response: 'r' },
  { type: 'thumbs', value: 'down', generation_id: 'gen_1', user_id: 'u', comment: '', metadata: { a: 1, b: [true, null] } },
  { type: 'score', name: 'helpfulness', value: 0.75, prompt: 'p', response: 'r', id: 'client-1.a:b_c' },
  { type: 'score', name: 'n', value: -3, generation_id: 'gen_2' },
  { type: 'comparison', prompt: 'p', chosen: 'a', rejected: 'b' },
  { type: 'comparison', chosen_generation_id: 'gen_a', rejected_generation_id: 'gen_b' },
  { type: 'comparison', prompt: 'p', chosen: 'a', rejected_generation_id: 'gen_b' },
  { type: 'correction', prompt: 'p', response: 'r', correction: 'c' },
  { type: 'correction', generation_id: 'gen_3', correction: 'c', metadata: {} },
];

// Seeded PRNG (mulberry32) so a failure reproduces.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const KEYS = ['type', 'id', 'user_id', 'metadata', 'comment', 'generation_id', 'prompt', 'response', 'value', 'name', 'correction', 'chosen', 'rejected', 'chosen_generation_id', 'rejected_generation_id', 'extra', '__proto__', 'constructor'];
const s = (n: number) => 'x'.repeat(n);
const VALUES: unknown[] = [
  undefined, null, '', 'x', 'up', 'down', 'thumbs', 'score', 'comparison', 'correction', 'toString', 'bad id!', 'ok-id_1.2:3',
  s(100), s(101), s(128), s(129), s(256), s(257), s(10_000), s(10_001), s(MAX_TEXT), s(MAX_TEXT + 1),
  0, -0, 1, 0.5, -1e300, Number.NaN, Number.POSITIVE_INFINITY, true, [], ['up'], {}, { a: 1 }, Object.create(null), JSON.parse('{"__proto__": {"x": 1}}'), new Date(0),
];

function mutate(base: Record<string, unknown>, r: () => number): unknown {
  const e: Record<string, unknown> = JSON.parse(JSON.stringify(base));
  const n = 1 + Math.floor(r() * 3);
  for (let i = 0; i < n; i++) {
    const k = KEYS[Math.floor(r() * KEYS.length)];
    const v = VALUES[Math.floor(r() * VALUES.length)];
    if (r() < 0.25 || v === undefined) delete e[k];
    else Object.defineProperty(e, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return e;
}

function agree(input: unknown): 'fast' | 'slow-ok' | 'rejected' {
  const fast = fastFeedbackEvent(input);
  const slow = FeedbackEvent.safeParse(input);
  if (fast !== undefined) {
    expect(slow.success, `fast path accepted what the schema rejects: ${JSON.stringify(input)?.slice(0, 300)}`).toBe(true);
    expect(canonicalJson(fast)).toBe(canonicalJson(slow.data));
    expect(JSON.stringify((fast as { metadata?: unknown }).metadata)).toBe(JSON.stringify((slow.data as { metadata?: unknown }).metadata));
    return 'fast';
  }
  const combined = parseFeedbackEvent(input);
  expect(combined.success).toBe(slow.success);
  return slow.success ? 'slow-ok' : 'rejected';
}

describe('fastFeedbackEvent', () => {
  it('takes every common shape, giving what the schema gives', () => {
    for (const t of templates) expect(agree(t)).toBe('fast');
  });

  it('never accepts what the schema rejects, on 8,000 seeded mutations', () => {
    const r = rng(20261125);
    const counts = { fast: 0, 'slow-ok': 0, rejected: 0 };
    for (let i = 0; i < 8_000; i++) counts[agree(mutate(templates[i % templates.length], r))]++;
    // The mutations must exercise both sides (else the test proves nothing), and the fast path must carry most valid ones.
    expect(counts.rejected).toBeGreaterThan(2_000);
    expect(counts.fast).toBeGreaterThan(800);
    expect(counts.fast).toBeGreaterThan(counts['slow-ok'] * 4);
  });

  it('leaves non-objects and unknown types to the schema', () => {
    for (const v of [null, 'x', 1, [], [templates[0]], { type: 'nope' }, { type: 'constructor' }, Object.create(null)]) {
      expect(fastFeedbackEvent(v)).toBeUndefined();
      expect(parseFeedbackEvent(v).success).toBe(false);
    }
  });
});
