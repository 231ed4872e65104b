// The simulated users. Each interaction is what an app built on prefloop would do: ask POST /v1/generations
// for n = 2 outputs on a prompt, show them, and send what the user said through POST /v1/feedback/batch:
//   - comparison (most often): the labeler picks one with Bradley-Terry noise → one comparison event, unless the
//     user sees no difference (equal hidden scores) and answers "no preference": no event;
//   - thumbs: a thumb on each output the user has an opinion of → up to two thumbs events (an up and a down on
//     one prompt also make a pair);
//   - correction: the user rewrites the output they like less → one correction event (a pair + a demonstration).
// Interactions are planned one at a time from a per-interaction random stream (prompt, seed, kind, answers),
// then run `users` at a time; so interaction i's prompt, seed and answers depend on i alone. (Abstentions give
// their reserved events back, so near the end of a round which interactions are planned, and whether a thumbs
// interaction must shrink to a comparison, can depend on the order in which concurrent ones finish.)
import { Xoshiro128 } from '../shared/sampling/rng';
import type { FeedbackEvent, PrefloopClient } from './client';
import type { Labeler } from './labeler';

export interface PopulationConfig {
  /** Simulated users acting at once (concurrent interactions). */
  users: number;
  /** Share of interactions answered by a comparison, thumbs, a correction (normalised). */
  mix: { comparison: number; thumbs: number; correction: number };
  /** Tokens per generated output. */
  maxTokens: number;
  /** Sampling temperature the app asks for. */
  temperature: number;
}

export const defaultPopulation: PopulationConfig = {
  users: 8,
  mix: { comparison: 0.55, thumbs: 0.3, correction: 0.15 },
  maxTokens: 24,
  temperature: 1,
};

export interface PlayStats {
  interactions: number;
  events: number;
  byType: Record<'comparison' | 'thumbs' | 'correction', number>;
  /** Interactions the user answered "no preference" to (ties, no thumb either way): no event sent. */
  abstained: number;
  /** Mean hidden score of the outputs the users were shown in this stretch (the live policy's, on train traffic). */
  meanShownScore: number;
  /** Policy versions that served the generations, with counts. */
  servedBy: Record<string, number>;
}

type Kind = 'comparison' | 'thumbs' | 'correction';

export class Population {
  private interaction = 0;
  private eventsSent = 0;

  constructor(
    private readonly client: PrefloopClient,
    private readonly labeler: Labeler,
    private readonly prompts: readonly string[],
    private readonly cfg: PopulationConfig,
    private readonly seed: number,
  ) {
    if (prompts.length === 0) throw new Error('no feedback prompts');
  }

  get totalEvents(): number {
    return this.eventsSent;
  }

  private kindOf(u: number): Kind {
    const { comparison, thumbs, correction } = this.cfg.mix;
    const total = comparison + thumbs + correction;
    if (u < comparison / total) return 'comparison';
    if (u < (comparison + thumbs) / total) return 'thumbs';
    return 'correction';
  }

  /** Plays interactions until exactly `events` more feedback events have been accepted by the API. */
  async play(events: number): Promise<PlayStats> {
    const stats: PlayStats = { interactions: 0, events: 0, byType: { comparison: 0, thumbs: 0, correction: 0 }, abstained: 0, meanShownScore: 0, servedBy: {} };
    let shownSum = 0;
    let shownN = 0;
    // Events not yet planned or sent; an interaction reserves the most it could send and returns what it did not
    // (an abstention), so exactly `events` are sent however the concurrent interactions finish.
    let budget = events;
    const plan = () => {
      if (budget <= 0) return undefined;
      const i = this.interaction++;
      const rng = new Xoshiro128(this.seed, i);
      const prompt = this.prompts[Math.floor(rng.next() * this.prompts.length)];
      const seed = Math.floor(rng.next() * 2 ** 31);
      let kind = this.kindOf(rng.next());
      if (kind === 'thumbs' && budget < 2) kind = 'comparison';
      const reserved = kind === 'thumbs' ? 2 : 1;
      budget -= reserved;
      return { i, rng, prompt, seed, kind, reserved, user: `user-${i % Math.max(1, this.cfg.users * 4)}` };
    };
    const worker = async () => {
      for (let p = plan(); p; p = plan()) {
        const g = await this.client.generate({ prompt: p.prompt, n: 2, max_tokens: this.cfg.maxTokens, temperature: this.cfg.temperature, seed: p.seed });
        const [a, b] = g.generations;
        stats.servedBy[`v${g.policy_version}`] = (stats.servedBy[`v${g.policy_version}`] ?? 0) + 1;
        shownSum += this.labeler.score(a.text) + this.labeler.score(b.text);
        shownN += 2;
        const meta = { sim_interaction: p.i };
        const out: FeedbackEvent[] = [];
        if (p.kind === 'comparison') {
          if (this.labeler.indifferent(a.text, b.text)) {
            budget += p.reserved;
            stats.abstained++;
            continue;
          }
          const aWins = this.labeler.prefers(a.text, b.text, p.rng);
          const [w, l] = aWins ? [a, b] : [b, a];
          out.push({ type: 'comparison', id: `sim-${this.seed}-${p.i}-c`, user_id: p.user, chosen_generation_id: w.id, rejected_generation_id: l.id, metadata: meta });
        } else if (p.kind === 'thumbs') {
          for (const [k, x] of [a, b].entries()) {
            if (this.labeler.noOpinion(x.text)) continue;
            out.push({ type: 'thumbs', id: `sim-${this.seed}-${p.i}-t${k}`, user_id: p.user, generation_id: x.id, value: this.labeler.thumb(x.text, p.rng), metadata: meta });
          }
        } else {
          const worse = this.labeler.score(a.text) <= this.labeler.score(b.text) ? a : b;
          out.push({ type: 'correction', id: `sim-${this.seed}-${p.i}-x`, user_id: p.user, generation_id: worse.id, correction: this.labeler.correct(worse.text, p.rng), metadata: meta });
        }
        budget += p.reserved - out.length;
        if (out.length === 0) {
          stats.abstained++;
          continue;
        }
        const r = await this.client.sendFeedback(out);
        if (r.failed > 0) throw new Error(`feedback refused: ${JSON.stringify(r.results.filter((x) => x.status >= 400)).slice(0, 500)}`);
        stats.interactions++;
        stats.events += out.length;
        stats.byType[p.kind] += out.length;
        this.eventsSent += out.length;
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.cfg.users) }, worker));
    stats.meanShownScore = shownN ? shownSum / shownN : NaN;
    return stats;
  }
}
