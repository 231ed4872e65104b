// The shared group-commit scheduler: units added in one event-loop turn commit together, a batch takes whole units
// in order under its row and character bounds (the first unit always, however large), and units added in a later
// turn go in a later batch.
import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit';

interface U {
  id: string;
  rows: unknown[];
  chars?: number;
  done: () => void;
}

function recorder(o: { maxRows: number; maxChars?: number }) {
  const batches: string[][] = [];
  const group = new GroupCommit<U>({
    ...o,
    commit: async (units) => {
      batches.push(units.map((u) => u.id));
      return () => units.forEach((u) => u.done());
    },
  });
  const add = (id: string, rows: number, chars?: number) => new Promise<void>((done) => group.add({ id, rows: new Array(rows).fill(0), chars, done }));
  return { batches, add };
}

describe('GroupCommit', () => {
  it('commits the units of one turn together, bounded by rows, the first unit always', async () => {
    const { batches, add } = recorder({ maxRows: 5 });
    await Promise.all([add('a', 7), add('b', 2), add('c', 2), add('d', 1), add('e', 3)]);
    expect(batches).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
  });

  it('bounds a batch by characters too', async () => {
    const { batches, add } = recorder({ maxRows: 100, maxChars: 10 });
    await Promise.all([add('a', 1, 4), add('b', 1, 6), add('c', 1, 1), add('d', 1, 9)]);
    expect(batches).toEqual([['a', 'b'], ['c', 'd']]);
  });

  it('puts units added in a later turn into a later batch', async () => {
    const { batches, add } = recorder({ maxRows: 100 });
    const first = add('a', 1);
    await new Promise((r) => setImmediate(r));
    await Promise.all([first, add('b', 1), add('c', 1)]);
    expect(batches).toEqual([['a'], ['b', 'c']]);
  });
});
