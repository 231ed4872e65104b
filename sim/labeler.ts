// The simulated labeler: answers with a hidden preference plus Bradley-Terry noise (METHOD.md). Every call
// takes the random stream to draw from, so each interaction owns its stream and a simulation replays exactly
// however its concurrent requests interleave.
import type { Rng } from '../shared/sampling/rng';
import type { Preference } from './preferences';
import { sigmoid } from './stats';

export class Labeler {
  constructor(readonly preference: Preference) {}

  score(text: string): number {
    return this.preference.score(text);
  }

  /** P(a preferred to b) = σ((s(a) − s(b)) / T). */
  pPrefers(a: string, b: string): number {
    return sigmoid((this.preference.score(a) - this.preference.score(b)) / this.preference.temperature);
  }

  /** True when the user sees no difference between `a` and `b` (equal hidden scores): such a user answers
   *  "no preference" instead of a comparison (Stiennon et al. and the HH data keep no ties: a coin flip teaches
   *  a reward model nothing). The win-rate evaluation still counts these as coin flips (sim/evaluate.ts). */
  indifferent(a: string, b: string): boolean {
    return this.preference.score(a) === this.preference.score(b);
  }

  /** True when a thumb would be a coin flip (score exactly at the midpoint): the user leaves no thumb. */
  noOpinion(text: string): boolean {
    return this.preference.score(text) === this.preference.thumbsMidpoint;
  }

  /** One noisy answer: true when `a` is preferred. */
  prefers(a: string, b: string, rng: Rng): boolean {
    return rng.next() < this.pPrefers(a, b);
  }

  /** One noisy thumb: up with P = σ((s − midpoint) / T). */
  thumb(text: string, rng: Rng): 'up' | 'down' {
    const p = sigmoid((this.preference.score(text) - this.preference.thumbsMidpoint) / this.preference.temperature);
    return rng.next() < p ? 'up' : 'down';
  }

  correct(text: string, rng: Rng): string {
    return this.preference.correct(text, rng);
  }
}
