import { describe, expect, it } from 'vitest';
import { type PairSourceEvent, demonstrations, pairsForPrompt, pairsFromGroupedEvents, splitOf, toOpenAiRecord } from './preference-pairs';

const P = 'Write a haiku';
const up = (response: string): PairSourceEvent => ({ type: 'thumbs', prompt: P, response, value: 1 });
const down = (response: string): PairSourceEvent => ({ type: 'thumbs', prompt: P, response, value: -1 });
const cmp = (chosen: string, rejected: string, prompt = P): PairSourceEvent => ({ type: 'comparison', prompt, response: chosen, rejected });

describe('pairsForPrompt', () => {
  it('turns a comparison into one pair', () => {
    expect(pairsForPrompt(P, [cmp('a', 'b')])).toEqual([{ prompt: P, chosen: 'a', rejected: 'b', margin: 1 }]);
  });

  it('makes a correction beat the original', () => {
    const pairs = pairsForPrompt(P, [{ type: 'correction', prompt: P, response: 'bad', correction: 'good' }]);
    expect(pairs).toEqual([{ prompt: P, chosen: 'good', rejected: 'bad', margin: 1 }]);
  });

  it('pairs every up with every down on the same prompt, and nothing from thumbs of one sign', () => {
    expect(pairsForPrompt(P, [up('a'), up('b')])).toEqual([]);
    const pairs = pairsForPrompt(P, [up('a'), down('x'), up('b'), down('y')]);
    expect(pairs.map((p) => [p.chosen, p.rejected])).toEqual([
      ['a', 'x'],
      ['a', 'y'],
      ['b', 'x'],
      ['b', 'y'],
    ]);
  });

  it('settles contradicting thumbs on one response by majority, dropping ties', () => {
    // 'a' gets 2 up, 1 down -> up; 'b' 1 up 1 down -> dropped; 'c' down.
    const pairs = pairsForPrompt(P, [up('a'), up('a'), down('a'), up('b'), down('b'), down('c')]);
    expect(pairs.map((p) => [p.chosen, p.rejected])).toEqual([['a', 'c']]);
  });

  it('deduplicates repeated votes and drops a contradicting pair with no majority', () => {
    expect(pairsForPrompt(P, [cmp('a', 'b'), cmp('a', 'b'), cmp('b', 'a')])).toEqual([{ prompt: P, chosen: 'a', rejected: 'b', margin: 1 }]);
    expect(pairsForPrompt(P, [cmp('a', 'b'), cmp('b', 'a')])).toEqual([]);
  });

  it('combines votes from every source on one unordered pair', () => {
    // A comparison says b > a, a correction says a > b, the thumbs say a > b: a wins 2 to 1.
    const pairs = pairsForPrompt(P, [cmp('b', 'a'), { type: 'correction', prompt: P, response: 'b', correction: 'a' }, up('a'), down('b')]);
    expect(pairs).toEqual([{ prompt: P, chosen: 'a', rejected: 'b', margin: 1 }]);
  });

  it('ignores scores and self-comparisons', () => {
    expect(pairsForPrompt(P, [{ type: 'score', prompt: P, response: 'a', value: 0.9 }, cmp('a', 'a')])).toEqual([]);
  });
});

describe('pairsFromGroupedEvents', () => {
  it('never pairs across prompts', async () => {
    const events = [up('a'), down('b'), { ...down('c'), prompt: 'other' }, cmp('x', 'y', 'other')];
    const pairs = [];
    for await (const p of pairsFromGroupedEvents(events)) pairs.push(p);
    expect(pairs.map((p) => [p.prompt, p.chosen, p.rejected])).toEqual([
      [P, 'a', 'b'],
      ['other', 'x', 'y'],
    ]);
  });
});

describe('splitOf', () => {
  it('is stable and holds out roughly the requested fraction', () => {
    expect(splitOf('hello')).toBe(splitOf('hello'));
    let held = 0;
    for (let i = 0; i < 10_000; i++) if (splitOf(`prompt number ${i}`) === 'heldout') held++;
    expect(held / 10_000).toBeGreaterThan(0.08);
    expect(held / 10_000).toBeLessThan(0.12);
    expect(splitOf('anything', 0)).toBe('train');
    expect(splitOf('anything', 1)).toBe('heldout');
  });
});

describe('formats', () => {
  it('writes OpenAI preference records and demonstrations', () => {
    expect(toOpenAiRecord({ prompt: 'p', chosen: 'c', rejected: 'r', margin: 1 })).toEqual({
      input: { messages: [{ role: 'user', content: 'p' }] },
      preferred_output: [{ role: 'assistant', content: 'c' }],
      non_preferred_output: [{ role: 'assistant', content: 'r' }],
    });
    const c = { type: 'correction' as const, prompt: P, response: 'bad', correction: 'good' };
    expect(demonstrations([c, c])).toEqual([{ prompt: P, completion: 'good', original: c.response }]);
  });
});
