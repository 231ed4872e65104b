// Hidden preferences of simulated users: each scores a response (higher = liked more), sets the Bradley-Terry
// temperature its labeler answers with, and knows how such a user would correct an output. The learner never
// sees a score: it only sees the comparisons, thumbs and corrections the labeler sends through the API
// (METHOD.md, "How to show that it learns"). Two ship, deliberately unlike each other:
//   - vader: VADER sentiment (compound in [−1, 1]) of the response — the default;
//   - topic: how many home-and-family words the response uses (a topic preference, counted, capped at 3).
// Scores read the response only, never the prompt: the prompt is the same on both sides of every comparison.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import vader from 'vader-sentiment';
import type { Rng } from '../shared/sampling/rng';

export interface Preference {
  readonly name: string;
  readonly description: string;
  /** The hidden score of a response. */
  score(response: string): number;
  /** Bradley-Terry temperature T on the score's scale: P(A preferred) = σ((s(A) − s(B)) / T). */
  readonly temperature: number;
  /** Score at which a thumb is up or down with equal probability (P(up) = σ((s − midpoint) / T)). */
  readonly thumbsMidpoint: number;
  /** What this user would type to fix `response`: an output they score higher. */
  correct(response: string, rng: Rng): string;
}

const pick = <T>(xs: readonly T[], rng: Rng): T => xs[Math.floor(rng.next() * xs.length)];
export const bare = (w: string) => w.toLowerCase().replace(/^[^a-z']+|[^a-z']+$/g, '');

let lexicon: Map<string, number> | undefined;
/** VADER's own word valences (vader_lexicon.txt: word, mean valence, ...). */
export function vaderLexicon(): Map<string, number> {
  if (lexicon) return lexicon;
  const dir = dirname(createRequire(import.meta.url).resolve('vader-sentiment/package.json'));
  lexicon = new Map();
  for (const line of readFileSync(join(dir, 'vader_lexicon.txt'), 'utf8').split('\n')) {
    const [word, valence] = line.split('\t');
    if (word && valence) lexicon.set(word, Number(valence));
  }
  return lexicon;
}

/** Positive words common in Brown-era English (all positive in VADER's lexicon). */
const POSITIVE_WORDS = ['good', 'great', 'happy', 'fine', 'pleasant', 'beautiful', 'wonderful', 'glad', 'nice', 'best', 'lovely', 'perfect'];

const vaderCompound = (text: string) => vader.SentimentIntensityAnalyzer.polarity_scores(text).compound;

export const vaderPreference: Preference = {
  name: 'vader',
  description: 'VADER sentiment (compound score in [-1, 1]) of the response: users like upbeat text',
  score: vaderCompound,
  temperature: 0.1,
  thumbsMidpoint: 0,
  correct(response, rng) {
    // The user edits the output as little as it takes: every word that reads negative becomes an upbeat one,
    // and one upbeat adjective goes in before a content word (4+ letters). The demonstration keeps the
    // output's length and wording, so the pair (edit > output) differs only where the user's taste does —
    // what a reward model can learn from — and imitating it costs the policy little KL. Should the edit not
    // score higher (VADER's negation rules), the user adds an upbeat sentence instead.
    const lex = vaderLexicon();
    const parts = response.split(/(\s+)/);
    for (let i = 0; i < parts.length; i++) if ((lex.get(bare(parts[i])) ?? 0) < 0) parts[i] = parts[i].replace(/[A-Za-z']+/, pick(POSITIVE_WORDS, rng));
    const slots = parts.map((w, i) => [w, i] as const).filter(([w]) => /^[a-z]/.test(w) && bare(w).length >= 4);
    if (slots.length) {
      const [w, i] = pick(slots, rng);
      parts[i] = `${pick(POSITIVE_WORDS, rng)} ${w}`;
    }
    const edited = parts.join('');
    if (vaderCompound(edited) > vaderCompound(response)) return edited;
    return `${edited.replace(/\s+$/, '')} It was ${pick(POSITIVE_WORDS, rng)}.`;
  },
};

export const TOPIC_WORDS: ReadonlySet<string> = new Set([
  'home', 'homes', 'house', 'houses', 'family', 'families', 'mother', 'mothers', 'father', 'fathers', 'child', 'children',
  'wife', 'husband', 'son', 'sons', 'daughter', 'daughters', 'baby', 'boy', 'boys', 'girl', 'girls', 'brother', 'brothers',
  'sister', 'sisters', 'parents', 'kitchen', 'garden', 'room', 'door', 'friend', 'friends', 'love', 'marriage', 'mrs', 'mr',
]);
const TOPIC_INSERTS = ['home', 'family', 'mother', 'father', 'children', 'wife', 'house', 'friends', 'garden', 'daughter'];
/** More than this many topic words earns nothing more (else repeating one word would be the optimum). */
const TOPIC_CAP = 3;

export const topicPreference: Preference = {
  name: 'topic',
  description: `home-and-family topic: number of words from a ${TOPIC_WORDS.size}-word list in the response, capped at ${TOPIC_CAP}`,
  score: (response) => Math.min(TOPIC_CAP, response.split(/\s+/).filter((w) => TOPIC_WORDS.has(bare(w))).length),
  temperature: 0.5,
  thumbsMidpoint: 0.5,
  correct(response, rng) {
    // The user swaps one content word (4+ letters, not already on topic) for a topic word, or adds one.
    const words = response.split(/(\s+)/);
    const slots = words.map((w, i) => [w, i] as const).filter(([w]) => bare(w).length >= 4 && !TOPIC_WORDS.has(bare(w)));
    const word = pick(TOPIC_INSERTS, rng);
    if (slots.length === 0) return `${response.replace(/\s+$/, '')} at home with the ${word}`.trimStart();
    const [w, i] = pick(slots, rng);
    words[i] = w.replace(/[A-Za-z']+/, word);
    return words.join('');
  },
};

export const PREFERENCES: Readonly<Record<string, Preference>> = { vader: vaderPreference, topic: topicPreference };

export function preferenceByName(name: string): Preference {
  const p = PREFERENCES[name];
  if (!p) throw new Error(`unknown preference "${name}" (known: ${Object.keys(PREFERENCES).join(', ')})`);
  return p;
}
