// The prefloop GPT in TensorFlow.js: a GPT-2-style decoder (Radford et al. 2019; layout after Karpathy's
// nanoGPT model.py) with pre-LayerNorm blocks, causal self-attention, a tanh-GELU MLP, learned positions and
// an LM head tied to the token embedding, plus two scalar heads: a value head (PPO critic, on the policy)
// and a reward head (Bradley-Terry reward model, read at the last non-pad token; Stiennon et al. 2020).
//
// Weights live in a Map keyed by GPT-2 names (wte.weight, h.0.attn.c_attn.weight, ...; Conv1D layout
// [in, out]) so safetensors and the ONNX exporter see exactly what TF.js trains.
//
// Speed on the wasm backend decides how this file is written (see ENVIRONMENT.md, each was measured):
// - every matMul is plain 2-D or batched without transpose flags; gradients are custom and transpose
//   explicitly (the built-in matMul gradient uses transposeA/B, 13–40× slower);
// - the embedding lookup is a gather whose gradient is a one-hot matMul (wasm has no UnsortedSegmentSum);
// - bias and LayerNorm gain gradients are ones-row matMuls (a sum over axis 0 is slow);
// - GELU is computed as x·sigmoid(2u), exactly the tanh approximation (tanh is ~6× slower than sigmoid);
// - q, k, v come from column slices of the c_attn weight, never from slicing (or tf.split of) activations;
// - x³ is x·x², not pow (pow is ~6× slower).
// Shapes: B batch, T time, C = dModel, H heads, D = C / H, V vocab, N = B·T rows.
import * as tf from '@tensorflow/tfjs';
import { type ModelConfig, headDim } from '../../shared/model-config';
import { installWasmKernelFixes } from '../backend-wasm-fixes';

// ---------------------------------------------------------------------------------------------------------
// Ops with hand-written gradients

const ones = (n: number) => tf.ones([1, n]);

/** y = x @ w (+ b).   x [N, in], w [in, out], b [out] → [N, out] */
function linear(x: tf.Tensor2D, w: tf.Tensor2D, b?: tf.Tensor1D): tf.Tensor2D {
  if (!b) {
    return tf.customGrad((xi, wi, save) => {
      const [x, w] = [xi as tf.Tensor2D, wi as tf.Tensor2D];
      (save as tf.GradSaveFunc)([x, w]);
      return {
        value: tf.matMul(x, w),
        gradFunc: (dy, [x, w]) => [tf.matMul(dy as tf.Tensor2D, w.transpose()), tf.matMul(x.transpose(), dy as tf.Tensor2D)],
      };
    })(x, w) as tf.Tensor2D;
  }
  return tf.customGrad((xi, wi, bi, save) => {
    const [x, w, b] = [xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D];
    (save as tf.GradSaveFunc)([x, w]);
    return {
      value: tf.add(tf.matMul(x, w), b),
      gradFunc: (dy, [x, w]) => {
        const d = dy as tf.Tensor2D;
        return [tf.matMul(d, w.transpose()), tf.matMul(x.transpose(), d), tf.matMul(ones(d.shape[0]), d).reshape([d.shape[1]])];
      },
    };
  })(x, w, b) as tf.Tensor2D;
}

/** Batched C = A @ B.   a [b, m, k], b [b, k, n] → [b, m, n] */
const bmm = tf.customGrad((ai, bi, save) => {
  const [a, b] = [ai as tf.Tensor3D, bi as tf.Tensor3D];
  (save as tf.GradSaveFunc)([a, b]);
  return {
    value: tf.matMul(a, b),
    gradFunc: (dy, [a, b]) => [tf.matMul(dy as tf.Tensor3D, b.transpose([0, 2, 1])), tf.matMul(a.transpose([0, 2, 1]), dy as tf.Tensor3D)],
  };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * The attention core, one (batch row, head) at a time with plain 2-D matMuls: softmax(q·kᵀ + bias)·v.
 * q, k, v [N, C] (q already scaled by 1/√D; head h is columns h·D … h·D+D−1), bias [T, T] or [B, 1, T, T]
 * → y [N, C].
 *
 * For the wasm backend, where a batched (3-D) matMul has no fast path: measured here on attention shapes,
 * [B·H=32, 256, 32] @ [32, 32, 256] runs at ~2.4 GFLOP/s as one batched matMul and ~14–26 GFLOP/s as 32
 * plain matMuls. Blocks are cut straight from the [N, C] activations (no 4-D head transposes) with the
 * patched Slice kernel (worker/backend-wasm-fixes.ts; the stock one copies the whole input per call), and
 * the gradient is written by hand for the same reason (a slice's built-in gradient pads to the full input).
 */
function attentionBlocks(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, bias: tf.Tensor, B: number, T: number, H: number): tf.Tensor2D {
  const D = q.shape[1] / H, BH = B * H;
  const each = (f: (b: number, h: number, i: number) => tf.Tensor2D) => {
    const out: tf.Tensor2D[] = [];
    for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) out.push(f(b, h, b * H + h));
    return out;
  };
  const block = (m: tf.Tensor2D, b: number, h: number) => tf.slice(m, [b * T, h * D], [T, D]); // [T, D] of an [N, C]
  const blockT = (mT: tf.Tensor2D, b: number, h: number) => tf.slice(mT, [h * D, b * T], [D, T]); // [D, T] of a [C, N]
  const square = (s: tf.Tensor2D, i: number) => tf.slice(s, [i * T, 0], [T, T]); // [T, T] block i of a [BH·T, T]
  const squares = (list: tf.Tensor2D[]) => tf.concat(list, 0).reshape([BH, T, T]) as tf.Tensor3D;
  const flat = (x: tf.Tensor) => x.reshape([BH * T, T]) as tf.Tensor2D;
  const assemble = (list: tf.Tensor2D[]) => {
    // (b, h) blocks [T, D] → [N, C]: heads side by side, batch rows stacked
    const rows: tf.Tensor2D[] = [];
    for (let b = 0; b < B; b++) rows.push(H === 1 ? list[b] : tf.concat(list.slice(b * H, (b + 1) * H), 1));
    return (B === 1 ? rows[0] : tf.concat(rows, 0)) as tf.Tensor2D;
  };
  return tf.customGrad((qi, ki, vi, save) => {
    const [q, k, v] = [qi as tf.Tensor2D, ki as tf.Tensor2D, vi as tf.Tensor2D];
    const kT = tf.transpose(k);
    const s = squares(each((b, h) => tf.matMul(block(q, b, h), blockT(kT, b, h))));
    const logits = bias.rank === 4 ? tf.add(s.reshape([B, H, T, T]), bias).reshape([BH, T, T]) : tf.add(s, bias);
    const p = tf.softmax(logits) as tf.Tensor3D; // [BH, T, T]
    const p2 = flat(p);
    (save as tf.GradSaveFunc)([q, k, v, p]);
    return {
      value: assemble(each((b, h, i) => tf.matMul(square(p2, i), block(v, b, h)))),
      gradFunc: (dyi, [q, k, v, p]) => {
        const dy = dyi as tf.Tensor2D;
        const vT = tf.transpose(v);
        const dp = squares(each((b, h) => tf.matMul(block(dy, b, h), blockT(vT as tf.Tensor2D, b, h))));
        const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))); // softmax backward; masked entries have p = 0
        const ds2 = flat(ds), dsT = flat(tf.transpose(ds, [0, 2, 1])), pT = flat(tf.transpose(p, [0, 2, 1]));
        return [
          assemble(each((b, h, i) => tf.matMul(square(ds2, i), block(k as tf.Tensor2D, b, h)))),
          assemble(each((b, h, i) => tf.matMul(square(dsT, i), block(q as tf.Tensor2D, b, h)))),
          assemble(each((b, h, i) => tf.matMul(square(pT, i), block(dy, b, h)))),
        ];
      },
    };
  })(q, k, v) as tf.Tensor2D;
}

/** LayerNorm over the last axis.   x [N, C], g [C], b [C] → [N, C] */
function layerNorm(x: tf.Tensor2D, g: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.customGrad((xi, gi, bi, save) => {
    const [x, g, b] = [xi as tf.Tensor2D, gi as tf.Tensor1D, bi as tf.Tensor1D];
    const xc = tf.sub(x, tf.mean(x, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(xc), -1, true), eps)); // [N, 1]
    const xhat = tf.mul(xc, rstd);
    (save as tf.GradSaveFunc)([xhat, rstd, g]);
    return {
      value: tf.add(tf.mul(xhat, g), b),
      gradFunc: (dy, [xhat, rstd, g]) => {
        const d = dy as tf.Tensor2D;
        const dxhat = tf.mul(d, g);
        const dx = tf.mul(rstd, tf.sub(tf.sub(dxhat, tf.mean(dxhat, -1, true)), tf.mul(xhat, tf.mean(tf.mul(dxhat, xhat), -1, true))));
        const row = ones(d.shape[0]);
        return [dx, tf.matMul(row, tf.mul(d, xhat)).reshape([d.shape[1]]), tf.matMul(row, d).reshape([d.shape[1]])];
      },
    };
  })(x, g, b) as tf.Tensor2D;
}

/** GPT-2's tanh GELU, written as x·σ(2u) with u = √(2/π)(x + 0.044715x³) (identical: ½(1+tanh u) = σ(2u)). */
const gelu = tf.customGrad((xi, save) => {
  const x = xi as tf.Tensor;
  const k = 2 * Math.sqrt(2 / Math.PI);
  const s = tf.sigmoid(tf.mul(k, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.square(x))))));
  (save as tf.GradSaveFunc)([x, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy, [x, s]) => {
      // d/dx [x σ(2u)] = σ + x σ(1−σ) · k(1 + 3·0.044715 x²)
      const du = tf.mul(k, tf.add(1, tf.mul(3 * 0.044715, tf.square(x))));
      return [tf.mul(dy, tf.add(s, tf.mul(tf.mul(x, tf.mul(s, tf.sub(1, s))), du)))];
    },
  };
}) as <T extends tf.Tensor>(x: T) => T;

/** Rows of a table: table[ids].   ids [N] (int32), table [R, C] → [N, C]; gradient via a one-hot matMul. */
function embed(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  return tf.customGrad((ti, save) => {
    const t = ti as tf.Tensor2D;
    // Tensors a gradFunc uses must be saved: an enclosing tidy disposes anything else before backprop.
    (save as tf.GradSaveFunc)([ids]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy, [ids]) => {
        const oneHot = tf.cast(tf.oneHot(ids as tf.Tensor1D, t.shape[0]), 'float32'); // [N, R]
        return [tf.matMul((dy as tf.Tensor2D).transpose(), oneHot).transpose()]; // ([C, N] @ [N, R])ᵀ = [R, C]
      },
    };
  })(table) as tf.Tensor2D;
}

/** wpe rows 0..T−1 repeated for each of B rows.   wpe [P, C] → [B·T, C]; gradient = ones-row matMul (tile's
 * built-in gradient takes one slice per repetition). */
function positionRows(wpe: tf.Tensor2D, B: number, T: number): tf.Tensor2D {
  return tf.customGrad((wi, save) => {
    const w = wi as tf.Tensor2D;
    const [P, C] = w.shape;
    (save as tf.GradSaveFunc)([]);
    const rows = tf.slice(w, [0, 0], [T, C]);
    return {
      value: B === 1 ? rows : tf.tile(rows, [B, 1]),
      gradFunc: (dy) => {
        const g = tf.matMul(ones(B), (dy as tf.Tensor).reshape([B, T * C])).reshape([T, C]); // Σ over the batch
        return [T === P ? g : tf.concat([g, tf.zeros([P - T, C])], 0)];
      },
    };
  })(wpe) as tf.Tensor2D;
}

/** Tied LM head: logits = h @ wteᵀ.   h [N, C], wte [V, C] → [N, V] */
const lmHead = tf.customGrad((hi, wi, save) => {
  const [h, w] = [hi as tf.Tensor2D, wi as tf.Tensor2D];
  (save as tf.GradSaveFunc)([h, w]);
  return {
    value: tf.matMul(h, w.transpose()),
    gradFunc: (dy, [h, w]) => [tf.matMul(dy as tf.Tensor2D, w), tf.matMul(h.transpose(), dy as tf.Tensor2D).transpose()],
  };
}) as (h: tf.Tensor2D, wte: tf.Tensor2D) => tf.Tensor2D;

/**
 * Mean cross-entropy in nats over the rows with weight > 0.   logits [N, V], targets [N], weights [N].
 * Fused so the gradient is the cheap (softmax − onehot)·w / Σw.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  return tf.customGrad((li, save) => {
    const l = li as tf.Tensor2D;
    const oneHot = tf.cast(tf.oneHot(targets, l.shape[1]), 'float32');
    // One exp pass over [N, V] serves both the loss and the gradient (logSumExp + exp(l − lse) took two; measured
    // ~6% of a base-config training step on wasm): e = exp(l − max), lse = max + log Σe, p = e / Σe.
    const max = tf.max(l, -1, true); // [N, 1]
    const e = tf.exp(tf.sub(l, max));
    const sumE = tf.sum(e, -1, true); // [N, 1]
    const lse = tf.add(max, tf.log(sumE)).reshape([l.shape[0]]); // [N]
    const nll = tf.sub(lse, tf.sum(tf.mul(l, oneHot), -1)); // [N]
    const total = tf.sum(weights);
    const p = tf.div(e, sumE);
    (save as tf.GradSaveFunc)([p, oneHot, total, weights]);
    return {
      value: tf.div(tf.sum(tf.mul(nll, weights)), total) as tf.Scalar,
      gradFunc: (dy, [p, oneHot, total, weights]) => [tf.mul(tf.sub(p, oneHot), tf.mul(weights, tf.div(dy, total)).expandDims(1))],
    };
  })(logits) as tf.Scalar;
}

/**
 * How trunk() computes attention: `blocks` true = attentionBlocks (per batch row and head, 2-D matMuls),
 * false = batched 3-D matMuls, undefined = by backend (blocks on wasm). Both give the same numbers; tests and
 * bench:train set it to compare them.
 */
export const attentionMode: { blocks?: boolean } = {};

// ---------------------------------------------------------------------------------------------------------
// Weights

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Initial values: GPT-2's N(0, 0.02), residual projections scaled by 1/√(2·nLayer), zero biases, unit gains. */
  init: 'normal' | 'residual' | 'pos' | 'zeros' | 'ones';
  /** trunk = shared by policy and reward model; value/reward = the scalar heads. */
  group: 'trunk' | 'value' | 'reward';
}

export interface HeadOptions {
  /** Value head v_head (the policy's PPO critic). */
  value: boolean;
  /** Reward head score (the reward model). */
  reward: boolean;
}

export function paramSpecs(c: ModelConfig, heads: HeadOptions = { value: true, reward: false }): ParamSpec[] {
  const C = c.dModel, M = c.mlpRatio * c.dModel;
  const s: ParamSpec[] = [
    { name: 'wte.weight', shape: [c.vocabSize, C], init: 'normal', group: 'trunk' },
    { name: 'wpe.weight', shape: [c.contextLength, C], init: 'pos', group: 'trunk' },
  ];
  for (let i = 0; i < c.nLayer; i++) {
    const p = `h.${i}.`;
    s.push(
      { name: p + 'ln_1.weight', shape: [C], init: 'ones', group: 'trunk' },
      { name: p + 'ln_1.bias', shape: [C], init: 'zeros', group: 'trunk' },
      { name: p + 'attn.c_attn.weight', shape: [C, 3 * C], init: 'normal', group: 'trunk' },
      { name: p + 'attn.c_attn.bias', shape: [3 * C], init: 'zeros', group: 'trunk' },
      { name: p + 'attn.c_proj.weight', shape: [C, C], init: 'residual', group: 'trunk' },
      { name: p + 'attn.c_proj.bias', shape: [C], init: 'zeros', group: 'trunk' },
      { name: p + 'ln_2.weight', shape: [C], init: 'ones', group: 'trunk' },
      { name: p + 'ln_2.bias', shape: [C], init: 'zeros', group: 'trunk' },
      { name: p + 'mlp.c_fc.weight', shape: [C, M], init: 'normal', group: 'trunk' },
      { name: p + 'mlp.c_fc.bias', shape: [M], init: 'zeros', group: 'trunk' },
      { name: p + 'mlp.c_proj.weight', shape: [M, C], init: 'residual', group: 'trunk' },
      { name: p + 'mlp.c_proj.bias', shape: [C], init: 'zeros', group: 'trunk' },
    );
  }
  s.push({ name: 'ln_f.weight', shape: [C], init: 'ones', group: 'trunk' }, { name: 'ln_f.bias', shape: [C], init: 'zeros', group: 'trunk' });
  if (heads.value) s.push({ name: 'v_head.weight', shape: [C, 1], init: 'normal', group: 'value' }, { name: 'v_head.bias', shape: [1], init: 'zeros', group: 'value' });
  if (heads.reward) s.push({ name: 'score.weight', shape: [C, 1], init: 'normal', group: 'reward' }, { name: 'score.bias', shape: [1], init: 'zeros', group: 'reward' });
  return s;
}

/** Seeded N(0,1) floats (mulberry32 + Box–Muller): the same init on every backend and machine. */
export function seededNormal(n: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12), v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function initialValues(spec: ParamSpec, c: ModelConfig, seed: number): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  if (spec.init === 'zeros') return new Float32Array(n);
  if (spec.init === 'ones') return new Float32Array(n).fill(1);
  const std = spec.init === 'residual' ? 0.02 / Math.sqrt(2 * c.nLayer) : spec.init === 'pos' ? 0.01 : 0.02;
  // One stream per tensor, keyed by its name, so adding a head does not change the trunk's init.
  let h = seed >>> 0;
  for (const ch of spec.name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  const z = seededNormal(n, h);
  for (let i = 0; i < n; i++) z[i] *= std;
  return z;
}

/** Plain-array form of a weight, as safetensors stores it. */
export interface NamedArray {
  dtype: 'F32';
  shape: number[];
  data: Float32Array;
}

// ---------------------------------------------------------------------------------------------------------
// The model

export interface ForwardOutput {
  logits: tf.Tensor3D; // [B, T, V]
  /** Value head output, or null when the model has no value head. */
  values: tf.Tensor2D | null; // [B, T]
  hidden: tf.Tensor3D; // [B, T, C] after ln_f
}

/** Token ids as a plain [B][T] array or a flat Int32Array with its batch size. */
export type Ids = number[][] | { data: Int32Array; batch: number };

function idsTensor(ids: Ids): { t: tf.Tensor1D; B: number; T: number } {
  if (Array.isArray(ids)) {
    const B = ids.length, T = ids[0]?.length ?? 0;
    const flat = new Int32Array(B * T);
    ids.forEach((row, b) => {
      if (row.length !== T) throw new Error('all rows of ids must have the same length');
      flat.set(row, b * T);
    });
    return { t: tf.tensor1d(flat, 'int32'), B, T };
  }
  return { t: tf.tensor1d(ids.data, 'int32'), B: ids.batch, T: ids.data.length / ids.batch };
}

function maskArray(mask: Ids): Int32Array {
  if (Array.isArray(mask)) return Int32Array.from(mask.flat());
  return mask.data;
}

export class GPT {
  readonly config: ModelConfig;
  readonly heads: HeadOptions;
  readonly specs: ParamSpec[];
  /** The weights by GPT-2 name (the variables themselves: reading them is free, assigning changes the model). */
  readonly weights = new Map<string, tf.Variable>();

  constructor(config: ModelConfig, opts: { heads?: Partial<HeadOptions>; seed?: number } = {}) {
    this.config = config;
    this.heads = { value: true, reward: false, ...opts.heads };
    this.specs = paramSpecs(config, this.heads);
    for (const s of this.specs) {
      // Unnamed variables: TF.js names must be unique per process and a PPO run holds several GPTs.
      this.weights.set(s.name, tf.variable(tf.tensor(initialValues(s, config, opts.seed ?? 0), s.shape, 'float32'), true));
    }
  }

  /** Trainable variables of one group (trunk: embeddings, blocks, ln_f; value: v_head; reward: score). */
  variables(groups: ReadonlyArray<ParamSpec['group']> = ['trunk', 'value', 'reward']): tf.Variable[] {
    return this.specs.filter((s) => groups.includes(s.group)).map((s) => this.w(s.name) as tf.Variable);
  }

  get numParams(): number {
    return this.specs.reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  }

  private w(name: string): tf.Variable {
    const v = this.weights.get(name);
    if (!v) throw new Error(`model has no weight ${name}`);
    return v;
  }

  /**
   * Runs the trunk and the heads.   ids [B, T]; attentionMask [B, T] (1 = token, 0 = pad; left padding allowed:
   * positions count real tokens only, as the ONNX graph's position_ids do).
   */
  forward(ids: Ids, attentionMask?: Ids): ForwardOutput {
    return tf.tidy(() => {
      const { t: idt, B, T } = idsTensor(ids);
      const c = this.config;
      if (T > c.contextLength) throw new Error(`sequence length ${T} exceeds contextLength ${c.contextLength}`);
      const mask = attentionMask ? maskArray(attentionMask) : null;
      const hidden = this.trunk(idt, B, T, mask); // [N, C]
      const logits = lmHead(hidden, this.w('wte.weight') as tf.Tensor2D).reshape([B, T, c.vocabSize]) as tf.Tensor3D;
      const values = this.heads.value ? (linear(hidden, this.w('v_head.weight') as tf.Tensor2D, this.w('v_head.bias') as tf.Tensor1D).reshape([B, T]) as tf.Tensor2D) : null;
      return { logits, values, hidden: hidden.reshape([B, T, c.dModel]) as tf.Tensor3D } as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /** Reward-head scores read at each row's last non-pad token.   → [B] */
  reward(ids: Ids, attentionMask: Ids): tf.Tensor1D {
    if (!this.heads.reward) throw new Error('model has no reward head');
    return tf.tidy(() => {
      const { t: idt, B, T } = idsTensor(ids);
      const mask = maskArray(attentionMask);
      const hidden = this.trunk(idt, B, T, mask);
      const scores = linear(hidden, this.w('score.weight') as tf.Tensor2D, this.w('score.bias') as tf.Tensor1D).reshape([B, T]); // [B, T]
      const pick = new Float32Array(B * T); // one-hot of the last real position per row (gather has no wasm gradient)
      for (let b = 0; b < B; b++) {
        let last = -1;
        for (let t = 0; t < T; t++) if (mask[b * T + t]) last = t;
        if (last < 0) throw new Error(`row ${b} of the attention mask has no tokens`);
        pick[b * T + last] = 1;
      }
      return tf.sum(tf.mul(scores, tf.tensor2d(pick, [B, T])), 1) as tf.Tensor1D;
    });
  }

  /**
   * log π(ids[t+1] | ids[..t]) for t = 0..T−2: the per-token log-probabilities PPO needs.   → [B, T−1]
   * Pad positions give numbers too; the caller masks them.
   */
  tokenLogProbs(ids: Ids, attentionMask?: Ids): { logProbs: tf.Tensor2D; values: tf.Tensor2D | null } {
    return tf.tidy(() => {
      const out = this.forward(ids, attentionMask);
      const { logits, values } = out;
      const [B, T, V] = logits.shape;
      const flat = Array.isArray(ids) ? Int32Array.from(ids.flat()) : ids.data;
      const next = new Int32Array(B * (T - 1));
      for (let b = 0; b < B; b++) next.set(flat.subarray(b * T + 1, (b + 1) * T), b * (T - 1));
      const lp = tf.logSoftmax(logits.slice([0, 0, 0], [B, T - 1, V])); // [B, T-1, V]
      const oneHot = tf.cast(tf.oneHot(tf.tensor2d(next, [B, T - 1], 'int32'), V), 'float32');
      const logProbs = tf.sum(tf.mul(lp, oneHot), -1) as tf.Tensor2D;
      return { logProbs, values: values ? (values.slice([0, 0], [B, T - 1]) as tf.Tensor2D) : null } as unknown as tf.TensorContainer;
    }) as unknown as { logProbs: tf.Tensor2D; values: tf.Tensor2D | null };
  }

  /**
   * Next-token cross-entropy (mean nats per predicted token) over windows of T+1 tokens: inputs are the first
   * T, targets the last T.   tokens: flat Int32Array [B·(T+1)]; weights optional [B·T] (0 = not counted).
   */
  lmLoss(tokens: Int32Array, B: number, weights?: Float32Array): tf.Scalar {
    const T = tokens.length / B - 1;
    const inp = new Int32Array(B * T), tgt = new Int32Array(B * T);
    for (let b = 0; b < B; b++) {
      inp.set(tokens.subarray(b * (T + 1), b * (T + 1) + T), b * T);
      tgt.set(tokens.subarray(b * (T + 1) + 1, (b + 1) * (T + 1)), b * T);
    }
    return tf.tidy(() => {
      const hidden = this.trunk(tf.tensor1d(inp, 'int32'), B, T, null);
      const logits = lmHead(hidden, this.w('wte.weight') as tf.Tensor2D); // [N, V]
      return crossEntropy(logits, tf.tensor1d(tgt, 'int32'), weights ? tf.tensor1d(weights) : tf.ones([B * T]).as1D());
    });
  }

  /** Embeddings, blocks and ln_f.   ids [N] → hidden [N, C]. */
  private trunk(ids: tf.Tensor1D, B: number, T: number, mask: Int32Array | null): tf.Tensor2D {
    const c = this.config, C = c.dModel, H = c.nHead, D = headDim(c), N = B * T;
    // Positions: 0..T-1 for every row, unless a mask says some leading tokens are padding.
    let pos: tf.Tensor2D;
    if (!mask) {
      pos = positionRows(this.w('wpe.weight') as tf.Tensor2D, B, T); // [N, C]
    } else {
      const p = new Int32Array(N);
      for (let b = 0; b < B; b++) for (let t = 0, n = 0; t < T; t++) p[b * T + t] = mask[b * T + t] ? n++ : 0;
      pos = embed(tf.tensor1d(p, 'int32'), this.w('wpe.weight') as tf.Tensor2D);
    }
    let x = tf.add(embed(ids, this.w('wte.weight') as tf.Tensor2D), pos) as tf.Tensor2D; // [N, C]

    // Additive attention bias: causal, plus padded keys when a mask is given. [T, T] or [B, 1, T, T]
    const bias = new Float32Array((mask ? B : 1) * T * T);
    for (let b = 0; b < (mask ? B : 1); b++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < T; j++) if (j > i || (mask && !mask[b * T + j])) bias[b * T * T + i * T + j] = -1e9;
    const attBias = mask ? tf.tensor4d(bias, [B, 1, T, T]) : tf.tensor2d(bias, [T, T]);
    const scale = 1 / Math.sqrt(D);
    // Attention per (batch row, head) with 2-D matMuls on wasm (no fast batched matMul there); one batched
    // matMul elsewhere (tfjs-node has a fast one). attentionMode overrides, for tests and benchmarks.
    const blocks = attentionMode.blocks ?? tf.getBackend() === 'wasm';
    if (blocks && tf.getBackend() === 'wasm') installWasmKernelFixes();

    for (let l = 0; l < c.nLayer; l++) {
      const p = `h.${l}.`;
      const g = (n: string) => this.w(p + n);
      // --- causal self-attention
      const h = layerNorm(x, g('ln_1.weight') as tf.Tensor1D, g('ln_1.bias') as tf.Tensor1D, c.layerNormEps);
      // q, k, v from column slices of c_attn (slicing the small weight is cheap; slicing the [N, 3C] activation is not)
      const proj = (i: number) => {
        const w = tf.slice(g('attn.c_attn.weight'), [0, i * C], [C, C]) as tf.Tensor2D;
        const bb = tf.slice(g('attn.c_attn.bias'), [i * C], [C]) as tf.Tensor1D;
        return linear(h, w, bb); // [N, C]
      };
      let y: tf.Tensor2D; // [N, C]
      if (blocks) {
        y = attentionBlocks(tf.mul(proj(0), scale) as tf.Tensor2D, proj(1), proj(2), attBias, B, T, H);
      } else {
        const heads = (m: tf.Tensor2D, perm: number[]) => tf.transpose(m.reshape([B, T, H, D]), perm); // [B, H, ., .]
        const q = heads(tf.mul(proj(0), scale) as tf.Tensor2D, [0, 2, 1, 3]).reshape([B * H, T, D]) as tf.Tensor3D;
        const kT = heads(proj(1), [0, 2, 3, 1]).reshape([B * H, D, T]) as tf.Tensor3D;
        const v = heads(proj(2), [0, 2, 1, 3]).reshape([B * H, T, D]) as tf.Tensor3D;
        let att = bmm(q, kT); // [B*H, T, T]
        att = (mask ? tf.add(att.reshape([B, H, T, T]), attBias).reshape([B * H, T, T]) : tf.add(att, attBias)) as tf.Tensor3D;
        att = tf.softmax(att);
        y = tf.transpose(bmm(att, v).reshape([B, H, T, D]), [0, 2, 1, 3]).reshape([N, C]) as tf.Tensor2D;
      }
      x = tf.add(x, linear(y, g('attn.c_proj.weight') as tf.Tensor2D, g('attn.c_proj.bias') as tf.Tensor1D));
      // --- MLP
      const h2 = layerNorm(x, g('ln_2.weight') as tf.Tensor1D, g('ln_2.bias') as tf.Tensor1D, c.layerNormEps);
      const f = gelu(linear(h2, g('mlp.c_fc.weight') as tf.Tensor2D, g('mlp.c_fc.bias') as tf.Tensor1D)); // [N, 4C]
      x = tf.add(x, linear(f, g('mlp.c_proj.weight') as tf.Tensor2D, g('mlp.c_proj.bias') as tf.Tensor1D));
    }
    return layerNorm(x, this.w('ln_f.weight') as tf.Tensor1D, this.w('ln_f.bias') as tf.Tensor1D, c.layerNormEps);
  }

  // -------------------------------------------------------------------------------------------------------
  // Moving weights in and out

  /** Copies of all weights as plain arrays (for safetensors, checkpoints, other threads). */
  toNamedArrays(): Record<string, NamedArray> {
    const out: Record<string, NamedArray> = {};
    for (const s of this.specs) out[s.name] = { dtype: 'F32', shape: [...s.shape], data: this.w(s.name).dataSync() as Float32Array };
    return out;
  }

  /**
   * Sets weights from plain arrays or tensors keyed by GPT-2 name. Shapes must match. With `strict` (default),
   * every weight of this model must be given; otherwise missing ones keep their values (e.g. a reward model
   * warm-started from a policy keeps its fresh score head). Names this model lacks are refused either way,
   * except the other kind's head (v_head on a reward model, score on a policy), which is skipped.
   */
  loadWeights(src: Record<string, NamedArray | tf.Tensor> | Map<string, NamedArray | tf.Tensor>, opts: { strict?: boolean } = {}): void {
    const entries = src instanceof Map ? [...src.entries()] : Object.entries(src);
    const given = new Set<string>();
    for (const [name, val] of entries) {
      const v = this.weights.get(name);
      if (!v) {
        if (/^(v_head|score)\./.test(name)) continue;
        throw new Error(`unknown weight ${name}`);
      }
      const shape = val instanceof tf.Tensor ? val.shape : val.shape;
      if (shape.join(',') !== v.shape.join(',')) throw new Error(`weight ${name}: shape [${shape}] differs from the model's [${v.shape}]`);
      v.assign(val instanceof tf.Tensor ? val.toFloat() : tf.tensor(val.data, val.shape, 'float32'));
      given.add(name);
    }
    if (opts.strict ?? true) {
      const missing = this.specs.filter((s) => !given.has(s.name)).map((s) => s.name);
      if (missing.length) throw new Error(`missing weights: ${missing.join(', ')}`);
    }
  }

  /** A new GPT with copies of these weights (a frozen reference policy, or a warm start). */
  clone(opts: { heads?: Partial<HeadOptions> } = {}): GPT {
    const g = new GPT(this.config, { heads: { ...this.heads, ...opts.heads } });
    g.copyFrom(this, { strict: false });
    return g;
  }

  /** Copies every weight both models have. */
  copyFrom(other: GPT, opts: { strict?: boolean } = {}): void {
    const src = new Map<string, tf.Tensor>();
    for (const [n, v] of other.weights) if (this.weights.has(n)) src.set(n, v);
    this.loadWeights(src, opts);
  }

  dispose(): void {
    for (const v of this.weights.values()) v.dispose();
    this.weights.clear();
  }
}
