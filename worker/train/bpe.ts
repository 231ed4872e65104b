// Trains byte-level BPE merges on a corpus (Sennrich et al. 2016, GPT-2's byte-level variant): count the
// pre-tokenized words, then repeatedly merge the most frequent adjacent pair of symbols. Pair counts are
// updated incrementally (only the words containing the merged pair are revisited), so 2k merges over the
// Brown corpus take a few seconds. Ties are broken by the smaller pair key, so training is deterministic.
import { pretokenize, Tokenizer } from '../../shared/tokenizer';

const BYTE_OFFSET = 3;
const SPECIALS = 3;

/** Trains a tokenizer with `vocabSize` ids in all (3 specials + 256 bytes + merges). */
export function trainBpe(texts: Iterable<string>, vocabSize: number): Tokenizer {
  const nMerges = vocabSize - SPECIALS - 256;
  if (nMerges < 0) throw new Error(`vocabSize must be at least ${SPECIALS + 256}`);
  const enc = new TextEncoder();
  const wordCount = new Map<string, number>();
  for (const t of texts) for (const w of pretokenize(t)) wordCount.set(w, (wordCount.get(w) ?? 0) + 1);

  const words: number[][] = [];
  const counts: number[] = [];
  for (const [w, c] of wordCount) {
    words.push(Array.from(enc.encode(w), (b) => b + BYTE_OFFSET));
    counts.push(c);
  }
  const pairCount = new Map<number, number>();
  const pairWords = new Map<number, Set<number>>();
  const addWord = (wi: number, sign: 1 | -1) => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const k = w[i] * 65536 + w[i + 1];
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * counts[wi]);
      if (sign > 0) {
        let s = pairWords.get(k);
        if (!s) pairWords.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWord(wi, 1);

  const merges: [number, number][] = [];
  for (let m = 0; m < nMerges; m++) {
    let bestKey = -1, bestCount = 0;
    for (const [k, c] of pairCount) if (c > bestCount || (c === bestCount && c > 0 && k < bestKey)) (bestKey = k), (bestCount = c);
    if (bestKey < 0 || bestCount < 2) break;
    const a = Math.floor(bestKey / 65536), b = bestKey % 65536;
    const id = SPECIALS + 256 + m;
    merges.push([a, b]);
    for (const wi of pairWords.get(bestKey) ?? []) {
      const w = words[wi];
      addWord(wi, -1);
      const next: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) (next.push(id), i++);
        else next.push(w[i]);
      }
      words[wi] = next;
      addWord(wi, 1);
    }
    pairCount.delete(bestKey);
    pairWords.delete(bestKey);
  }
  return new Tokenizer(merges);
}
