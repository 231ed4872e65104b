import { describe, expect, it } from 'vitest';
import { newId, newTimeOrderedId } from './ids';

describe('ids', () => {
  it('newId: prefix + 20 base62 characters, distinct', () => {
    const ids = new Set(Array.from({ length: 5000 }, () => newId('fb')));
    expect(ids.size).toBe(5000);
    for (const id of ids) expect(id).toMatch(/^fb_[0-9A-Za-z]{20}$/);
  });

  it('newTimeOrderedId: same shape, sorts by time (as strings, i.e. SQLite BINARY order), random within a millisecond', () => {
    const times = [0, 1, 61, 62, 1_700_000_000_000, 1_700_000_000_001, 1_764_000_000_000, 62 ** 8 - 1];
    const ids = times.map((t) => newTimeOrderedId('fb', t));
    for (const id of ids) expect(id).toMatch(/^fb_[0-9A-Za-z]{20}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(ids[0].slice(3, 11)).toBe('00000000');
    expect(ids[3].slice(3, 11)).toBe('00000010');
    const same = new Set(Array.from({ length: 5000 }, () => newTimeOrderedId('fb', 1_764_000_000_000)));
    expect(same.size).toBe(5000);
    for (const id of same) expect(id.slice(0, 11)).toBe(ids[6].slice(0, 11));
  });
});
