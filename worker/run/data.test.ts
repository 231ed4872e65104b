// Which corrections a run's SFT takes: those new since the last successful run (newest first, deduplicated), then an
// optional seeded replay sample of older ones, all within sft.maxDemonstrations.
import { describe, expect, it } from 'vitest';
import { parseTrainingConfig } from '../../shared/training-config';
import { selectDemonstrations, type Row } from './data';

const correction = (seq: number, prompt: string, fix: string): Row => ({ seq, type: 'correction', prompt, response: 'was', correction: fix });
const rows: Row[] = [
  correction(1, 'p1', 'a'),
  { seq: 2, type: 'thumbs', prompt: 'p1', response: 'x', value: 1 },
  correction(3, 'p2', 'b'),
  correction(4, 'p3', 'c'),
  correction(5, 'p4', 'd'),
  correction(6, 'p4', 'd'), // the same demonstration again
  correction(7, 'p5', 'e'),
];
const names = (ds: { prompt: string }[]) => ds.map((d) => d.prompt);

describe('selectDemonstrations', () => {
  it('takes only the corrections after the previous watermark, newest first, once each', () => {
    const { fresh, replay } = selectDemonstrations(rows, 4, parseTrainingConfig({}));
    expect(names(fresh)).toEqual(['p5', 'p4']);
    expect(replay).toEqual([]);
  });

  it('adds a seeded replay sample of older ones within maxDemonstrations', () => {
    const cfg = parseTrainingConfig({ sft: { replayDemonstrations: 2, maxDemonstrations: 3 } });
    const a = selectDemonstrations(rows, 4, cfg);
    expect(names(a.fresh)).toEqual(['p5', 'p4']);
    expect(a.replay).toHaveLength(1); // room for one under maxDemonstrations
    expect(['p1', 'p2', 'p3']).toContain(a.replay[0].prompt);
    expect(selectDemonstrations(rows, 4, cfg)).toEqual(a);
    const first = selectDemonstrations(rows, 0, cfg); // the first run: everything is new
    expect(names(first.fresh)).toEqual(['p5', 'p4', 'p3']);
    expect(first.replay).toEqual([]);
  });

  it('a demonstration corrected again since the last run counts as new, not as replay', () => {
    const again = [...rows, correction(8, 'p1', 'a')];
    const { fresh, replay } = selectDemonstrations(again, 7, parseTrainingConfig({ sft: { replayDemonstrations: 10 } }));
    expect(names(fresh)).toEqual(['p1']);
    expect(names(replay).sort()).toEqual(['p2', 'p3', 'p4', 'p5']);
  });
});
