// Each wasm kernel fix (backend-wasm-fixes.ts) against the pure-JS cpu backend on the same inputs: copies must
// match bit for bit, arithmetic to float32 rounding.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { installWasmKernelFixes, wasmKernelFixesInstalled } from './backend-wasm-fixes';

let seed = 1;
const rand = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1);

/** Runs f on fresh tensors of `inputs` under each backend and returns both results as flat arrays with shapes. */
async function onBoth(inputs: { data: Float32Array | Int32Array; shape: number[] }[], f: (...t: tf.Tensor[]) => tf.Tensor) {
  const out: Record<string, { data: number[]; shape: number[] }> = {};
  for (const name of ['cpu', 'wasm']) {
    await tf.setBackend(name);
    const ts = inputs.map((i) => tf.tensor(i.data, i.shape, i.data instanceof Int32Array ? 'int32' : 'float32'));
    const y = f(...ts);
    out[name] = { data: Array.from(y.dataSync()), shape: y.shape };
    tf.dispose([...ts, y]);
  }
  return out as { cpu: { data: number[]; shape: number[] }; wasm: { data: number[]; shape: number[] } };
}

const f32 = (shape: number[]) => ({ data: rand(shape.reduce((a, b) => a * b, 1)), shape });

beforeAll(async () => {
  await tf.setBackend('wasm');
  installWasmKernelFixes();
  expect(wasmKernelFixesInstalled()).toBe(true);
});

describe('wasm kernel fixes', () => {
  it('Slice copies the same elements (contiguous, strided, whole trailing axes)', async () => {
    const cases: [number[], number[], number[]][] = [
      [[6, 5], [1, 0], [3, 5]], [[6, 5], [2, 1], [3, 2]], [[4, 6, 5], [1, 2, 0], [2, 3, 5]], [[2, 12, 3, 4], [0, 4, 0, 0], [2, 4, 3, 4]], [[3, 4, 5], [1, 1, 1], [1, 2, 3]],
    ];
    for (const [shape, begin, size] of cases) {
      const r = await onBoth([f32(shape)], (x) => tf.slice(x, begin, size));
      expect(r.wasm, `${shape} ${begin} ${size}`).toEqual(r.cpu);
    }
  });

  it('Transpose moves the same elements for every rank it sees', async () => {
    // 2-D through each path: stock 3-D (even rows, ≤ 384 columns), 128-column blocks (even rows, wider,
    // multiple of 128), JS tiles (odd rows; other widths)
    const cases: [number[], number[]][] = [[[38, 70], [1, 0]], [[6, 512], [1, 0]], [[4, 1024], [1, 0]], [[37, 70], [1, 0]], [[8, 500], [1, 0]], [[1, 9, 4], [0, 2, 1]], [[3, 7, 5], [0, 2, 1]], [[2, 5, 3, 6], [0, 2, 1, 3]], [[2, 3, 4], [2, 0, 1]], [[4, 1, 3], [2, 1, 0]]];
    for (const [shape, perm] of cases) {
      const r = await onBoth([f32(shape)], (x) => tf.transpose(x, perm));
      expect(r.wasm, `${shape} ${perm}`).toEqual(r.cpu);
    }
    const ints = await onBoth([{ data: Int32Array.from({ length: 12 }, (_, i) => i), shape: [3, 4] }], (x) => tf.transpose(x));
    expect(ints.wasm).toEqual(ints.cpu);
  });

  it('batched matMul equals the cpu result, and stays right when operands are freed and reallocated', async () => {
    for (const [a, b] of [[[6, 17, 9], [6, 9, 13]], [[2, 3, 5, 4], [2, 3, 4, 7]]]) {
      for (let rep = 0; rep < 3; rep++) {
        const r = await onBoth([f32(a), f32(b)], (x, y) => tf.matMul(x, y));
        expect(r.wasm.shape).toEqual(r.cpu.shape);
        r.wasm.data.forEach((v, i) => expect(Math.abs(v - r.cpu.data[i])).toBeLessThan(1e-5));
      }
    }
  });

  it('UnsortedSegmentSum and GatherV2 of rows equal the cpu kernels', async () => {
    const ids = { data: Int32Array.from([0, 3, 3, 1, 0, 2, 3, 3, 1, 1]), shape: [10] };
    const seg = await onBoth([f32([10, 20]), ids], (x, i) => tf.unsortedSegmentSum(x, i as tf.Tensor1D, 5));
    expect(seg.wasm.shape).toEqual(seg.cpu.shape);
    seg.wasm.data.forEach((v, i) => expect(Math.abs(v - seg.cpu.data[i])).toBeLessThan(1e-6));
    for (const width of [3, 20]) {
      const g = await onBoth([f32([5, width]), { data: Int32Array.from([4, 0, 0, 2]), shape: [2, 2] }], (x, i) => tf.gather(x, i));
      expect(g.wasm).toEqual(g.cpu);
    }
    await tf.setBackend('wasm');
    expect(() => tf.gather(tf.ones([3, 2]), tf.tensor1d([3], 'int32'))).toThrow(/not in \[0, 2\]/);
  });

  it('OneHot gives real ones in float32 and int32 (the stock kernel wrote int32 bits into float32)', async () => {
    for (const dtype of ['float32', 'int32'] as const) {
      const r = await onBoth([{ data: Int32Array.from([2, 0, -1, 5, 1]), shape: [5] }], (i) => tf.oneHot(i as tf.Tensor1D, 4, 1, 0, dtype));
      expect(r.wasm, dtype).toEqual(r.cpu);
      expect(r.wasm.data.reduce((a, b) => a + b, 0)).toBe(3);
    }
  });

  it('Identity (clone) shares data without changing values, and disposing either side keeps the other', async () => {
    await tf.setBackend('wasm');
    const a = tf.tensor1d([1, 2, 3]);
    const b = tf.clone(a);
    a.dispose();
    expect(Array.from(b.dataSync())).toEqual([1, 2, 3]);
    b.dispose();
  });
});
