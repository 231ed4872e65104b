// One flat Float32Array for all of a model's weights, in paramSpecs order: what the data-parallel trainer
// shares between threads (SharedArrayBuffer), what AdamW updates and what checkpoints store.
import * as tf from '@tensorflow/tfjs';
import type { GPT, NamedArray, ParamSpec } from '../model/gpt';

export interface ParamLayout {
  entries: { name: string; shape: number[]; offset: number; size: number; group: ParamSpec['group'] }[];
  size: number;
}

export function layoutOf(specs: ParamSpec[]): ParamLayout {
  let offset = 0;
  const entries = specs.map((s) => {
    const size = s.shape.reduce((a, b) => a * b, 1);
    const e = { name: s.name, shape: [...s.shape], offset, size, group: s.group };
    offset += size;
    return e;
  });
  return { entries, size: offset };
}

/** Copies the model's weights into `out` (allocated if omitted). */
export function readParams(model: GPT, layout: ParamLayout, out = new Float32Array(layout.size)): Float32Array {
  for (const e of layout.entries) out.set(model.weights.get(e.name)!.dataSync() as Float32Array, e.offset);
  return out;
}

/** Assigns `flat` to the model's variables. */
export function writeParams(model: GPT, layout: ParamLayout, flat: Float32Array): void {
  tf.tidy(() => {
    for (const e of layout.entries) model.weights.get(e.name)!.assign(tf.tensor(flat.slice(e.offset, e.offset + e.size), e.shape, 'float32'));
  });
}

/** Named views (copies) of a flat array, e.g. for safetensors. */
export function toNamed(layout: ParamLayout, flat: Float32Array): Record<string, NamedArray> {
  const out: Record<string, NamedArray> = {};
  for (const e of layout.entries) out[e.name] = { dtype: 'F32', shape: [...e.shape], data: flat.slice(e.offset, e.offset + e.size) };
  return out;
}
