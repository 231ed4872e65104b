// The prompt set: openings of Brown sentences from the held-out files (worker/data/brown.ts: every 20th file),
// which the base model never saw in pretraining. Two disjoint sets are drawn from them:
//   - evaluation prompts: never sent with feedback, and chosen inside the API's held-out prompt-hash split
//     (shared/preference-pairs.ts splitOf), so the worker never uses them for PPO rollouts either;
//   - feedback prompts: everything else (about 10% of them fall in the held-out hash split too: those are the
//     pairs the worker holds out to measure the reward model's accuracy against the labeler).
// An opening is the first 3 to 6 words of a sentence (the count drawn per sentence from the seed).
import { splitOf } from '../shared/preference-pairs';
import { Xoshiro128 } from '../shared/sampling/rng';
import { loadBrown } from '../worker/data/brown';

export interface PromptSet {
  feedback: string[];
  evaluation: string[];
}

export interface PromptSetOptions {
  /** Evaluation prompts wanted (fewer if the corpus has fewer). */
  evalCount: number;
  seed: number;
  /** Shortest and longest opening, in words. */
  minWords?: number;
  maxWords?: number;
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const rng = new Xoshiro128(seed, 0x5ff1e);
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [xs[i], xs[j]] = [xs[j], xs[i]];
  }
  return xs;
}

let cached: string[] | undefined;

/** Sentences of the held-out Brown files that read like prose (start with a capital, 8+ words). */
export function heldOutSentences(): string[] {
  if (cached) return cached;
  const out: string[] = [];
  for (const doc of loadBrown().heldOut) {
    for (const line of doc.text.split('\n')) {
      const words = line.split(' ');
      if (words.length >= 8 && /^[A-Z][a-z]/.test(line) && !/[;:()"]/.test(words.slice(0, 6).join(' '))) out.push(line);
    }
  }
  return (cached = out);
}

export function buildPromptSet(o: PromptSetOptions): PromptSet {
  const minW = o.minWords ?? 3;
  const maxW = o.maxWords ?? 6;
  const rng = new Xoshiro128(o.seed, 0x9a0);
  const seen = new Set<string>();
  const evalCandidates: string[] = [];
  const rest: string[] = [];
  const opening = (words: string[], k: number) => words.slice(0, k).join(' ').replace(/[,;:]$/, '');
  for (const sentence of heldOutSentences()) {
    const words = sentence.split(' ');
    const k = minW + Math.floor(rng.next() * (maxW - minW + 1));
    // A sentence whose opening at some length falls in the held-out hash split is an evaluation candidate at
    // that length (about a third of sentences); the others give feedback prompts. A sentence never gives both.
    let evalPrompt: string | undefined;
    for (let j = 0; j <= maxW - minW && evalPrompt === undefined; j++) {
      const p = opening(words, minW + ((k - minW + j) % (maxW - minW + 1)));
      if (splitOf(p) === 'heldout' && !seen.has(p)) evalPrompt = p;
    }
    const prompt = evalPrompt ?? opening(words, k);
    if (seen.has(prompt)) continue;
    seen.add(prompt);
    (evalPrompt !== undefined ? evalCandidates : rest).push(prompt);
  }
  shuffle(evalCandidates, o.seed);
  const evaluation = evalCandidates.slice(0, o.evalCount);
  // Held-out-hash prompts not needed for evaluation go to feedback: they give the RM its held-out pairs.
  const feedback = shuffle([...rest, ...evalCandidates.slice(o.evalCount)], o.seed + 1);
  return { feedback, evaluation };
}
