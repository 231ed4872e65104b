// The prefloop GPT in TensorFlow.js: a GPT-2-style decoder (Radford et al. 2019; layout after Karpathy's
// nanoGPT model.py) with pre-LayerNorm blocks, causal self-attention, a tanh-GELU MLP, learned positions and
// an LM head tied to the token embedding, plus two scalar heads: a value head (PPO critic, on the policy)
// and a reward head (Bradley-Terry reward model, mean-pooled over the real tokens or read at the last one;
// Stiennon et al. 2020).
//
// Weights live in a Map keyed by GPT-2 names (wte.weight, h.0.attn.c_attn.weight, ...; Conv1D layout
// [in, out]) so safetensors and the ONNX exporter see exactly what TF.js trains.
//
// Speed on the wasm backend decides how this file is written (see ENVIRONMENT.md and
// worker/backend-wasm-fixes.ts, which replaces the wasm kernels that were slow or wrong; each was measured):
// - every matMul is plain 2-D or batched without transpose flags; gradients are custom and transpose
//   explicitly (the built-in matMul gradient uses transposeA/B, 13–40× slower), choosing the operand order
//   that packs the smaller matrix (see linear);
// - attention runs over all heads at once as batched matMuls on a [B·H, T, D] layout made by one transpose of
//   c_attn's [N, 3C] output (see attention);
// - the embedding lookup is a gather whose gradient is a scatter-add (unsortedSegmentSum);
// - sums over rows (bias and LayerNorm gradients) are ones-row matMuls or sums of a transpose over its last
//   axis (a sum over axis 0 is slow);
// - GELU is computed as x·sigmoid(2u), exactly the tanh approximation (tanh is ~6× slower than sigmoid);
// - x³ is x·x², not pow (pow is ~6× slower); the cross-entropy is built on the fused softmax kernel.
// Shapes: B batch, T time, C = dModel, H heads, D = C / H, V vocab, N = B·T rows.
import * as tf from '@tensorflow/tfjs';
import type { RewardPooling } from '../../shared/policy-io';
import type { ModelConfig } from '../../shared/model-config';
import { installWasmKernelFixes } from '../backend-wasm-fixes';

// ---------------------------------------------------------------------------------------------------------
// Ops with hand-written gradients

const ones = (n: number) => tf.ones([1, n]);

/**
 * y = x @ w + b.   x [N, in], w [in, out], b [out] → [N, out]
 *
 * The weight gradient is xᵀ @ dy or (dyᵀ @ x)ᵀ, whichever makes the smaller of x and dy the right-hand operand:
 * the wasm matMul (XNNPACK) re-packs its right-hand operand on every call, which with only `in` = 128 output
 * rows dominates (measured for c_fc, CPU time on a busy machine: [128, 2048] @ [2048, 512] ~17 ms; [512, 2048]
 * @ [2048, 128] ~11 ms plus ~2 ms to transpose dy). In the dyᵀ form the bias gradient is a row sum of dyᵀ (a
 * sum over the last axis is fast on wasm), otherwise a ones-row matMul (a sum over axis 0 is slow there).
 */
function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.customGrad((xi, wi, bi, save) => {
    const [x, w, b] = [xi as tf.Tensor2D, wi as tf.Tensor2D, bi as tf.Tensor1D];
    (save as tf.GradSaveFunc)([x, w]);
    return {
      value: tf.add(tf.matMul(x, w), b),
      gradFunc: (dy, saved) => {
        const [x, w] = saved as tf.Tensor2D[];
        const d = dy as tf.Tensor2D;
        const dx = tf.matMul(d, w.transpose());
        if (x.shape[1] <= d.shape[1]) {
          const dT = d.transpose(); // [out, N]
          return [dx, tf.matMul(dT, x).transpose(), tf.sum(dT, -1)];
        }
        return [dx, tf.matMul(x.transpose(), d), tf.matMul(ones(d.shape[0]), d).reshape([d.shape[1]])];
      },
    };
  })(x, w, b) as tf.Tensor2D;
}

/**
 * The attention core over all batch rows and heads at once: softmax(q·kᵀ/√D + bias)·v.
 * qkv [N, 3C] (c_attn's output: q, k, v side by side; head h is columns h·D … h·D+D−1 of each), bias [T, T]
 * or [B, 1, T, T] → y [N, C].
 *
 * Heads are laid out [B·H, T, D] by one 4-D transpose of qkv, so every product is one batched matMul
 * (worker/backend-wasm-fixes.ts gives the wasm backend a fast one) and the gradient needs no slicing. This
 * replaced per-(batch row, head) 2-D matMuls on slices of [N, C], which took ~10,000 small kernel calls per
 * base-config step (measured at T=64 B=32: that step 1,109 ms → see bench:train for the figure now).
 */
function attention(qkv: tf.Tensor2D, bias: tf.Tensor, B: number, T: number, H: number): tf.Tensor2D {
  const N = B * T, C = qkv.shape[1] / 3, D = C / H, BH = B * H, scale = 1 / Math.sqrt(D);
  const toHeads = (m: tf.Tensor, n: number) => tf.transpose(m.reshape([B, T, n, D]), [0, 2, 1, 3]); // [N, n·D] → [B, n, T, D]
  const fromHeads = (m: tf.Tensor, n: number) => tf.transpose(m.reshape([B, n, T, D]), [0, 2, 1, 3]).reshape([N, n * D]) as tf.Tensor2D;
  const swap = (m: tf.Tensor3D) => tf.transpose(m, [0, 2, 1]) as tf.Tensor3D; // [BH, a, b] → [BH, b, a]
  return tf.customGrad((qkvi, save) => {
    const heads = toHeads(qkvi as tf.Tensor2D, 3 * H); // [B, 3H, T, D]: q heads, then k heads, then v heads
    const part = (i: number) => tf.slice(heads, [0, i * H, 0, 0], [B, H, T, D]).reshape([BH, T, D]) as tf.Tensor3D;
    const q = tf.mul(part(0), scale) as tf.Tensor3D, k = part(1), v = part(2); // [BH, T, D]
    const s = tf.matMul(q, swap(k)); // [BH, T, T]
    const logits = bias.rank === 4 ? tf.add(s.reshape([B, H, T, T]), bias).reshape([BH, T, T]) : tf.add(s, bias);
    const p = tf.softmax(logits) as tf.Tensor3D;
    (save as tf.GradSaveFunc)([q, k, v, p]);
    return {
      value: fromHeads(tf.matMul(p, v), H),
      gradFunc: (dyi, saved) => {
        const [q, k, v, p] = saved as tf.Tensor3D[];
        const dy = toHeads(dyi as tf.Tensor2D, H).reshape([BH, T, D]) as tf.Tensor3D;
        const dp = tf.matMul(dy, swap(v)); // [BH, T, T]
        const dv = tf.matMul(swap(p), dy);
        const ds = tf.mul(p, tf.sub(dp, tf.sum(tf.mul(dp, p), -1, true))) as tf.Tensor3D; // softmax backward; masked entries have p = 0
        const dq = tf.mul(tf.matMul(ds, k), scale);
        const dk = tf.matMul(swap(ds), q);
        return [fromHeads(tf.concat([dq, dk, dv].map((g) => g.reshape([B, H, T, D])), 1), 3 * H)];
      },
    };
  })(qkv) as tf.Tensor2D;
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
  const k = 2 * Math.sqrt(2 / Math.PI), c = 0.044715;
  const x2 = tf.square(x);
  const s = tf.sigmoid(tf.mul(x, tf.add(k, tf.mul(k * c, x2)))); // σ(2u), 2u = x·(k + k·c·x²)
  (save as tf.GradSaveFunc)([x, x2, s]);
  return {
    value: tf.mul(x, s),
    gradFunc: (dy, [x, x2, s]) => {
      // d/dx [x σ(2u)] = σ + x σ(1−σ) · d(2u)/dx, d(2u)/dx = k + 3·k·c·x²
      const du = tf.add(k, tf.mul(3 * k * c, x2));
      return [tf.mul(dy, tf.add(s, tf.mul(tf.mul(x, tf.mul(s, tf.sub(1, s))), du)))];
    },
  };
}) as <T extends tf.Tensor>(x: T) => T;

/** Rows of a table: table[ids].   ids [N] (int32), table [R, C] → [N, C]. The gradient is a scatter-add
 * (unsortedSegmentSum; worker/backend-wasm-fixes.ts supplies the wasm kernel): the one-hot matMul it replaced
 * cost 2·N·R·C FLOPs, ~80 ms of a base-config step on wasm. */
function embed(ids: tf.Tensor1D, table: tf.Tensor2D): tf.Tensor2D {
  return tf.customGrad((ti, save) => {
    const t = ti as tf.Tensor2D;
    // Tensors a gradFunc uses must be saved: an enclosing tidy disposes anything else before backprop.
    (save as tf.GradSaveFunc)([ids]);
    return {
      value: tf.gather(t, ids),
      gradFunc: (dy, [ids]) => [tf.unsortedSegmentSum(dy as tf.Tensor2D, ids as tf.Tensor1D, t.shape[0])],
    };
  })(table) as tf.Tensor2D;
}

/** x + wpe rows 0..T−1 for each of B rows.   x [B·T, C], wpe [P, C] → [B·T, C]. A broadcast add (tile, on
 * wasm, took ~20 ms to repeat [64, 128] 32 times); wpe's gradient is a ones-row matMul over the batch. */
function addPositions(x: tf.Tensor2D, wpe: tf.Tensor2D, B: number, T: number): tf.Tensor2D {
  return tf.customGrad((xi, wi, save) => {
    const w = wi as tf.Tensor2D;
    const [P, C] = w.shape;
    (save as tf.GradSaveFunc)([]);
    return {
      value: tf.add((xi as tf.Tensor2D).reshape([B, T, C]), tf.slice(w, [0, 0], [T, C])).reshape([B * T, C]),
      gradFunc: (dy) => {
        const g = tf.matMul(ones(B), (dy as tf.Tensor).reshape([B, T * C])).reshape([T, C]); // Σ over the batch
        return [dy, T === P ? g : tf.concat([g, tf.zeros([P - T, C])], 0)];
      },
    };
  })(x, wpe) as tf.Tensor2D;
}

/** Tied LM head: logits = h @ wteᵀ.   h [N, C], wte [V, C] → [N, V] */
const lmHead = tf.customGrad((hi, wi, save) => {
  const [h, w] = [hi as tf.Tensor2D, wi as tf.Tensor2D];
  (save as tf.GradSaveFunc)([h, w]);
  return {
    value: tf.matMul(h, w.transpose()),
    // wte's gradient as dyᵀ @ h ([V, N] @ [N, C]) rather than (hᵀ @ dy)ᵀ: a matMul with only C = 128 output
    // rows re-packs all of dy per call and ran at ~14 GFLOP/s on wasm, this one at ~30, transpose included.
    gradFunc: (dy, [h, w]) => [tf.matMul(dy as tf.Tensor2D, w), tf.matMul((dy as tf.Tensor2D).transpose(), h)],
  };
}) as (h: tf.Tensor2D, wte: tf.Tensor2D) => tf.Tensor2D;

/**
 * Mean cross-entropy in nats over the rows with weight > 0.   logits [N, V], targets [N], weights [N].
 * Fused so the gradient is the cheap (softmax − onehot)·w / Σw.
 */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  return tf.customGrad((li, save) => {
    const l = li as tf.Tensor2D;
    // Built from the softmax kernel (one fused pass on wasm; exp on its own took ~30 ms per base-config step
    // there), with log Σ exp(l) = max l − log max p, as the largest p is ≥ 1/V and so never underflows.
    // oneHot straight to float32: int32 then cast took ~10 ms for [2048, 2048].
    const p = tf.softmax(l); // [N, V]
    const oneHot = tf.oneHot(targets, l.shape[1], 1, 0, 'float32');
    const lse = tf.sub(tf.max(l, -1), tf.log(tf.max(p, -1))); // [N]
    const nll = tf.sub(lse, tf.sum(tf.mul(l, oneHot), -1)); // [N]
    const total = tf.sum(weights);
    (save as tf.GradSaveFunc)([p, oneHot, total, weights]);
    return {
      value: tf.div(tf.sum(tf.mul(nll, weights)), total) as tf.Scalar,
      gradFunc: (dy, [p, oneHot, total, weights]) => [tf.mul(tf.sub(p, oneHot), tf.mul(weights, tf.div(dy, total)).expandDims(1))],
    };
  })(logits) as tf.Scalar;
}

// ---------------------------------------------------------------------------------------------------------
// Weights

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Initial values: GPT-2's N(0, 0.02), residual projections scaled by 1/√(2·nLayer), zero biases, unit gains. */
  init: 'normal' | 'residual' | 'pos' | 'zeros' | 'ones';
  /** trunk = shared by policy and reward model; value/reward = the scalar heads. */
  group: 'trunk' | 'value' | 'reward';
  /** The transformer block (h.{block}.*) the parameter belongs to; absent for embeddings, ln_f and heads. */
  block?: number;
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
      { name: p + 'ln_1.weight', shape: [C], init: 'ones', group: 'trunk', block: i },
      { name: p + 'ln_1.bias', shape: [C], init: 'zeros', group: 'trunk', block: i },
      { name: p + 'attn.c_attn.weight', shape: [C, 3 * C], init: 'normal', group: 'trunk', block: i },
      { name: p + 'attn.c_attn.bias', shape: [3 * C], init: 'zeros', group: 'trunk', block: i },
      { name: p + 'attn.c_proj.weight', shape: [C, C], init: 'residual', group: 'trunk', block: i },
      { name: p + 'attn.c_proj.bias', shape: [C], init: 'zeros', group: 'trunk', block: i },
      { name: p + 'ln_2.weight', shape: [C], init: 'ones', group: 'trunk', block: i },
      { name: p + 'ln_2.bias', shape: [C], init: 'zeros', group: 'trunk', block: i },
      { name: p + 'mlp.c_fc.weight', shape: [C, M], init: 'normal', group: 'trunk', block: i },
      { name: p + 'mlp.c_fc.bias', shape: [M], init: 'zeros', group: 'trunk', block: i },
      { name: p + 'mlp.c_proj.weight', shape: [M, C], init: 'residual', group: 'trunk', block: i },
      { name: p + 'mlp.c_proj.bias', shape: [C], init: 'zeros', group: 'trunk', block: i },
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

  /** Reward: the score head averaged over each row's real tokens (`mean`, default) or read at its last real
   *  token (`last`, TRL's sequence classification); RewardModelConfig.pooling says why mean is the default.
   *  → [B] */
  reward(ids: Ids, attentionMask: Ids, pooling: RewardPooling = 'mean'): tf.Tensor1D {
    if (!this.heads.reward) throw new Error('model has no reward head');
    return tf.tidy(() => {
      const { t: idt, B, T } = idsTensor(ids);
      const mask = maskArray(attentionMask);
      const hidden = this.trunk(idt, B, T, mask);
      const scores = linear(hidden, this.w('score.weight') as tf.Tensor2D, this.w('score.bias') as tf.Tensor1D).reshape([B, T]); // [B, T]
      const pick = new Float32Array(B * T); // weights over positions (a weighted sum: gather has no wasm gradient)
      for (let b = 0; b < B; b++) {
        let n = 0, last = -1;
        for (let t = 0; t < T; t++) if (mask[b * T + t]) (n++, (last = t));
        if (n === 0) throw new Error(`row ${b} of the attention mask has no tokens`);
        if (pooling === 'last') pick[b * T + last] = 1;
        else for (let t = 0; t < T; t++) if (mask[b * T + t]) pick[b * T + t] = 1 / n;
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
    const c = this.config, H = c.nHead, N = B * T;
    // Positions: 0..T-1 for every row, unless a mask says some leading tokens are padding.
    const wpe = this.w('wpe.weight') as tf.Tensor2D;
    const tokens = embed(ids, this.w('wte.weight') as tf.Tensor2D); // [N, C]
    let x: tf.Tensor2D;
    if (!mask) {
      x = addPositions(tokens, wpe, B, T);
    } else {
      const p = new Int32Array(N);
      for (let b = 0; b < B; b++) for (let t = 0, n = 0; t < T; t++) p[b * T + t] = mask[b * T + t] ? n++ : 0;
      x = tf.add(tokens, embed(tf.tensor1d(p, 'int32'), wpe));
    }

    // Additive attention bias: causal, plus padded keys when a mask is given. [T, T] or [B, 1, T, T]
    const bias = new Float32Array((mask ? B : 1) * T * T);
    for (let b = 0; b < (mask ? B : 1); b++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < T; j++) if (j > i || (mask && !mask[b * T + j])) bias[b * T * T + i * T + j] = -1e9;
    const attBias = mask ? tf.tensor4d(bias, [B, 1, T, T]) : tf.tensor2d(bias, [T, T]);
    if (tf.getBackend() === 'wasm') installWasmKernelFixes(); // idempotent; ensureBackend() normally did it

    for (let l = 0; l < c.nLayer; l++) {
      const p = `h.${l}.`;
      const g = (n: string) => this.w(p + n);
      // --- causal self-attention
      const h = layerNorm(x, g('ln_1.weight') as tf.Tensor1D, g('ln_1.bias') as tf.Tensor1D, c.layerNormEps);
      const qkv = linear(h, g('attn.c_attn.weight') as tf.Tensor2D, g('attn.c_attn.bias') as tf.Tensor1D); // [N, 3C]
      const y = attention(qkv, attBias, B, T, H); // [N, C]
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
