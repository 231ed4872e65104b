// Unit tests of the simulation's parts that need no server: statistics, preferences, labeler, prompts, chart.
import { describe, expect, it } from 'vitest';
import { splitOf } from '../shared/preference-pairs';
import { Xoshiro128 } from '../shared/sampling/rng';
import { renderChart } from './chart';
import { Labeler } from './labeler';
import { topicPreference, vaderPreference } from './preferences';
import { buildPromptSet } from './prompts';
import { bootstrapMean, wilson } from './stats';

describe('wilson', () => {
  it('matches the textbook interval and stays inside [0, 1]', () => {
    // 60 of 100: Wilson 95% = [0.5020, 0.6906] (e.g. R's prop.test without continuity correction).
    const w = wilson(60, 100);
    expect(w.low).toBeCloseTo(0.502, 3);
    expect(w.high).toBeCloseTo(0.6906, 3);
    expect(wilson(0, 10).low).toBe(0);
    expect(wilson(10, 10).high).toBeCloseTo(1, 12);
  });
  it('bootstrap interval brackets the mean', () => {
    const xs = Array.from({ length: 200 }, (_, i) => (i % 10) / 10);
    const b = bootstrapMean(xs, 3);
    expect(b.low).toBeLessThan(b.mean);
    expect(b.high).toBeGreaterThan(b.mean);
    expect(b.mean).toBeCloseTo(0.45, 6);
  });
});

describe('preferences and labeler', () => {
  it('vader scores upbeat text higher and corrections raise the score', () => {
    expect(vaderPreference.score('It was a wonderful, happy day')).toBeGreaterThan(0.5);
    expect(vaderPreference.score('the war was a terrible failure')).toBeLessThan(-0.5);
    const rng = new Xoshiro128(1);
    for (const t of ['the war was a terrible failure', 'He said that the', 'bad']) {
      expect(vaderPreference.score(vaderPreference.correct(t, rng))).toBeGreaterThan(vaderPreference.score(t));
    }
    // A correction continues the prompt where the output did: an output's leading space is kept.
    expect(vaderPreference.correct(' went to the store', rng)).toMatch(/^ [a-z]/);
    expect(topicPreference.correct(' went to the store', rng)).toMatch(/^ /);
  });
  it('topic counts home-and-family words (capped) and corrections add one', () => {
    expect(topicPreference.score('The mother and her children went home.')).toBe(3);
    expect(topicPreference.score('Mother mother mother mother mother')).toBe(3);
    expect(topicPreference.score('The committee voted on taxes')).toBe(0);
    const rng = new Xoshiro128(2);
    for (const t of ['The committee voted on taxes', 'of the', 'x']) {
      expect(topicPreference.score(topicPreference.correct(t, rng))).toBeGreaterThan(topicPreference.score(t));
    }
  });
  it('answers with Bradley-Terry noise: P(A) = σ(Δs / T)', () => {
    const l = new Labeler(vaderPreference);
    const good = 'a good day';
    const meh = 'a day';
    const p = l.pPrefers(good, meh);
    expect(p).toBeCloseTo(1 / (1 + Math.exp(-(vaderPreference.score(good) - vaderPreference.score(meh)) / vaderPreference.temperature)), 12);
    const rng = new Xoshiro128(7);
    let wins = 0;
    for (let i = 0; i < 4000; i++) if (l.prefers('a fine day', 'a sad day', rng)) wins++;
    const expected = l.pPrefers('a fine day', 'a sad day');
    expect(Math.abs(wins / 4000 - expected)).toBeLessThan(0.03);
    expect(l.pPrefers(meh, meh)).toBe(0.5);
  });
});

describe('prompt set', () => {
  it('keeps evaluation prompts out of feedback and inside the held-out hash split', () => {
    const s = buildPromptSet({ evalCount: 300, seed: 1 });
    expect(s.evaluation).toHaveLength(300);
    expect(s.feedback.length).toBeGreaterThan(1000);
    const fb = new Set(s.feedback);
    for (const p of s.evaluation) {
      expect(fb.has(p)).toBe(false);
      expect(splitOf(p)).toBe('heldout');
    }
    // Some feedback prompts are held out by hash too: the reward model's held-out pairs come from them.
    expect(s.feedback.filter((p) => splitOf(p) === 'heldout').length).toBeGreaterThan(20);
    expect(buildPromptSet({ evalCount: 300, seed: 1 })).toEqual(s);
  });
});

describe('chart', () => {
  it('draws both panels with a point per version plus the base', () => {
    const svg = renderChart(
      [{ label: 'vader', baseHiddenScore: 0.05, points: [{ version: 2, kl: 1.5, winRate: 0.62, ciLow: 0.55, ciHigh: 0.69, hiddenScore: 0.2 }, { version: 3, kl: 3, winRate: 0.8, ciLow: 0.74, ciHigh: 0.85, hiddenScore: 0.4 }] }],
      'test <chart>',
    );
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('test &lt;chart&gt;');
    expect(svg.match(/<circle/g)).toHaveLength(6);
    expect(svg).toContain('v3: win rate 0.800');
  });
});
