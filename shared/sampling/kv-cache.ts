// The sampler's own KV cache: per layer one key and one value buffer holding the running batch as the policy
// graph's past input wants it, [rows, nHead, cols, headDim], contiguous for the rows in use.
//
// Why a cache of its own instead of feeding each run's `present` back: a run then only has to return the new
// tokens' key/value (the step graph, step-graph.ts), the sampler writes them in place, and joining or leaving
// the batch touches only the rows concerned. Each row's tokens are left-aligned (columns 0..len-1); columns past
// a row's length are masked out by the attention mask, so rows of different lengths share one tensor. `cols`
// grows and shrinks in chunks, so the relayout (the only whole-cache copy) happens once per CHUNK tokens of
// growth at most, not per step.
import { Tensor } from 'onnxruntime-common';

/** Column granularity: the past length fed to the graph is the longest row rounded up to a multiple of this. */
export const CACHE_CHUNK = 16;

export class KvCache {
  /** Past length fed to the graph (columns per row). */
  cols = 0;
  private rowCap = 0;
  private keys: Float32Array[] = [];
  private vals: Float32Array[] = [];
  /** The tensors past() made last, and what they were made for. */
  private views: { rows: number; cols: number; buffer: Float32Array; past: { keys: Tensor[]; values: Tensor[] } } | null = null;

  constructor(
    private readonly nLayer: number,
    private readonly nHead: number,
    private readonly headDim: number,
    /** Most columns a row can need (the context length). */
    private readonly maxCols: number,
  ) {}

  /**
   * Makes room for `rows` rows of which the longest holds `longest` tokens plus one more to be written (the
   * token fed in the next run). `used` gives the tokens held per row now (only those are kept on a relayout).
   */
  reserve(rows: number, longest: number, used: ArrayLike<number>): void {
    const need = Math.min(this.maxCols, longest + 1);
    let cols = this.cols;
    if (need > cols) cols = Math.min(this.maxCols, roundUp(need, CACHE_CHUNK));
    else if (roundUp(need, CACHE_CHUNK) + 2 * CACHE_CHUNK <= cols) cols = roundUp(need, CACHE_CHUNK); // shrink with hysteresis
    if (rows > this.rowCap) {
      // Buffers are sized for the longest possible rows, so a change of `cols` never allocates: fresh memory is
      // paid for in page faults, which cost more than the copy itself.
      const rowCap = Math.max(rows, this.rowCap * 2, 4);
      const size = rowCap * this.nHead * this.maxCols * this.headDim;
      const grow = (old: Float32Array | undefined) => {
        const next = new Float32Array(size);
        if (old) next.set(old.subarray(0, this.rowCap * this.nHead * this.cols * this.headDim));
        return next;
      };
      this.keys = Array.from({ length: this.nLayer }, (_, l) => grow(this.keys[l]));
      this.vals = Array.from({ length: this.nLayer }, (_, l) => grow(this.vals[l]));
      this.rowCap = rowCap;
    }
    if (cols !== this.cols) {
      for (const buf of [...this.keys, ...this.vals]) this.relayout(buf, this.cols, cols, used);
      this.cols = cols;
    }
  }

  /**
   * Re-strides the rows in place from `from` to `to` columns, keeping each row's used columns. Growing moves
   * blocks last-first and shrinking first-last, so no block is overwritten before it has moved.
   */
  private relayout(buf: Float32Array, from: number, to: number, used: ArrayLike<number>): void {
    const D = this.headDim;
    const H = this.nHead;
    const move = (r: number, h: number) => {
      const src = (r * H + h) * from * D;
      buf.copyWithin((r * H + h) * to * D, src, src + used[r] * D);
    };
    if (to > from) {
      for (let r = used.length - 1; r >= 0; r--) for (let h = H - 1; h >= 0; h--) move(r, h);
    } else {
      for (let r = 0; r < used.length; r++) for (let h = 0; h < H; h++) move(r, h);
    }
  }

  /**
   * Copies `n` positions of row `srcRow` of a graph output ([rows, nHead, srcLen, headDim], positions
   * srcFrom..srcFrom+n-1) into row `row`, columns col..col+n-1.
   */
  write(layer: number, key: Float32Array, value: Float32Array, srcRow: number, srcLen: number, srcFrom: number, n: number, row: number, col: number): void {
    const D = this.headDim;
    const H = this.nHead;
    const k = this.keys[layer];
    const v = this.vals[layer];
    for (let h = 0; h < H; h++) {
      const from = ((srcRow * H + h) * srcLen + srcFrom) * D;
      const to = ((row * H + h) * this.cols + col) * D;
      if (n === 1) {
        for (let i = 0; i < D; i++) {
          k[to + i] = key[from + i];
          v[to + i] = value[from + i];
        }
      } else {
        k.set(key.subarray(from, from + n * D), to);
        v.set(value.subarray(from, from + n * D), to);
      }
    }
  }

  /** Moves the first `n` columns of row `from` to row `to` (compaction when a row leaves). */
  moveRow(from: number, to: number, n: number): void {
    const D = this.headDim;
    for (let l = 0; l < this.nLayer; l++) {
      for (const buf of [this.keys[l], this.vals[l]]) {
        for (let h = 0; h < this.nHead; h++) {
          const src = (from * this.nHead + h) * this.cols * D;
          buf.copyWithin((to * this.nHead + h) * this.cols * D, src, src + n * D);
        }
      }
    }
  }

  /**
   * The past inputs for the first `rows` rows: views, no copy. The same views serve every step until the rows,
   * the columns or the buffers change (the graph reads them afresh each run), which saves building 2 × nLayer
   * tensors per decode step (onnxruntime-common checks each one's type and dims).
   */
  past(rows: number): { keys: Tensor[]; values: Tensor[] } {
    const v = this.views;
    if (v && v.rows === rows && v.cols === this.cols && v.buffer === this.keys[0]) return v.past;
    const n = rows * this.nHead * this.cols * this.headDim;
    const dims = [rows, this.nHead, this.cols, this.headDim];
    const past = {
      keys: this.keys.map((b) => new Tensor('float32', b.subarray(0, n), dims)),
      values: this.vals.map((b) => new Tensor('float32', b.subarray(0, n), dims)),
    };
    this.views = { rows, cols: this.cols, buffer: this.keys[0], past };
    return past;
  }

  /** The batch is empty: the buffers stay for the next batch (cheap to keep, costly to fault in again). */
  clear(): void {
    this.cols = 0;
  }
}

function roundUp(n: number, m: number): number {
  return Math.ceil(n / m) * m;
}
