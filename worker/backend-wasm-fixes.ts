// A kernel fix for @tensorflow/tfjs-backend-wasm 4.22, installed by backend.ts when wasm is selected.
//
// Slice: the stock kernel starts with backend.readSync(x), which copies the WHOLE input out of the wasm heap
// (HEAPU8.slice) on every call, so taking one small slice of a large tensor costs as much as copying it:
// 128 row-slices of an [8192, 32] tensor took ~390 ms of CPU, ~3 ms each (measured here). This version reads
// the input through a view of the heap (typedArrayFromHeap) and copies only the selected elements: the same
// result, bit for bit. GPT's attention (worker/model/gpt.ts) slices per batch·head, which is only practical
// with this fix.
import * as tf from '@tensorflow/tfjs';

/** What the kernel needs from the wasm backend (BackendWasm is not exported from the package root). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function sliceKernel(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const backend = args.backend as WasmBackendLike;
  const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
  const [begin_, size_] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
  if (x.dtype === 'string') throw new Error('Slice of string tensors is not supported by this kernel');
  // makeOutput may grow the wasm memory, which detaches earlier views: take views only after it
  const out = backend.makeOutput(size_, x.dtype);
  const n = tf.util.sizeFromShape(size_);
  if (n === 0) return out;
  const xVals = backend.typedArrayFromHeap(x);
  const outVals = backend.typedArrayFromHeap(out);
  const strides = tf.util.computeStrides(x.shape);
  if (tf.slice_util.isSliceContinous(x.shape, begin_, size_)) {
    const off = tf.slice_util.computeFlatOffset(begin_, strides);
    outVals.set(xVals.subarray(off, off + n));
    return out;
  }
  // Copy runs along the last axis; the outer indices advance like an odometer.
  const rank = x.shape.length;
  const run = size_[rank - 1];
  const rows = n / run;
  const idx = new Array<number>(rank - 1).fill(0);
  for (let r = 0, o = 0; r < rows; r++, o += run) {
    let off = begin_[rank - 1];
    for (let d = 0; d < rank - 1; d++) off += (begin_[d] + idx[d]) * strides[d];
    outVals.set(xVals.subarray(off, off + run), o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++idx[d] < size_[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

let installed = false;

/** Replaces the wasm Slice kernel (idempotent). Call after the wasm backend is registered. */
export function installWasmKernelFixes(): void {
  if (installed) return;
  tf.unregisterKernel('Slice', 'wasm');
  tf.registerKernel({ kernelName: 'Slice', backendName: 'wasm', kernelFunc: sliceKernel as unknown as tf.KernelFunc });
  installed = true;
}

export function wasmKernelFixesInstalled(): boolean {
  return installed;
}
