// Data-parallel LM training on one machine: `threads` replicas (worker threads, each with its own TF.js
// backend) compute gradients on their share of the batch; this thread averages them and applies AdamW to the
// one shared parameter array, which every replica re-reads before its next step. Synchronous and
// deterministic: the same seed gives the same weights for a given thread count.
//
// Why threads and not processes: parameters, gradients and the token stream live in SharedArrayBuffers, so a
// step moves no tensors through messages (1 M floats each way would cost more than the AdamW update).
// threads = 0 runs one replica in this thread (tests, and machines with a single core).
import { Worker } from 'node:worker_threads';
import type { ModelConfig } from '../../shared/model-config';
import type { HeadOptions } from '../model/gpt';
import type { BackendName } from '../backend';
import { layoutOf, type ParamLayout } from './flat';
import { type AdamWConfig, type AdamWState, DEFAULT_ADAMW, adamwStep, decayMask, newAdamWState } from './optimizer';
import { Replica } from './replica';
import { evalWindows } from './lm-data';
import { paramSpecs } from '../model/gpt';

export interface WorkerInit {
  config: ModelConfig;
  heads: HeadOptions;
  backend?: BackendName;
  paramsSab: SharedArrayBuffer;
  gradSab: SharedArrayBuffer;
  /** Float offset of this worker's gradient slice in gradSab. */
  gradOffset: number;
  tokensSab: SharedArrayBuffer;
}

export type WorkerRequest =
  | { type: 'grad'; id: number; version: number; starts: Int32Array; T: number }
  | { type: 'eval'; id: number; version: number; starts: Int32Array; countFrom: Int32Array; T: number; tokensSab: SharedArrayBuffer };

export type WorkerReply = { id: number; loss?: number; nats?: number; count?: number; error?: string; ready?: boolean };

export interface TrainerOptions {
  config: ModelConfig;
  heads?: HeadOptions;
  /** Training token stream (shared with the workers). */
  tokens: Uint16Array;
  /** Worker threads (0 = train in this thread). */
  threads: number;
  adamw?: Partial<AdamWConfig>;
  /** Pin a backend in the workers (default: the usual selection order). */
  backend?: BackendName;
  /** Initial flat parameters (layout order). */
  initialParams: Float32Array;
}

interface Remote {
  worker: Worker;
  pending: Map<number, (r: WorkerReply) => void>;
}

export class DataParallelTrainer {
  readonly layout: ParamLayout;
  readonly params: Float32Array;
  readonly opt: AdamWState;
  private readonly grads: Float32Array;
  private readonly decay: Uint8Array;
  private readonly adamw: AdamWConfig;
  private version = 0;
  private nextId = 0;
  private remotes: Remote[] = [];
  private local: Replica | null = null;
  private readonly nReplicas: number;
  private readonly tokensSab: SharedArrayBuffer;
  /** Held-out streams already copied to shared memory (the workers keep one replica per stream). */
  private readonly shared = new WeakMap<Uint16Array, SharedArrayBuffer>();

  private constructor(private readonly o: TrainerOptions) {
    const heads = o.heads ?? { value: true, reward: false };
    this.layout = layoutOf(paramSpecs(o.config, heads));
    if (o.initialParams.length !== this.layout.size) throw new Error(`initialParams has ${o.initialParams.length} floats, the model ${this.layout.size}`);
    this.nReplicas = Math.max(1, o.threads);
    this.params = new Float32Array(new SharedArrayBuffer(this.layout.size * 4));
    this.params.set(o.initialParams);
    this.grads = new Float32Array(new SharedArrayBuffer(this.layout.size * 4 * this.nReplicas));
    this.opt = newAdamWState(this.layout.size);
    this.decay = decayMask(this.layout);
    this.adamw = { ...DEFAULT_ADAMW, ...o.adamw };
    this.tokensSab = toShared(o.tokens);
  }

  static async create(o: TrainerOptions): Promise<DataParallelTrainer> {
    const t = new DataParallelTrainer(o);
    await t.start();
    return t;
  }

  private async start(): Promise<void> {
    const heads = this.o.heads ?? { value: true, reward: false };
    if (this.o.threads === 0) {
      this.local = new Replica(this.o.config, heads, this.params, new Uint16Array(this.tokensSab));
      return;
    }
    const url = new URL('./grad-worker-boot.mjs', import.meta.url);
    await Promise.all(
      Array.from({ length: this.o.threads }, (_, i) => {
        const init: WorkerInit = { config: this.o.config, heads, backend: this.o.backend, paramsSab: this.params.buffer as SharedArrayBuffer, gradSab: this.grads.buffer as SharedArrayBuffer, gradOffset: i * this.layout.size, tokensSab: this.tokensSab };
        const worker = new Worker(url, { workerData: init });
        const remote: Remote = { worker, pending: new Map() };
        this.remotes.push(remote);
        return new Promise<void>((resolve, reject) => {
          worker.on('error', reject);
          worker.on('message', (r: WorkerReply) => {
            if (r.id === -1) return r.error ? reject(new Error(r.error)) : resolve();
            const cb = remote.pending.get(r.id);
            remote.pending.delete(r.id);
            cb?.(r);
          });
        });
      }),
    );
  }

  private call(i: number, req: Omit<WorkerRequest, 'id' | 'version'> & { type: WorkerRequest['type'] }): Promise<WorkerReply> {
    const r = this.remotes[i];
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      r.pending.set(id, (rep) => (rep.error ? reject(new Error(rep.error)) : resolve(rep)));
      r.worker.postMessage({ ...req, id, version: this.version });
    });
  }

  /**
   * One optimizer step on B windows of T+1 tokens (starts into the training stream), split evenly over the
   * replicas. Returns the mean loss (nats/token) and the gradient norm before clipping.
   */
  async step(starts: Int32Array, T: number, lr: number): Promise<{ loss: number; gradNorm: number }> {
    const n = this.nReplicas, P = this.layout.size;
    if (starts.length % n !== 0) throw new Error(`batch ${starts.length} is not divisible by ${n} replicas`);
    const per = starts.length / n;
    let losses: number[];
    if (this.local) {
      this.local.sync(this.version);
      losses = [this.local.gradient(starts, T, this.grads.subarray(0, P))];
    } else {
      const replies = await Promise.all(this.remotes.map((_, i) => this.call(i, { type: 'grad', starts: starts.slice(i * per, (i + 1) * per), T })));
      losses = replies.map((r) => r.loss!);
    }
    // Average the replicas' gradients into slice 0 (equal shares, so the mean of means is the batch mean).
    const g = this.grads.subarray(0, P);
    for (let r = 1; r < n; r++) {
      const gr = this.grads.subarray(r * P, (r + 1) * P);
      for (let i = 0; i < P; i++) g[i] += gr[i];
    }
    if (n > 1) for (let i = 0; i < P; i++) g[i] /= n;
    const norm = adamwStep(this.params, g, this.opt, lr, this.adamw, this.decay);
    this.version++;
    return { loss: losses.reduce((a, b) => a + b, 0) / n, gradNorm: norm };
  }

  /**
   * Total nats of a held-out stream, every token after the first predicted once with windows of T+1
   * (stride T/2). `maxTokens` evaluates a prefix only (quick checks during training).
   */
  async evalNats(tokens: Uint16Array, T: number, maxTokens = Infinity): Promise<{ nats: number; count: number }> {
    const len = Math.min(tokens.length, maxTokens);
    const all = evalWindows(len, T).filter((w) => w.start + T + 1 <= tokens.length);
    let sab = this.shared.get(tokens);
    if (!sab) this.shared.set(tokens, (sab = toShared(tokens)));
    const chunks: { starts: Int32Array; countFrom: Int32Array }[] = [];
    const per = Math.max(1, Math.floor(4096 / T));
    for (let i = 0; i < all.length; i += per) {
      const ws = all.slice(i, i + per);
      chunks.push({ starts: Int32Array.from(ws, (w) => w.start), countFrom: Int32Array.from(ws, (w) => w.countFrom) });
    }
    let nats = 0, count = 0;
    if (this.local) {
      const r = new Replica(this.o.config, this.o.heads ?? { value: true, reward: false }, this.params, new Uint16Array(sab));
      r.sync(this.version);
      for (const c of chunks) {
        const e = r.evalNats(c.starts, c.countFrom, T);
        (nats += e.nats), (count += e.count);
      }
      r.model.dispose();
      return { nats, count };
    }
    // Round-robin chunks over the workers, each worker's queue in order.
    const queues = this.remotes.map(() => [] as typeof chunks);
    chunks.forEach((c, i) => queues[i % queues.length].push(c));
    const results = await Promise.all(
      queues.map(async (q, i) => {
        let n = 0, k = 0;
        for (const c of q) {
          const r = await this.call(i, { type: 'eval', starts: c.starts, countFrom: c.countFrom, T, tokensSab: sab } as never);
          (n += r.nats!), (k += r.count!);
        }
        return { n, k };
      }),
    );
    for (const r of results) (nats += r.n), (count += r.k);
    return { nats, count };
  }

  /** Replaces parameters and optimizer state (resume). */
  restore(params: Float32Array, opt: AdamWState): void {
    this.params.set(params);
    this.opt.m.set(opt.m);
    this.opt.v.set(opt.v);
    this.opt.step = opt.step;
    this.version++;
  }

  async close(): Promise<void> {
    await Promise.all(this.remotes.map((r) => r.worker.terminate()));
    this.remotes = [];
    this.local?.model.dispose();
  }
}

function toShared(a: Uint16Array): SharedArrayBuffer {
  if (a.buffer instanceof SharedArrayBuffer && a.byteOffset === 0 && a.byteLength === a.buffer.byteLength) return a.buffer;
  const sab = new SharedArrayBuffer(a.byteLength);
  new Uint16Array(sab).set(a);
  return sab;
}
