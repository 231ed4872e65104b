// Byte-level BPE tokenizer (GPT-2 scheme), stored in Hugging Face's `tokenizer.json` format so that
// @huggingface/tokenizers (or the Python `tokenizers`) can load the same file.
//
// Lossless: text is UTF-8 encoded, every byte has its own base token, merges only join adjacent tokens, so
// decode(encode(s)) === s for every well-formed string (emoji, unseen scripts, the empty string). Runs on
// Node and workerd alike: only TextEncoder/TextDecoder, no Node modules.
//
// Ids: 0 = PAD, 1 = BOS, 2 = EOS, 3..258 = the 256 bytes, then one id per merge in merge order.
// encode() never produces a special id from text, even if the text spells "<|eos|>": specials are added by
// the caller, so user text cannot inject an end-of-sequence.

/** GPT-2's pre-tokenizer: words keep their leading space, digits and punctuation runs split apart. */
const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export const SPECIAL_TOKENS = { pad: '<|pad|>', bos: '<|bos|>', eos: '<|eos|>' } as const;
export const PAD_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;
const BYTE_OFFSET = 3;

/** GPT-2's byte → printable unicode char map (how byte-level vocabularies are written in tokenizer.json). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCharCode(cs[i])));
  return out;
}
const BYTE_CHAR = bytesToUnicode();
const CHAR_BYTE = new Map(BYTE_CHAR.map((c, b) => [c, b]));

export function pretokenize(text: string): string[] {
  return text.match(PRETOKENIZE) ?? [];
}

/** The HF tokenizer.json subset this tokenizer reads and writes. */
export interface TokenizerJson {
  version: string;
  added_tokens: { id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean }[];
  normalizer: null;
  pre_tokenizer: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  post_processor: null;
  decoder: { type: 'ByteLevel'; add_prefix_space: boolean; trim_offsets: boolean; use_regex: boolean };
  model: { type: 'BPE'; dropout: null; unk_token: null; continuing_subword_prefix: null; end_of_word_suffix: null; fuse_unk: boolean; byte_fallback: boolean; ignore_merges: boolean; vocab: Record<string, number>; merges: [string, string][] };
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly padId = PAD_ID;
  readonly bosId = BOS_ID;
  readonly eosId = EOS_ID;
  /** Bytes each id stands for (empty for specials). */
  private readonly idBytes: Uint8Array[];
  /** (left id, right id) → merged id; the merged id order is the merge priority. */
  private readonly mergeOf = new Map<number, number>();
  private readonly cache = new Map<string, number[]>();

  /** merges: pairs of ids, merge i creates id 259 + i. */
  constructor(readonly merges: ReadonlyArray<readonly [number, number]>) {
    this.idBytes = [new Uint8Array(0), new Uint8Array(0), new Uint8Array(0)];
    for (let b = 0; b < 256; b++) this.idBytes.push(Uint8Array.of(b));
    merges.forEach(([a, b], i) => {
      const id = BYTE_OFFSET + 256 + i;
      const ab = new Uint8Array(this.idBytes[a].length + this.idBytes[b].length);
      ab.set(this.idBytes[a]);
      ab.set(this.idBytes[b], this.idBytes[a].length);
      this.idBytes.push(ab);
      this.mergeOf.set(a * 65536 + b, id);
    });
    this.vocabSize = this.idBytes.length;
    if (this.vocabSize > 65536) throw new Error('vocabulary larger than 65536 is not supported');
  }

  static byteLevel(): Tokenizer {
    return new Tokenizer([]);
  }

  /** Token ids of `text` (no BOS/EOS added). */
  encode(text: string): number[] {
    const out: number[] = [];
    for (const word of pretokenize(text)) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.bpe(word);
        if (this.cache.size < 100_000) this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
    return out;
  }

  /** Merges a word's bytes, lowest merged id (= earliest merge) first, as HF's BPE model does. */
  private bpe(word: string): number[] {
    const bytes = utf8.encode(word);
    let ids = Array.from(bytes, (b) => b + BYTE_OFFSET);
    while (ids.length > 1) {
      let best = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const m = this.mergeOf.get(ids[i] * 65536 + ids[i + 1]);
        if (m !== undefined && (best === -1 || m < best)) best = m;
      }
      if (best === -1) break;
      const [a, b] = this.merges[best - BYTE_OFFSET - 256];
      const next: number[] = [];
      for (let i = 0; i < ids.length; i++) {
        if (i + 1 < ids.length && ids[i] === a && ids[i + 1] === b) {
          next.push(best);
          i++;
        } else next.push(ids[i]);
      }
      ids = next;
    }
    return ids;
  }

  /** UTF-8 bytes of a token sequence; special tokens are skipped. */
  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let n = 0;
    for (let i = 0; i < ids.length; i++) n += this.tokenBytes(ids[i]).length;
    const out = new Uint8Array(n);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.tokenBytes(ids[i]);
      out.set(b, o);
      o += b.length;
    }
    return out;
  }

  /** Text of a token sequence; invalid UTF-8 (possible in sampled output) becomes U+FFFD. */
  decode(ids: ArrayLike<number>): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }

  tokenBytes(id: number): Uint8Array {
    const b = this.idBytes[id];
    if (!b) throw new Error(`token id ${id} outside vocabulary of ${this.vocabSize}`);
    return b;
  }

  /** A decoder for token streams: push ids as they are sampled, get only whole characters back. */
  streamDecoder(): StreamDecoder {
    return new StreamDecoder(this);
  }

  toJSON(): TokenizerJson {
    const tokenString = (id: number) => Array.from(this.idBytes[id], (b) => BYTE_CHAR[b]).join('');
    const vocab: Record<string, number> = {};
    const specials = [SPECIAL_TOKENS.pad, SPECIAL_TOKENS.bos, SPECIAL_TOKENS.eos];
    specials.forEach((s, id) => (vocab[s] = id));
    for (let id = BYTE_OFFSET; id < this.vocabSize; id++) vocab[tokenString(id)] = id;
    return {
      version: '1.0',
      added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: null,
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
        fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab,
        merges: this.merges.map(([a, b]) => [tokenString(a), tokenString(b)]),
      },
    };
  }

  /** Reads a tokenizer.json written by toJSON() (ids must follow this module's layout). */
  static fromJSON(json: TokenizerJson | string): Tokenizer {
    const j: TokenizerJson = typeof json === 'string' ? JSON.parse(json) : json;
    if (j.model?.type !== 'BPE' || j.pre_tokenizer?.type !== 'ByteLevel') throw new Error('tokenizer.json is not a byte-level BPE');
    const v = j.model.vocab;
    if (v[SPECIAL_TOKENS.pad] !== PAD_ID || v[SPECIAL_TOKENS.bos] !== BOS_ID || v[SPECIAL_TOKENS.eos] !== EOS_ID) throw new Error('tokenizer.json special ids differ from PAD=0, BOS=1, EOS=2');
    for (let b = 0; b < 256; b++) if (v[BYTE_CHAR[b]] !== b + BYTE_OFFSET) throw new Error('tokenizer.json byte ids differ from 3 + byte');
    const merges = j.model.merges.map(([a, b], i): [number, number] => {
      const ia = v[a], ib = v[b];
      if (ia === undefined || ib === undefined || v[a + b] !== BYTE_OFFSET + 256 + i) throw new Error(`tokenizer.json merge ${i} (${a} ${b}) is inconsistent with the vocabulary`);
      return [ia, ib];
    });
    return new Tokenizer(merges);
  }
}

const utf8 = new TextEncoder();
/** Non-streaming decodes keep no state between calls, so one decoder serves them all (a new one per call cost more than the decode). */
const utf8Decoder = new TextDecoder('utf-8');

/** Incremental decoding: holds back the bytes of a character split across tokens until it is complete. */
export class StreamDecoder {
  private readonly dec = new TextDecoder('utf-8');
  constructor(private readonly tok: Tokenizer) {}
  /** Text completed by this token (may be ''). */
  push(id: number): string {
    return this.dec.decode(this.tok.tokenBytes(id), { stream: true });
  }
  /** Flushes what is left (an unfinished character becomes U+FFFD). */
  end(): string {
    return this.dec.decode();
  }
}

/** Decodes a character from a byte-level vocab string (exported for tests and the trainer). */
export function vocabStringToBytes(s: string): Uint8Array {
  return Uint8Array.from(Array.from(s), (c) => {
    const b = CHAR_BYTE.get(c);
    if (b === undefined) throw new Error(`not a byte-level symbol: ${c}`);
    return b;
  });
}
