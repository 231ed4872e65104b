// The GPT-2 decoder laid out as ONNX nodes (opset 17), shared by the policy and reward exporters:
// token + position embeddings → nLayer × [pre-LN causal self-attention, pre-LN GELU MLP] → final LayerNorm.
// Attention is built from MatMul/Softmax (no contrib ops), so any ONNX runtime can run it; ORT's optimizer
// still fuses LayerNorm, GELU and MatMul+Add where it recognises them.
//
// Masking: one additive bias [B, 1, S, T] (T = past + current keys) is computed once from the attention mask
// and the causal rule "key index ≤ query index", and added to every layer's scores. Masked keys get -1e9,
// which underflows exp() to exactly 0, so padded keys (past or current) contribute nothing. A query row
// with no allowed key at all (a left-pad position) becomes a uniform average: finite, and never read.
import type { ModelConfig } from '../../shared/model-config';
import type { SafeTensors } from '../safetensors';
import { DType, type GraphBuilder } from './graph-builder';
import { backboneShapes, take } from './weights';

/** Bias added to the scores of masked keys; large enough that exp() is exactly 0 in float32. */
export const MASKED_BIAS = -1e9;

export interface LayerCache {
  /** past key/value inputs [B, nHead, past, headDim]; omitted for graphs without a cache. */
  pastKey?: string;
  pastValue?: string;
  /** names for the present key/value outputs [B, nHead, past + seq, headDim]. */
  presentKey?: string;
  presentValue?: string;
}

/** Adds the (shape-checked) backbone weights as initializers under their safetensors names. */
export function addBackboneWeights(g: GraphBuilder, weights: SafeTensors, c: ModelConfig): void {
  for (const [name, shape] of Object.entries(backboneShapes(c))) g.weight(name, shape, take(weights, name, shape).data);
}

/**
 * The additive attention bias [B, 1, S, T] from an int64 mask [B, T] (1 = real) for S queries that are the
 * last S of the T positions: 0 where key ≤ query and the key is real, MASKED_BIAS elsewhere.
 */
export function attentionBias(g: GraphBuilder, attentionMask: string, inputIds: string): string {
  const one = g.constInt('one', [1], []);
  const zero = g.constInt('zero', [0], []);
  const total = g.node('Squeeze', [g.node('Shape', [attentionMask], { attrs: { start: 1, end: 2 } }), g.constInt('axes0', [0])]); // T
  const seq = g.node('Squeeze', [g.node('Shape', [inputIds], { attrs: { start: 1, end: 2 } }), g.constInt('axes0', [0])]); // S
  const keyIdx = g.node('Range', [zero, total, one]); // [T]
  const queryIdx = g.node('Range', [g.node('Sub', [total, seq]), total, one]); // [S]: absolute positions of the queries
  const causal = g.node('LessOrEqual', [
    g.node('Unsqueeze', [keyIdx, g.constInt('axes', [0])]), // [1, T]
    g.node('Unsqueeze', [queryIdx, g.constInt('axes', [1])]), // [S, 1]
  ]); // [S, T] bool
  const real = g.node('Unsqueeze', [g.node('Cast', [attentionMask], { attrs: { to: DType.bool } }), g.constInt('axes', [1, 2])]); // [B, 1, 1, T]
  const allowed = g.node('And', [causal, real]); // [B, 1, S, T]
  return g.node('Where', [allowed, g.constFloat('zero_f', [0]), g.constFloat('masked', [MASKED_BIAS])], { name: 'attn_bias' });
}

/** y = x @ W + b on the 2-D residual stream: one Gemm node (bias fused), [N, in] → [N, out]. */
function linear(g: GraphBuilder, x: string, prefix: string): string {
  return g.node('Gemm', [x, `${prefix}.weight`, `${prefix}.bias`]);
}

function layerNorm(g: GraphBuilder, x: string, prefix: string, eps: number): string {
  return g.node('LayerNormalization', [x, `${prefix}.weight`, `${prefix}.bias`], { attrs: { axis: -1, epsilon: { float: eps } } });
}

/** GELU, tanh approximation (GPT-2), in the exact form ORT's FastGelu fusion recognises. */
function gelu(g: GraphBuilder, x: string): string {
  const cube = g.node('Pow', [x, g.constFloat('three', [3])]);
  const inner = g.node('Add', [x, g.node('Mul', [cube, g.constFloat('c', [0.044715])])]);
  const t = g.node('Tanh', [g.node('Mul', [inner, g.constFloat('sqrt_2_pi', [Math.sqrt(2 / Math.PI)])])]);
  return g.node('Mul', [g.node('Mul', [x, g.constFloat('half', [0.5])]), g.node('Add', [t, g.constFloat('one_f', [1])])]);
}

/**
 * Causal self-attention of block `i` on x [N, d], over the past cache (when given) and the new keys; exposes
 * present key/value when asked. `qkvShape` is the int64 shape [B, S, 3H, hd] computed once per graph.
 */
function attention(g: GraphBuilder, x: string, i: number, c: ModelConfig, bias: string, qkvShape: string, cache: LayerCache): string {
  const p = `h.${i}.attn`;
  // One Reshape + Transpose + Split turns [N, 3d] into q, k, v heads (fewer nodes per decode step matters:
  // a step of a small model costs ORT's per-node dispatch far more than arithmetic).
  const qkv = g.node('Reshape', [linear(g, x, `${p}.c_attn`), qkvShape]); // [B, S, 3H, hd]
  const heads = g.node('Transpose', [qkv], { attrs: { perm: [0, 2, 1, 3] } }); // [B, 3H, S, hd]
  const [q0, k0, v0] = g.nodeMulti('Split', [heads, g.constInt('split', [c.nHead, c.nHead, c.nHead])], { attrs: { axis: 1 }, count: 3 }); // [B, H, S, hd] each
  // Scaling q (S·hd values) is cheaper than scaling the scores (S·T); ORT folds it into the MatMul.
  const q = g.node('Mul', [q0, g.constFloat('scale', [1 / Math.sqrt(c.dModel / c.nHead)])]);
  if (cache.pastKey && cache.pastValue) {
    // Attention over past ++ new keys without materialising past ++ new: the scores of the past keys and of the
    // new keys are computed separately and joined ([B, H, S, past + S] is small), and the weighted sum is split
    // the same way. Concatenating the cache instead copies all of it on every decode step (it was three
    // quarters of a batch-32 step). present.{i}.* is still the Concat the contract promises, but nothing in
    // the attention reads it, so a step graph (shared/sampling/step-graph.ts) can drop it.
    const present = (x: string, past: string, name?: string) => g.node('Concat', [past, x], { attrs: { axis: 2 }, outputs: name ? [name] : undefined });
    if (cache.presentKey) present(k0, cache.pastKey, cache.presentKey);
    if (cache.presentValue) present(v0, cache.pastValue, cache.presentValue);
    const keysT = (k: string) => g.node('Transpose', [k], { attrs: { perm: [0, 1, 3, 2] } });
    const scores = g.node('Add', [
      g.node('Concat', [g.node('MatMul', [q, keysT(cache.pastKey)]), g.node('MatMul', [q, keysT(k0)])], { attrs: { axis: -1 } }),
      bias,
    ]); // [B, H, S, past + S]
    const probs = g.node('Softmax', [scores], { attrs: { axis: -1 } });
    const pastLen = g.node('Shape', [cache.pastKey], { attrs: { start: 2, end: 3 } }); // [1]
    const axis = g.constInt('axis_last', [3]);
    const pPast = g.node('Slice', [probs, g.constInt('zero_1', [0]), pastLen, axis]);
    const pNew = g.node('Slice', [probs, pastLen, g.constInt('int_max', [2 ** 53 - 1]), axis]);
    const mixed = g.node('Add', [g.node('MatMul', [pPast, cache.pastValue]), g.node('MatMul', [pNew, v0])]); // [B, H, S, hd]
    const ctx = g.node('Transpose', [mixed], { attrs: { perm: [0, 2, 1, 3] } }); // [B, S, H, hd]
    const merged = g.node('Reshape', [ctx, g.constInt('rows_shape', [-1, c.dModel])]); // [N, d]
    return linear(g, merged, `${p}.c_proj`);
  }
  let k = k0;
  let v = v0;
  if (cache.presentKey) k = g.node('Identity', [k], { outputs: [cache.presentKey] });
  if (cache.presentValue) v = g.node('Identity', [v], { outputs: [cache.presentValue] });
  const scores = g.node('Add', [g.node('MatMul', [q, g.node('Transpose', [k], { attrs: { perm: [0, 1, 3, 2] } })]), bias]); // [B, H, S, T]
  const probs = g.node('Softmax', [scores], { attrs: { axis: -1 } });
  const ctx = g.node('Transpose', [g.node('MatMul', [probs, v])], { attrs: { perm: [0, 2, 1, 3] } }); // [B, S, H, hd]
  const merged = g.node('Reshape', [ctx, g.constInt('rows_shape', [-1, c.dModel])]); // [N, d]
  return linear(g, merged, `${p}.c_proj`);
}

/**
 * The decoder body. Inputs are value names already in the graph: token ids and positions (int64 [B, S]) and
 * the attention bias from attentionBias(). The residual stream is kept 2-D, [N = B·S, d], so every linear
 * layer is one Gemm. Returns the final hidden states after ln_f, [N, d].
 */
export function gptBody(
  g: GraphBuilder,
  c: ModelConfig,
  inputs: { inputIds: string; positionIds: string; bias: string; caches?: LayerCache[] },
): string {
  const tok = g.node('Gather', ['wte.weight', inputs.inputIds], { attrs: { axis: 0 } }); // [B, S, d]
  const pos = g.node('Gather', ['wpe.weight', inputs.positionIds], { attrs: { axis: 0 } }); // [B, S, d]
  let x = g.node('Reshape', [g.node('Add', [tok, pos]), g.constInt('rows_shape', [-1, c.dModel])]); // [N, d]
  const qkvShape = g.node('Concat', [g.node('Shape', [inputs.inputIds]), g.constInt('qkv_tail', [3 * c.nHead, c.dModel / c.nHead])], { attrs: { axis: 0 } });
  for (let i = 0; i < c.nLayer; i++) {
    const a = attention(g, layerNorm(g, x, `h.${i}.ln_1`, c.layerNormEps), i, c, inputs.bias, qkvShape, inputs.caches?.[i] ?? {});
    x = g.node('Add', [x, a]);
    const h = gelu(g, linear(g, layerNorm(g, x, `h.${i}.ln_2`, c.layerNormEps), `h.${i}.mlp.c_fc`));
    x = g.node('Add', [x, linear(g, h, `h.${i}.mlp.c_proj`)]);
  }
  return layerNorm(g, x, 'ln_f', c.layerNormEps);
}

/** A scalar head ([d, 1] weight + [1] bias) at every position: hidden [N, d] → [B, S] (shaped like inputIds). */
export function scalarHead(g: GraphBuilder, hidden: string, prefix: 'v_head' | 'score', inputIds: string): string {
  return g.node('Reshape', [linear(g, hidden, prefix), g.node('Shape', [inputIds])]);
}
