// Language-model data as one token stream: each document is [BOS, ...tokens]. Training windows of T+1
// tokens are drawn at seeded random offsets; held-out evaluation slides windows over the stream so that
// every document token is predicted exactly once, with at least T/2 tokens of context after the first window.
import type { Tokenizer } from '../../shared/tokenizer';

export interface TokenStream {
  tokens: Uint16Array;
  /** UTF-8 bytes of the text the stream encodes (BOS excluded): the denominator of bits per byte. */
  bytes: number;
}

export function buildStream(docs: { text: string }[], tok: Tokenizer, buffer?: (n: number) => ArrayBufferLike): TokenStream {
  const parts: number[][] = [];
  let n = 0, bytes = 0;
  const enc = new TextEncoder();
  for (const d of docs) {
    const ids = [tok.bosId, ...tok.encode(d.text)];
    parts.push(ids);
    n += ids.length;
    bytes += enc.encode(d.text).length;
  }
  const tokens = new Uint16Array(buffer ? buffer(n * 2) : new ArrayBuffer(n * 2));
  let o = 0;
  for (const p of parts) (tokens.set(p, o), (o += p.length));
  return { tokens, bytes };
}

/** mulberry32: a seeded PRNG whose whole state is one uint32 (checkpointed with the run). */
export class Rng {
  constructor(public state: number) {}
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** B random window starts for windows of T+1 tokens. */
export function sampleStarts(rng: Rng, streamLength: number, B: number, T: number): Int32Array {
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) out[b] = Math.floor(rng.next() * (streamLength - T - 1));
  return out;
}

export interface EvalWindow {
  start: number;
  /** Targets at positions < countFrom are context only (already counted by the previous window). */
  countFrom: number;
}

/** Windows of T+1 tokens, stride T/2, covering targets 1..len-1 exactly once. */
export function evalWindows(streamLength: number, T: number): EvalWindow[] {
  const stride = Math.max(1, Math.floor(T / 2));
  const out: EvalWindow[] = [];
  let covered = 0; // targets with index <= covered are counted
  for (let start = 0; covered < streamLength - 1; start += stride) {
    const s = Math.min(start, Math.max(0, streamLength - T - 1));
    const lastTarget = Math.min(s + T, streamLength - 1);
    out.push({ start: s, countFrom: covered - s }); // target position j predicts token s+j+1
    covered = lastTarget;
    if (s !== start) break;
  }
  return out;
}

/** Gathers windows of T+1 tokens into one flat Int32Array (short windows at the stream end are not allowed). */
export function gatherWindows(tokens: Uint16Array, starts: ArrayLike<number>, T: number): Int32Array {
  const out = new Int32Array(starts.length * (T + 1));
  for (let b = 0; b < starts.length; b++) out.set(tokens.subarray(starts[b], starts[b] + T + 1), b * (T + 1));
  return out;
}
