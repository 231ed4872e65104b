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
const bare = (w: string) => w.toLowerCase().replace(/^[^a-z']+|[^a-z']+$/g, '');

let lexicon: Map<string, number> | undefined;
/** VADER's own word valences (vader_lexicon.txt: word, mean valence, ...). */
function vaderLexicon(): Map<string, number> {
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
const POSITIVE_ENDINGS = ['good', 'great', 'happy', 'fine', 'pleasant', 'beautiful', 'wonderful', 'glad', 'nice', 'best', 'lovely', 'perfect'];

export const vaderPreference: Preference = {
  name: 'vader',
  description: 'VADER sentiment (compound score in [-1, 1]) of the response: users like upbeat text',
  score: (response) => vader.SentimentIntensityAnalyzer.polarity_scores(response).compound,
  temperature: 0.1,
  thumbsMidpoint: 0,
  correct(response, rng) {
    // The user keeps the start of the output (up to 6 words, minus any that read negative) and finishes it on
    // a positive note: a short demonstration whose upbeat ending falls inside a short response.
    const lex = vaderLexicon();
    const words = response.split(/\s+/).filter((w) => w.length > 0);
    const keep = words.slice(0, Math.min(words.length, 1 + Math.floor(rng.next() * 6)));
    const kept = keep
      .filter((w) => !((lex.get(bare(w)) ?? 0) < 0))
      .join(' ')
      .replace(/[\s,;:.!?-]+$/, '');
    // The output's own leading space stays: the correction continues the prompt exactly where the output did
    // (without it, "The man said" + "went ..." would teach the policy to glue words together).
    const lead = /^\s*/.exec(response)![0];
    return `${lead}${kept}${kept ? ', ' : ''}and it was ${pick(POSITIVE_ENDINGS, rng)}.`;
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
