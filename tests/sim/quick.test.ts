// Issue 6's proof in the test suite: the quick simulation (tiny base model, sim/presets.ts QUICK_SETTINGS)
// starts the real service (npm start's entry, embedded SQLite, in-process worker and scheduler), plays
// simulated users with the VADER preference through the public REST API, lets the scheduler train, and fails
// unless the labeler prefers the final live policy to the base with a 95% Wilson lower bound above 0.5.
// Everything is seeded (prompts, users, labeler, generation seeds, training), so a pass is not luck.
// Budget: under 2 minutes on a quiet machine (the tiny base is committed as models/tiny).
import { describe, expect, it } from 'vitest';
import { runSimulation } from '../../sim/loop';
import { QUICK_SETTINGS } from '../../sim/presets';
import { ensureTinyBase } from '../../sim/tiny-base';

describe('simulated users (quick)', () => {
  it(
    'feedback makes the live policy beat the base by the users’ own judgement',
    async () => {
      const baseModelDir = await ensureTinyBase();
      const lines: string[] = [];
      const r = await runSimulation({ ...QUICK_SETTINGS, preference: 'vader', baseModelDir, log: (l) => lines.push(l) });
      const report = `\n${lines.join('\n')}`;
      expect(r.events, report).toBeLessThanOrEqual(QUICK_SETTINGS.maxEvents);
      expect(r.versions.length, report).toBeGreaterThanOrEqual(1);
      for (const v of r.versions) {
        expect(v.kl_to_base, report).not.toBeNull();
        expect(v.rm_accuracy, report).not.toBeNull();
      }
      expect(r.win_rate_ci_low, report).toBeGreaterThan(0.5);
    },
    20 * 60_000,
  );
});
