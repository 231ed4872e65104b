// AdamW (Loshchilov & Hutter 2019) over one flat Float32Array of parameters, plus the cosine learning-rate
// schedule with linear warmup used by GPT-2/nanoGPT. Plain JS loops: ~1 M parameters update in a few ms, the
// state is three arrays that checkpoint trivially, and the same code runs on any TF.js backend.
import type { ParamLayout } from './flat';

export interface AdamWConfig {
  /** Adam β1. */
  beta1: number;
  /** Adam β2 (nanoGPT uses 0.95 for small models). */
  beta2: number;
  /** Adam ε. */
  eps: number;
  /** Decoupled weight decay, applied to matrices only (not biases, LayerNorm gains or the 1-D heads' bias). */
  weightDecay: number;
  /** Clip the global gradient L2 norm to this (0 = off). */
  gradClip: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, gradClip: 1.0 };

export interface AdamWState {
  /** Steps taken so far (bias correction uses step + 1). */
  step: number;
  m: Float32Array;
  v: Float32Array;
}

export function newAdamWState(n: number): AdamWState {
  return { step: 0, m: new Float32Array(n), v: new Float32Array(n) };
}

/** Global L2 norm of a gradient. */
export function gradNorm(g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/** One AdamW step in place; returns the gradient norm before clipping. `decay[i]` = 1 where weight decay applies. */
export function adamwStep(params: Float32Array, grad: Float32Array, state: AdamWState, lr: number, cfg: AdamWConfig, decay: Uint8Array): number {
  const norm = gradNorm(grad);
  const scale = cfg.gradClip > 0 && norm > cfg.gradClip ? cfg.gradClip / norm : 1;
  const t = state.step + 1;
  const bc1 = 1 - Math.pow(cfg.beta1, t), bc2 = 1 - Math.pow(cfg.beta2, t);
  const { m, v } = state;
  const b1 = cfg.beta1, b2 = cfg.beta2, wd = lr * cfg.weightDecay;
  for (let i = 0; i < params.length; i++) {
    const g = grad[i] * scale;
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    let p = params[i];
    if (decay[i]) p -= wd * p;
    params[i] = p - (lr * (m[i] / bc1)) / (Math.sqrt(v[i] / bc2) + cfg.eps);
  }
  state.step = t;
  return norm;
}

/** 1 for every element of a 2-D weight (matrices and embeddings decay; biases and gains do not). */
export function decayMask(layout: ParamLayout): Uint8Array {
  const mask = new Uint8Array(layout.size);
  for (const e of layout.entries) if (e.shape.length === 2 && e.shape[1] > 1) mask.fill(1, e.offset, e.offset + e.size);
  return mask;
}

export interface CosineSchedule {
  /** Peak learning rate, reached after warmup. */
  maxLr: number;
  /** Floor at the end of the cosine (nanoGPT: maxLr / 10). */
  minLr: number;
  /** Linear warmup steps. */
  warmupSteps: number;
  /** Step at which the cosine reaches minLr. */
  totalSteps: number;
}

export function cosineLr(step: number, s: CosineSchedule): number {
  if (step < s.warmupSteps) return (s.maxLr * (step + 1)) / s.warmupSteps;
  if (step >= s.totalSteps) return s.minLr;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  return s.minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (s.maxLr - s.minLr);
}
