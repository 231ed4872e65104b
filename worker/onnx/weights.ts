// The GPT-2 tensor names and shapes every side agrees on (see worker/README.md for the TF.js ↔ safetensors ↔
// ONNX map). The exporters validate their input against this table before writing a graph, so a weight with
// the wrong layout fails loudly at export time instead of giving wrong logits at serving time.
import type { ModelConfig } from '../../shared/model-config';
import type { SafeTensor, SafeTensors } from '../safetensors';

export type Head = 'value' | 'score';

/** Name → shape of every tensor in the backbone (embeddings, blocks, final LayerNorm). */
export function backboneShapes(c: ModelConfig): Record<string, number[]> {
  const d = c.dModel;
  const hidden = c.mlpRatio * d;
  const shapes: Record<string, number[]> = {
    'wte.weight': [c.vocabSize, d],
    'wpe.weight': [c.contextLength, d],
    'ln_f.weight': [d],
    'ln_f.bias': [d],
  };
  for (let i = 0; i < c.nLayer; i++) {
    const p = `h.${i}.`;
    Object.assign(shapes, {
      [`${p}ln_1.weight`]: [d],
      [`${p}ln_1.bias`]: [d],
      [`${p}attn.c_attn.weight`]: [d, 3 * d],
      [`${p}attn.c_attn.bias`]: [3 * d],
      [`${p}attn.c_proj.weight`]: [d, d],
      [`${p}attn.c_proj.bias`]: [d],
      [`${p}ln_2.weight`]: [d],
      [`${p}ln_2.bias`]: [d],
      [`${p}mlp.c_fc.weight`]: [d, hidden],
      [`${p}mlp.c_fc.bias`]: [hidden],
      [`${p}mlp.c_proj.weight`]: [hidden, d],
      [`${p}mlp.c_proj.bias`]: [d],
    });
  }
  return shapes;
}

/** Name → shape of a scalar head: `v_head.*` (policy value) or `score.*` (reward). */
export function headShapes(c: ModelConfig, head: Head): Record<string, number[]> {
  const p = head === 'value' ? 'v_head' : 'score';
  return { [`${p}.weight`]: [c.dModel, 1], [`${p}.bias`]: [1] };
}

/** Returns the named tensor after checking it exists with the expected shape. */
export function take(weights: SafeTensors, name: string, shape: number[]): SafeTensor {
  const t = weights[name];
  if (!t) throw new Error(`missing weight "${name}" (expected shape [${shape}])`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`weight "${name}" has shape [${t.shape}], expected [${shape}]`);
  }
  if (t.data.length !== shape.reduce((a, b) => a * b, 1)) throw new Error(`weight "${name}" data length does not match its shape`);
  return t;
}

/** Checks every backbone tensor (and the given heads) is present with the right shape. */
export function checkWeights(weights: SafeTensors, c: ModelConfig, heads: Head[]): void {
  const expected = { ...backboneShapes(c), ...Object.assign({}, ...heads.map((h) => headShapes(c, h))) };
  for (const [name, shape] of Object.entries(expected)) take(weights, name, shape as number[]);
}

/** A zero scalar head: used when a base LM without a trained value head is exported as a policy. */
export function zeroHead(c: ModelConfig, head: Head): SafeTensors {
  const p = head === 'value' ? 'v_head' : 'score';
  return {
    [`${p}.weight`]: { dtype: 'F32', shape: [c.dModel, 1], data: new Float32Array(c.dModel) },
    [`${p}.bias`]: { dtype: 'F32', shape: [1], data: new Float32Array(1) },
  };
}

/**
 * GPT-2-style random initial weights (N(0, 0.02), residual projections N(0, 0.02/√(2·nLayer)), unit gains,
 * zero biases), seeded: for benchmarks and exports of an untrained model. Training uses worker/model's own
 * initialiser; this one exists so ONNX tooling does not need TF.js.
 */
export function initGpt2Weights(c: ModelConfig, seed: number, heads: Head[] = ['value']): SafeTensors {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(uniform(), 1e-12))) * Math.cos(2 * Math.PI * uniform());
  const shapes: Record<string, number[]> = { ...backboneShapes(c), ...Object.assign({}, ...heads.map((h) => headShapes(c, h))) };
  const out: SafeTensors = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) data.fill(1);
    else if (!name.endsWith('.bias')) {
      const std = /c_proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02;
      for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    }
    out[name] = { dtype: 'F32', shape, data };
  }
  return out;
}
