// Main-thread side of an off-thread decode lane: a DecodeLane (shared/sampling/lane.ts) whose session and KV
// cache live in a worker thread (ort-lane-worker.ts), so its runs use the second core while this thread samples
// the other lane and serves HTTP. onnxruntime-node's session.run is synchronous on the calling thread (its
// promise only defers the call with setImmediate), so a thread of its own is the only way a run overlaps JS.
//
// Per step only token ids, row lengths and sampling draws go and sampled ids, log-probabilities and values come
// back (the lane samples, lane.ts StepDraws; a prefill returns its prompts' logits, by transfer): a round trip
// cost ~35 µs here (measured with 256 KB transferred), against 1.5–3 ms for a run of 16–32 rows. Row moves
// and clears are queued and sent with the next call, so the engine's calls stay synchronous where they are.
import { Worker } from 'node:worker_threads';
import type { InferenceSession } from 'onnxruntime-node';
import type { DecodeLane, LaneOutput, LaneShape, StepDraws, StepOutput } from '../../shared/sampling/lane';

export interface LaneInit {
  onnx: Uint8Array;
  options: InferenceSession.SessionOptions;
}

/** Queued lane operations; `shape` (first) makes the worker's lane, once the engine says the model's sizes. */
type CacheOp = { kind: 'shape'; shape: LaneShape } | { kind: 'move'; from: number; to: number; n: number } | { kind: 'clear' };
type Run =
  | { kind: 'prefill'; ids: Int32Array; g: number; len: number; sources: readonly number[]; used: readonly number[] }
  | { kind: 'step'; rows: number; packed: ArrayBuffer };
export interface LaneCall {
  id: number;
  ops: CacheOp[];
  run: Run;
}
export type LaneReply = { id: number; out: LaneOutput | StepOutput; error?: undefined } | { id: number; error: string };

export class WorkerLane implements DecodeLane {
  private ops: CacheOp[] = [];
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (o: LaneOutput | StepOutput) => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly usesStepGraph: boolean,
    readonly share: number,
  ) {
    worker.on('message', (r: LaneReply) => {
      const p = this.pending.get(r.id);
      if (!p) return;
      this.pending.delete(r.id);
      if (!this.pending.size) worker.unref();
      if (r.error !== undefined) p.reject(new Error(r.error));
      else p.resolve(r.out);
    });
    const die = (e: Error) => {
      this.dead ??= e;
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`decode lane worker exited (${code})`)));
    // An idle lane must not keep the process alive; one with a call in flight must (ref'd while calls are pending).
    worker.unref();
  }

  /** Starts the worker and resolves once its session is loaded (rejects if it cannot load the graph). */
  static async start(init: LaneInit, usesStepGraph: boolean, share = 1): Promise<WorkerLane> {
    const worker = new Worker(new URL('./ort-lane-worker.mjs', import.meta.url), { workerData: init });
    await new Promise<void>((resolve, reject) => {
      const fail = (e: unknown) => reject(e instanceof Error ? e : new Error(`decode lane worker exited (${e})`));
      worker.once('message', () => {
        worker.off('error', fail).off('exit', fail);
        resolve();
      });
      worker.once('error', fail).once('exit', fail);
    });
    return new WorkerLane(worker, usesStepGraph, share);
  }

  /** The engine's model sizes, sent ahead of the first call (the session is loaded before the config is known). */
  configure(shape: LaneShape): this {
    this.ops.unshift({ kind: 'shape', shape });
    return this;
  }

  /** True once the worker is gone: the engine gives the lane no more work. */
  get closed(): boolean {
    return this.dead !== null;
  }

  prefill(ids: Int32Array, g: number, len: number, sources: readonly number[], used: readonly number[]): Promise<LaneOutput> {
    return this.call({ kind: 'prefill', ids, g, len, sources: [...sources], used: [...used] }) as Promise<LaneOutput>;
  }

  step(next: Int32Array, lens: Int32Array, draws: StepDraws): Promise<StepOutput> {
    const packed = packStep(next, lens, draws);
    return this.call({ kind: 'step', rows: next.length, packed }, [packed]) as Promise<StepOutput>;
  }

  moveRow(from: number, to: number, n: number): void {
    this.ops.push({ kind: 'move', from, to, n });
  }

  clear(): void {
    // Moves before a clear are moot.
    this.ops = [...this.ops.filter((op) => op.kind === 'shape'), { kind: 'clear' }];
  }

  async terminate(): Promise<void> {
    this.dead ??= new Error('decode lane released');
    await this.worker.terminate();
  }

  private call(run: Run, transfer: ArrayBuffer[] = []): Promise<LaneOutput | StepOutput> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const msg: LaneCall = { id, ops: this.ops, run };
    this.ops = [];
    return new Promise<LaneOutput | StepOutput>((resolve, reject) => {
      if (!this.pending.size) this.worker.ref();
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(msg, transfer);
    });
  }
}

// A step's six per-row arrays travel as one transferred buffer: structured-cloning six typed arrays and their
// wrapper objects cost the engine's thread more per step than the data (CPU profile at concurrency 32).
// Layout: u, temperature, topP (float64), then next, lens, topK (int32).
export function packStep(next: Int32Array, lens: Int32Array, draws: StepDraws): ArrayBuffer {
  const B = next.length;
  const buf = new ArrayBuffer(B * 36);
  const f = new Float64Array(buf, 0, 3 * B);
  f.set(draws.u, 0);
  f.set(draws.temperature, B);
  f.set(draws.topP, 2 * B);
  const i = new Int32Array(buf, 24 * B, 3 * B);
  i.set(next, 0);
  i.set(lens, B);
  i.set(draws.topK, 2 * B);
  return buf;
}

export function unpackStep(buf: ArrayBuffer, B: number): { next: Int32Array; lens: Int32Array; draws: StepDraws } {
  const f = (k: number) => new Float64Array(buf, 8 * k * B, B);
  const i = (k: number) => new Int32Array(buf, 24 * B + 4 * k * B, B);
  return { next: i(0), lens: i(1), draws: { u: f(0), temperature: f(1), topP: f(2), topK: i(2) } };
}
