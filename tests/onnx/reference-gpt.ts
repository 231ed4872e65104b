// A plain-TypeScript GPT-2 forward pass in float64, written straight from the definition with no cache and
// no tricks: the oracle the ONNX graphs are checked against (and a second implementation beside TF.js's).
// Slow (O(B·S²·d) loops) and meant only for the tiny configs tests use.
import type { ModelConfig } from '../../shared/model-config';
import type { RewardPooling } from '../../shared/policy-io';
import type { SafeTensors } from '../../worker/safetensors';
import { backboneShapes, headShapes, type Head } from '../../worker/onnx/weights';

/** Deterministic uniform numbers in [0, 1) (mulberry32), so failing cases can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Random weights under the GPT-2 names. Scales are larger than GPT-2's init (0.02) so attention is far
 * from uniform and a wrong mask, transpose or head split changes the logits by much more than 1e-4.
 */
export function randomWeights(c: ModelConfig, seed: number, heads: Head[]): SafeTensors {
  const r = rng(seed);
  const out: SafeTensors = {};
  const shapes = { ...backboneShapes(c), ...Object.assign({}, ...heads.map((h) => headShapes(c, h))) } as Record<string, number[]>;
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const isLnWeight = /ln_\d\.weight$|ln_f\.weight$/.test(name);
    const scale = name.endsWith('.bias') ? 0.1 : /wte|wpe/.test(name) ? 0.5 : isLnWeight ? 0.2 : 1 / Math.sqrt(shape[0]);
    for (let i = 0; i < n; i++) data[i] = (isLnWeight ? 1 : 0) + (r() * 2 - 1) * scale * Math.sqrt(3);
    out[name] = { dtype: 'F32', shape, data };
  }
  return out;
}

type Mat = Float64Array; // row-major [rows, cols]

function linear(x: Mat, rows: number, w: Float32Array, b: Float32Array, inDim: number, outDim: number): Mat {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let s = b[o];
      for (let k = 0; k < inDim; k++) s += x[r * inDim + k] * w[k * outDim + o];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

function layerNorm(x: Mat, rows: number, d: number, w: Float32Array, b: Float32Array, eps: number): Mat {
  const y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let k = 0; k < d; k++) mean += x[r * d + k];
    mean /= d;
    let v = 0;
    for (let k = 0; k < d; k++) v += (x[r * d + k] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / d + eps);
    for (let k = 0; k < d; k++) y[r * d + k] = (x[r * d + k] - mean) * inv * w[k] + b[k];
  }
  return y;
}

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));

export interface ReferenceOutput {
  /** [S, V] per row */
  logits: Float64Array[];
  /** [S] per row, when v_head is present */
  values?: Float64Array[];
  /** [S] per row, when score is present */
  scores?: Float64Array[];
}

/**
 * Full forward pass, one row at a time (rows are independent). `mask[b][j]` = 0 hides key j from every
 * query; queries attend to keys j ≤ their own index.
 */
export function referenceForward(w: SafeTensors, c: ModelConfig, ids: number[][], mask: number[][], positions: number[][]): ReferenceOutput {
  const d = c.dModel;
  const H = c.nHead;
  const hd = d / H;
  const hidden = c.mlpRatio * d;
  const out: ReferenceOutput = { logits: [], values: w['v_head.weight'] ? [] : undefined, scores: w['score.weight'] ? [] : undefined };
  for (let b = 0; b < ids.length; b++) {
    const S = ids[b].length;
    let x = new Float64Array(S * d);
    for (let s = 0; s < S; s++) {
      for (let k = 0; k < d; k++) x[s * d + k] = w['wte.weight'].data[ids[b][s] * d + k] + w['wpe.weight'].data[positions[b][s] * d + k];
    }
    for (let i = 0; i < c.nLayer; i++) {
      const p = (n: string) => w[`h.${i}.${n}`].data;
      const h1 = layerNorm(x, S, d, p('ln_1.weight'), p('ln_1.bias'), c.layerNormEps);
      const qkv = linear(h1, S, p('attn.c_attn.weight'), p('attn.c_attn.bias'), d, 3 * d);
      const ctx = new Float64Array(S * d);
      for (let h = 0; h < H; h++) {
        for (let q = 0; q < S; q++) {
          const scores = new Float64Array(S).fill(-Infinity);
          let max = -Infinity;
          for (let k = 0; k <= q; k++) {
            if (!mask[b][k]) continue;
            let s = 0;
            for (let e = 0; e < hd; e++) s += qkv[q * 3 * d + h * hd + e] * qkv[k * 3 * d + d + h * hd + e];
            scores[k] = s / Math.sqrt(hd);
            max = Math.max(max, scores[k]);
          }
          if (max === -Infinity) continue; // no visible key (a pad query): output unused, leave zeros
          let z = 0;
          for (let k = 0; k < S; k++) z += scores[k] === -Infinity ? 0 : Math.exp(scores[k] - max);
          for (let k = 0; k < S; k++) {
            if (scores[k] === -Infinity) continue;
            const pk = Math.exp(scores[k] - max) / z;
            for (let e = 0; e < hd; e++) ctx[q * d + h * hd + e] += pk * qkv[k * 3 * d + 2 * d + h * hd + e];
          }
        }
      }
      const a = linear(ctx, S, p('attn.c_proj.weight'), p('attn.c_proj.bias'), d, d);
      for (let j = 0; j < x.length; j++) x[j] += a[j];
      const h2 = layerNorm(x, S, d, p('ln_2.weight'), p('ln_2.bias'), c.layerNormEps);
      const m = linear(h2, S, p('mlp.c_fc.weight'), p('mlp.c_fc.bias'), d, hidden).map(gelu);
      const m2 = linear(m, S, p('mlp.c_proj.weight'), p('mlp.c_proj.bias'), hidden, d);
      x = x.map((v, j) => v + m2[j]);
    }
    const hf = layerNorm(x, S, d, w['ln_f.weight'].data, w['ln_f.bias'].data, c.layerNormEps);
    const logits = new Float64Array(S * c.vocabSize);
    for (let s = 0; s < S; s++) {
      for (let v = 0; v < c.vocabSize; v++) {
        let acc = 0;
        for (let k = 0; k < d; k++) acc += hf[s * d + k] * w['wte.weight'].data[v * d + k];
        logits[s * c.vocabSize + v] = acc;
      }
    }
    out.logits.push(logits);
    if (out.values) out.values.push(linear(hf, S, w['v_head.weight'].data, w['v_head.bias'].data, d, 1));
    if (out.scores) out.scores.push(linear(hf, S, w['score.weight'].data, w['score.bias'].data, d, 1));
  }
  return out;
}

/** The reward of each row: the mean of its per-token scores, or its last token's (what reward.onnx returns). */
export function referenceRewards(w: SafeTensors, c: ModelConfig, rows: number[][], pooling: RewardPooling = 'mean'): number[] {
  const out = referenceForward(w, c, rows, rows.map((r) => r.map(() => 1)), rows.map((r) => r.map((_, j) => j)));
  return out.scores!.map((s) => (pooling === 'last' ? s[s.length - 1] : Array.from(s).reduce((a, x) => a + x, 0) / s.length));
}

/** The tiny config the ONNX tests use: fast, yet with several heads and layers so layout mistakes show. */
export const TINY_CONFIG: ModelConfig = {
  vocabSize: 300,
  contextLength: 128,
  nLayer: 2,
  nHead: 4,
  dModel: 32,
  mlpRatio: 4,
  layerNormEps: 1e-5,
};

/** Random token ids in [0, vocab) for `rows` rows of the given lengths. */
export function randomIds(seed: number, lengths: number[], vocab: number): number[][] {
  const r = rng(seed);
  return lengths.map((n) => Array.from({ length: n }, () => Math.floor(r() * vocab)));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}
