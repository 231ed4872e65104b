// Seeded pseudo-random numbers for sampling: xoshiro128** (Blackman & Vigna), seeded through splitmix32.
// Each generated sequence owns one stream derived from (request seed, sequence index), so the draws a sequence
// sees do not depend on which other sequences or requests share its batch: same seed + same policy = same text.

/** A generator of uniform floats in [0, 1). */
export interface Rng {
  next(): number;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128**: 128-bit state, period 2^128 - 1, passes BigCrush; 32-bit integer ops only (fast in JS). */
export class Xoshiro128 implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /**
   * @param seed any safe integer (negative allowed: OpenAI seeds are int64); both 32-bit halves are mixed in.
   * @param stream independent stream number (the sequence index within a request).
   */
  constructor(seed: number, stream = 0) {
    if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
    const lo = seed | 0;
    const hi = Math.floor(seed / 2 ** 32) | 0;
    const st = { s: lo ^ Math.imul(hi, 0x27d4eb2f) ^ Math.imul(stream + 1, 0x165667b1) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1; // the all-zero state is a fixed point
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits (two draws), so tiny probabilities are still reachable. */
  next(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A fresh random seed for requests that did not give one (still recorded, so the output can be reproduced). */
export function randomSeed(): number {
  const buf = new Uint32Array(2);
  crypto.getRandomValues(buf);
  return (buf[0] & 0x1fffff) * 2 ** 32 + buf[1]; // 53 bits: a safe integer
}
