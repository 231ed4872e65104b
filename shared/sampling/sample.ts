// One token from one row of logits: temperature, then top-k, then top-p (nucleus) over the renormalised
// top-k set, as Hugging Face's logits warpers chain them. Runs once per sequence per decode step, so it avoids
// sorting the whole vocabulary: top-k keeps a k-sized heap, top-p sorts only a candidate set that provably
// contains the nucleus.

/** Per-sequence sampling parameters (already validated). */
export interface SamplingParams {
  /** 0 = greedy (argmax); otherwise logits are divided by it before softmax. */
  temperature: number;
  /** Nucleus mass in (0, 1]; 1 disables it. */
  topP: number;
  /** Keep only the k most likely tokens; 0 disables it. */
  topK: number;
}

export interface SampledToken {
  id: number;
  /**
   * log p(id) under the temperature-scaled, unfiltered distribution (temperature 1 when greedy): the policy's
   * own log-probability of the action at temperature 1, which is what PPO's ratio needs.
   */
  logprob: number;
}

/**
 * @param logits the whole logits buffer; the row is logits[offset .. offset + vocab)
 * @param u a uniform draw in [0, 1) (ignored when greedy)
 */
export function sampleToken(logits: Float32Array, offset: number, vocab: number, p: SamplingParams, u: number): SampledToken {
  const t = p.temperature > 0 ? p.temperature : 1;
  const invT = 1 / t;
  let max = -Infinity;
  let argmax = 0; // the first maximum: greedy's token (ties: lower id)
  for (let i = 0; i < vocab; i++) {
    if (logits[offset + i] > max) {
      max = logits[offset + i];
      argmax = i;
    }
  }
  // probs[i] = exp((l_i - max) / t), unnormalised. One scratch buffer for every call: this runs once per sequence
  // per step, and a fresh array each time was a large share of the sampler's garbage.
  const probs = scratch(vocab);
  let sum = 0;
  for (let i = 0; i < vocab; i++) {
    const e = expNonPositive((logits[offset + i] - max) * invT);
    probs[i] = e;
    sum += e;
  }
  // log p(id) = (l_id - max) / t - log sum. No closure for it: this function runs once per sequence per step.
  const logZ = Math.log(sum);

  if (p.temperature === 0) return { id: argmax, logprob: (logits[offset + argmax] - max) * invT - logZ };

  const useTopK = p.topK > 0 && p.topK < vocab;
  const useTopP = p.topP < 1;
  if (!useTopK && !useTopP) {
    const id = walkAll(probs, u * sum, vocab);
    return { id, logprob: (logits[offset + id] - max) * invT - logZ };
  }

  // Candidates in descending probability (ties: lower id first).
  let cand: number[];
  if (useTopK) cand = topKIndices(probs, vocab, p.topK);
  else cand = nucleusCandidates(probs, vocab, sum, p.topP);

  if (useTopP) {
    // Over the renormalised top-k set when top-k ran first, else over the whole vocabulary.
    let kept = 0;
    if (useTopK) for (const i of cand) kept += probs[i];
    else kept = sum;
    const target = p.topP * kept;
    let cum = 0;
    let n = 0;
    while (n < cand.length) {
      cum += probs[cand[n]];
      n++;
      if (cum >= target) break;
    }
    cand = cand.slice(0, n);
  }
  let mass = 0;
  for (const i of cand) mass += probs[i];
  const id = walk(probs, cand, u * mass, cand.length);
  return { id, logprob: (logits[offset + id] - max) * invT - logZ };
}

/**
 * sampleToken at temperature 1 with no top-k or top-p, from probabilities the session already computed (the step
 * graph's `probs` output, softmax in float32 by onnxruntime: step-graph.ts): one pass for the sum, one walk. The
 * draw `u` picks the same token as sampleToken but where float32 rounding moves a boundary past it (~1e-7 of the
 * mass); the log-probability is float32-exact.
 */
export function sampleFromProbs(probs: Float32Array, offset: number, vocab: number, u: number): SampledToken {
  let sum = 0;
  for (let i = offset; i < offset + vocab; i++) sum += probs[i];
  const target = u * sum;
  let cum = 0;
  let last = offset;
  for (let i = offset; i < offset + vocab; i++) {
    const q = probs[i];
    if (q === 0) continue;
    cum += q;
    last = i;
    if (cum > target) break;
  }
  return { id: last - offset, logprob: Math.log(probs[last] / sum) };
}

/** True when sampleFromProbs applies: plain sampling at temperature 1. */
export const plainSampling = (temperature: number, topP: number, topK: number) => temperature === 1 && topP >= 1 && topK <= 0;

/** POW2[k + POW2_BIAS] = 2^k for k in [-POW2_BIAS, 0]: the exponent half of expNonPositive. */
const POW2_BIAS = 1100;
const POW2 = Float64Array.from({ length: POW2_BIAS + 1 }, (_, k) => 2 ** (k - POW2_BIAS));

/**
 * exp(x) for x <= 0: 2^n (table) times a degree-7 Taylor polynomial of e^q, |q| <= ln2/2; relative error < 1e-8
 * (sample.test.ts). About 2.5x cheaper than Math.exp in sampleToken, which runs it vocab times per token.
 */
export function expNonPositive(x: number): number {
  if (x < -740) x = -740;
  const n = Math.floor(x * Math.LOG2E + 0.5);
  const q = x - n * Math.LN2;
  return (1 + q * (1 + q * (0.5 + q * (1 / 6 + q * (1 / 24 + q * (1 / 120 + q * (1 / 720 + q / 5040))))))) * POW2[n + POW2_BIAS];
}

let scratchBuf = new Float64Array(0);
function scratch(n: number): Float64Array {
  if (scratchBuf.length < n) scratchBuf = new Float64Array(n);
  return scratchBuf.length === n ? scratchBuf : scratchBuf.subarray(0, n);
}

/** Inverse CDF over `order`: the first index whose cumulative mass exceeds `target`. */
function walk(probs: Float64Array, order: number[], target: number, n: number): number {
  let cum = 0;
  let last = 0;
  for (let j = 0; j < n; j++) {
    const i = order[j];
    if (probs[i] === 0) continue;
    cum += probs[i];
    last = i;
    if (cum > target) return i;
  }
  return last; // rounding left target at the very top: the last token with mass
}

/** walk over 0..n-1 (the common case: no top-k or top-p), without the indirection. */
function walkAll(probs: Float64Array, target: number, n: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < n; i++) {
    const q = probs[i];
    if (q === 0) continue;
    cum += q;
    last = i;
    if (cum > target) return i;
  }
  return last;
}

const before = (probs: Float64Array, a: number, b: number) => probs[a] > probs[b] || (probs[a] === probs[b] && a < b);

/** The k most likely indices, most likely first, via a size-k min-heap (O(V log k)). */
export function topKIndices(probs: Float64Array, vocab: number, k: number): number[] {
  const heap: number[] = []; // heap[0] = the weakest kept index
  const weaker = (a: number, b: number) => before(probs, b, a);
  const up = (j: number) => {
    while (j > 0) {
      const parent = (j - 1) >> 1;
      if (!weaker(heap[j], heap[parent])) break;
      [heap[j], heap[parent]] = [heap[parent], heap[j]];
      j = parent;
    }
  };
  const down = (j: number) => {
    for (;;) {
      const l = 2 * j + 1;
      const r = l + 1;
      let m = j;
      if (l < heap.length && weaker(heap[l], heap[m])) m = l;
      if (r < heap.length && weaker(heap[r], heap[m])) m = r;
      if (m === j) return;
      [heap[j], heap[m]] = [heap[m], heap[j]];
      j = m;
    }
  };
  for (let i = 0; i < vocab; i++) {
    if (heap.length < k) {
      heap.push(i);
      up(heap.length - 1);
    } else if (before(probs, i, heap[0])) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => (before(probs, a, b) ? -1 : 1));
}

/**
 * A descending-sorted candidate list that contains the top-p nucleus: all tokens with prob >= threshold, the
 * threshold lowered until their mass reaches topP (then every nucleus member is among them).
 */
function nucleusCandidates(probs: Float64Array, vocab: number, sum: number, topP: number): number[] {
  let maxP = 0;
  for (let i = 0; i < vocab; i++) if (probs[i] > maxP) maxP = probs[i];
  let threshold = maxP / 64;
  for (;;) {
    const cand: number[] = [];
    let mass = 0;
    for (let i = 0; i < vocab; i++) {
      if (probs[i] >= threshold) {
        cand.push(i);
        mass += probs[i];
      }
    }
    if (mass >= topP * sum || threshold === 0) return cand.sort((a, b) => (before(probs, a, b) ? -1 : 1));
    threshold = threshold < 1e-300 ? 0 : threshold / 64;
  }
}
