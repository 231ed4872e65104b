// Kernel fixes for @tensorflow/tfjs-backend-wasm 4.22, installed by backend.ts when wasm is selected. Each
// replaces a stock kernel that cost GPT training (worker/model/gpt.ts) a large factor on this backend, and
// gives the same numbers (copies are bit for bit; the batched matMul runs the stock 2-D kernel per matrix).
// Figures are single-thread times on this project's machine (2-core AMD EPYC; process CPU time when other work
// shared it), stock kernel and replacement on the same inputs.
//
// - Slice: the stock kernel starts with backend.readSync(x), which copies the WHOLE input out of the wasm heap
//   (HEAPU8.slice) on every call: 128 row-slices of an [8192, 32] tensor took ~390 ms, ~3 ms each. This one
//   reads through a view of the heap and copies only the selected elements.
// - Transpose of a matrix: the stock kernel took 1.1–1.8 ms for [2048, 128] → [128, 2048], 6–11 ms for
//   [2048, 512], 26–37 ms for [2048, 2048] (its 2-D loop scatters the writes). This one recasts the matrix as
//   a 3-D or 4-D transpose for the stock kernel's faster loops (0.3, 2.0 and 9.3 ms), or, for shapes that do
//   not split that way, copies 16 × 64 tiles in JS on heap views. Higher-rank transposes are left as they are.
// - BatchMatMul with a batch (3-D) and no transpose flags: the stock kernel takes XNNPACK's fast path only
//   for a single matrix and otherwise a naive triple loop: 1–2 GFLOP/s on attention shapes ([128, 64, 64] @
//   [128, 64, 32], [32, 256, 256] @ [32, 256, 32]). This one registers, for each matrix of the batch, a
//   zero-copy tensor id pointing into the operands and the output, and runs the stock kernel's single-matrix
//   path on it: 14–21 GFLOP/s on the same shapes.
// - UnsortedSegmentSum: missing from the wasm backend (so tf.gather has no gradient there); a JS scatter-add.
// - GatherV2 of table rows: the stock kernel took ~10 ms for 2,048 rows of a [2048, 128] table; this one copies
//   whole rows on heap views (~0.5 ms).
// - Identity and OneHot: see identityKernel and oneHotKernel (the stock OneHot ignores its dtype).
import * as tf from '@tensorflow/tfjs';

/** What the kernels need from the wasm backend (BackendWasm is not exported from the package root). */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  dataIdMap: { get(dataId: tf.DataId): { id: number; memoryOffset: number } };
  dataIdNextNumber: number;
  wasm: {
    cwrap(name: string, ret: null, args: string[]): (...a: unknown[]) => void;
    tfjs: { registerTensor(id: number, size: number, memoryOffset: number): void; disposeData(id: number): void };
  };
}

interface KernelArgs {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}

/** The stock kernels, kept as fallbacks for the cases the replacements do not handle. */
const stock = new Map<string, tf.KernelFunc>();
const callStock = (name: string, args: KernelArgs) => stock.get(name)!(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;

// ---------------------------------------------------------------------------------------------------------
// Slice

function sliceKernel(args: KernelArgs): tf.TensorInfo {
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
  // Copy contiguous runs: the last axis together with the axes before it that are taken whole (a slice of
  // axis 1 of [B, 3H, T, D] is B runs of H·T·D); the outer indices advance like an odometer.
  const rank = x.shape.length;
  let inner = rank - 1; // axes inner..rank-1 form one run
  while (inner > 0 && size_[inner] === x.shape[inner]) inner--;
  const run = size_.slice(inner).reduce((a, b) => a * b, 1);
  const rows = n / run;
  const idx = new Array<number>(inner).fill(0);
  for (let r = 0, o = 0; r < rows; r++, o += run) {
    let off = begin_[rank - 1]; // computeStrides omits the last axis (stride 1)
    for (let d = 0; d < rank - 1; d++) off += (begin_[d] + (d < inner ? idx[d] : 0)) * strides[d];
    outVals.set(xVals.subarray(off, off + run), o);
    for (let d = inner - 1; d >= 0; d--) {
      if (++idx[d] < size_[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Transpose

/** Drops size-1 axes and merges input axes that stay adjacent and in order: e.g. [B,T,H,D] perm [0,2,1,3]
 * stays 4-D, [N, C] perm [1, 0] stays 2-D, [1, R, C] perm [0, 2, 1] becomes 2-D. */
function simplifyPermutation(shape: number[], perm: number[]): { shape: number[]; perm: number[] } {
  const keep = shape.map((s) => s !== 1);
  const axes = perm.filter((a) => keep[a]); // output order of the kept input axes
  // group runs of consecutive input axes
  const groups: number[][] = [];
  for (const a of axes) {
    const g = groups[groups.length - 1];
    if (g && g[g.length - 1] + 1 === a) g.push(a);
    else groups.push([a]);
  }
  const byInput = [...groups].sort((g, h) => g[0] - h[0]);
  return {
    shape: byInput.map((g) => g.reduce((p, a) => p * shape[a], 1)),
    perm: groups.map((g) => byInput.indexOf(g)),
  };
}

/** out[j][i] = x[i][j] for x [R, C]: 16 × 64 tiles, read along columns of x and write
 * whole runs of out (fastest of the tilings measured on [2048, 128], [2048, 512], [2048, 2048]). */
function transpose2D(x: ArrayLike<number>, out: { [i: number]: number }, R: number, C: number): void {
  const BI = 16, BJ = 64;
  for (let j0 = 0; j0 < C; j0 += BJ) {
    const j1 = Math.min(C, j0 + BJ);
    for (let i0 = 0; i0 < R; i0 += BI) {
      const i1 = Math.min(R, i0 + BI);
      for (let j = j0; j < j1; j++) {
        let dst = j * R + i0, src = i0 * C + j;
        for (let i = i0; i < i1; i++, dst++, src += C) out[dst] = x[src];
      }
    }
  }
}

function transposeKernel(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  const perm = (args.attrs as unknown as { perm: number[] }).perm;
  const s = simplifyPermutation(x.shape, perm);
  // Only a plain 2-D transpose (after merging axes) is slow in the stock kernel; its 3-D and 4-D paths (e.g.
  // [BH, T, T] perm [0, 2, 1], [B, T, H, D] perm [0, 2, 1, 3]) ran 2–5× faster than this JS loop.
  if (s.shape.length !== 2 || (x.dtype !== 'float32' && x.dtype !== 'int32')) return callStock('Transpose', args);
  const [R, C] = s.shape;
  const outShape = perm.map((a) => x.shape[a]);
  const stockOn = (t: tf.TensorInfo, shape: number[], p: number[]) => callStock('Transpose', { ...args, inputs: { x: { ...t, shape } }, attrs: { perm: p } });
  if (R % 2 === 0 && C <= 384) {
    // The stock 3-D path walks the output in order (its 2-D path walks the input and scatters the writes), and
    // [R, C] → [C, R] is [2, R/2, C] perm [2, 0, 1]: 0.3 ms for [2048, 128], 0.8 ms for [2048, 384].
    return { ...stockOn(x, [2, R / 2, C], [2, 0, 1]), shape: outShape };
  }
  if (R % 2 === 0 && C % 128 === 0) {
    // Wider rows thrash the cache in that path (3.9 ms for [2048, 512], 25 ms for [2048, 2048]: a 2 KB or 8 KB
    // stride), so first regroup into 128-column blocks [C/128, R, 128] (contiguous runs), then transpose each
    // block as above: 2.0 and 9.3 ms.
    const G = C / 128;
    const blocks = stockOn(x, [R, G, 128], [1, 0, 2]);
    const out = stockOn(blocks, [G, 2, R / 2, 128], [0, 3, 1, 2]);
    (args.backend as { disposeData(d: tf.DataId): void }).disposeData(blocks.dataId);
    return { ...out, shape: outShape };
  }
  const backend = args.backend as WasmBackendLike;
  const out = backend.makeOutput(outShape, x.dtype);
  transpose2D(backend.typedArrayFromHeap(x), backend.typedArrayFromHeap(out), R, C);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// BatchMatMul

let wasmBatchMatMul: ((...a: unknown[]) => void) | null = null;

/** A tensor id the C++ side sees as `size` floats at byte `offset` (inside another tensor's memory). */
function registerView(backend: WasmBackendLike, offset: number, size: number): number {
  const id = backend.dataIdNextNumber++;
  backend.wasm.tfjs.registerTensor(id, size, offset);
  return id;
}

function batchMatMulKernel(args: KernelArgs): tf.TensorInfo {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const ra = a.shape.length, rb = b.shape.length;
  const batch = tf.util.sizeFromShape(a.shape.slice(0, -2));
  // Only the case the stock kernel runs slowly and this one handles: equal batch shapes > 1, no transposes.
  const sameBatch = ra === rb && a.shape.slice(0, -2).every((d, i) => d === b.shape[i]);
  if (transposeA || transposeB || batch <= 1 || !sameBatch || a.dtype !== 'float32' || b.dtype !== 'float32') return callStock('BatchMatMul', args);
  const [m, k] = a.shape.slice(-2), [k2, n] = b.shape.slice(-2);
  if (k !== k2) throw new Error(`matMul: inner dimensions ${k} and ${k2} of [${a.shape}] and [${b.shape}] differ`);
  const backend = args.backend as WasmBackendLike;
  // Internals of tfjs-backend-wasm 4.22 (the lockfile's version); if a release renames them, stay correct and slow.
  if (typeof backend.dataIdNextNumber !== 'number' || typeof backend.wasm?.tfjs?.registerTensor !== 'function') return callStock('BatchMatMul', args);
  wasmBatchMatMul ??= backend.wasm.cwrap('BatchMatMul', null, ['number', 'array', 'number', 'number', 'array', 'number', 'number', 'number', 'number']);
  const out = backend.makeOutput([...a.shape.slice(0, -2), m, n], 'float32');
  const aOff = backend.dataIdMap.get(a.dataId).memoryOffset, bOff = backend.dataIdMap.get(b.dataId).memoryOffset;
  const oOff = backend.dataIdMap.get(out.dataId).memoryOffset;
  const aShape = new Uint8Array(new Int32Array([1, m, k]).buffer), bShape = new Uint8Array(new Int32Array([1, k, n]).buffer);
  for (let i = 0; i < batch; i++) {
    const ai = registerView(backend, aOff + i * m * k * 4, m * k);
    const bi = registerView(backend, bOff + i * k * n * 4, k * n);
    const oi = registerView(backend, oOff + i * m * n * 4, m * n);
    wasmBatchMatMul(ai, aShape, 3, bi, bShape, 3, false, false, oi);
    // Disposing the ids frees no memory (it belongs to a, b and out) but drops the XNNPACK operator the stock
    // kernel caches under b's id, with b's packed values: nothing stale can be found under that id later.
    for (const id of [ai, bi, oi]) backend.wasm.tfjs.disposeData(id);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// UnsortedSegmentSum

function unsortedSegmentSumKernel(args: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = args.inputs as { x: tf.TensorInfo; segmentIds: tf.TensorInfo };
  const { numSegments } = args.attrs as unknown as { numSegments: number };
  if (x.dtype !== 'float32' || segmentIds.shape.length !== 1 || segmentIds.shape[0] !== x.shape[0]) {
    throw new Error('UnsortedSegmentSum (wasm fix): only float32 data with one segment id per row');
  }
  const backend = args.backend as WasmBackendLike;
  const out = backend.makeOutput([numSegments, ...x.shape.slice(1)], 'float32');
  const xv = backend.typedArrayFromHeap(x), ids = backend.typedArrayFromHeap(segmentIds), ov = backend.typedArrayFromHeap(out);
  const row = tf.util.sizeFromShape(x.shape.slice(1));
  ov.fill(0);
  for (let r = 0; r < ids.length; r++) {
    const s = ids[r];
    if (s < 0 || s >= numSegments) continue; // as TensorFlow: out-of-range ids are dropped
    for (let e = 0, src = r * row, dst = s * row; e < row; e++) ov[dst + e] += xv[src + e];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// GatherV2 (rows of a table), OneHot, Identity

function gatherKernel(args: KernelArgs): tf.TensorInfo {
  const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
  const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
  const rowsOfTable = tf.util.parseAxisParam(axis, x.shape)[0] === 0 && !batchDims && x.shape.length >= 1;
  if (!rowsOfTable || (x.dtype !== 'float32' && x.dtype !== 'int32') || indices.dtype !== 'int32') return callStock('GatherV2', args);
  const backend = args.backend as WasmBackendLike;
  const row = tf.util.sizeFromShape(x.shape.slice(1)), R = x.shape[0];
  const out = backend.makeOutput([...indices.shape, ...x.shape.slice(1)], x.dtype);
  const xv = backend.typedArrayFromHeap(x), ids = backend.typedArrayFromHeap(indices), ov = backend.typedArrayFromHeap(out);
  for (let i = 0; i < ids.length; i++) {
    const r = ids[i];
    if (r < 0 || r >= R) throw new Error(`GatherV2: the index value ${r} is not in [0, ${R - 1}]`);
    if (row >= 16) ov.set(xv.subarray(r * row, (r + 1) * row), i * row);
    else for (let e = 0; e < row; e++) ov[i * row + e] = xv[r * row + e];
  }
  return out;
}

/** The stock kernel writes int32 ones whatever dtype is asked for, so tf.oneHot(…, 'float32') came out as
 * denormals (~1.4e-45) instead of 1; int32 then Cast costs ~10 ms for [2048, 2048]. A fill plus one write per
 * row, in any dtype; out-of-range indices give an all-off row, as in TensorFlow. */
function oneHotKernel(args: KernelArgs): tf.TensorInfo {
  const indices = args.inputs.indices as tf.TensorInfo;
  const { dtype, depth, onValue, offValue } = args.attrs as unknown as { dtype: tf.DataType; depth: number; onValue: number; offValue: number };
  if (dtype !== 'float32' && dtype !== 'int32') return callStock('OneHot', args);
  const backend = args.backend as WasmBackendLike;
  const out = backend.makeOutput([...indices.shape, depth], dtype);
  const ids = backend.typedArrayFromHeap(indices), ov = backend.typedArrayFromHeap(out);
  ov.fill(offValue);
  for (let i = 0; i < ids.length; i++) if (ids[i] >= 0 && ids[i] < depth) ov[i * depth + ids[i]] = onValue;
  return out;
}

/** Shares the input's data, as the cpu backend's Identity and this backend's own Reshape do (wasm kernels never
 * write into their inputs). The stock kernel copies, and the engine runs Identity on every tensor a custom
 * gradient saves: ~100 copies, ~15 ms per base-config step. */
function identityKernel(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x as tf.TensorInfo;
  if (x.dtype === 'string') return callStock('Identity', args);
  (args.backend as { incRef(d: tf.DataId): void }).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

// ---------------------------------------------------------------------------------------------------------

const FIXES: Record<string, (args: KernelArgs) => tf.TensorInfo> = {
  Slice: sliceKernel,
  Transpose: transposeKernel,
  BatchMatMul: batchMatMulKernel,
  UnsortedSegmentSum: unsortedSegmentSumKernel,
  GatherV2: gatherKernel,
  Identity: identityKernel,
  OneHot: oneHotKernel,
};

let installed = false;

/** Replaces the wasm kernels above (idempotent). Call after the wasm backend is registered. */
export function installWasmKernelFixes(): void {
  if (installed) return;
  for (const [name, fn] of Object.entries(FIXES)) {
    const prev = tf.getKernel(name, 'wasm');
    if (prev) {
      stock.set(name, prev.kernelFunc);
      tf.unregisterKernel(name, 'wasm');
    }
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: fn as unknown as tf.KernelFunc });
  }
  installed = true;
}

export function wasmKernelFixesInstalled(): boolean {
  return installed;
}
