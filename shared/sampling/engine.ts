// The one sampling loop prefloop has: the API serves requests with it and the worker's PPO rollouts call it.
//
// A GenerationEngine owns one policy session (onnxruntime-node, -web, or anything with the same `run`) and
// decodes every live sequence together: the n sequences of a request and all concurrent requests advance in
// one session.run per step (continuous batching: requests join at step boundaries, finished ones leave).
//
// Runs and the KV cache sit in decode lanes (lane.ts): one row per sequence, tokens left-aligned, the unused
// tail of each row masked, each run's new key/value written in place. A prompt is prefilled once (requests with
// prompts of equal length together) and its KV copied to its n rows; a leaving row's slot is filled by moving
// the last row into it. No step copies the cache.
//
// Lanes: a session that brings off-thread lanes (the onnxruntime-node adapter: sessions in worker threads) gets
// its batch split over them, each lane with its own loop; a lane runs the graph and samples its rows (lane.ts).
// onnxruntime-node runs a session synchronously on the calling thread, so with one lane a 2-core machine has one
// core computing while the other waits, and this thread's HTTP work queues behind every run. A request's rows
// stay in one lane. Lane 0 (this thread, no hand-off latency) takes a request only when the engine is idle, so a
// lone request decodes exactly as without lanes; others go to the emptiest off-thread lane, so under load this
// thread only keeps the rows' state (text, stop strings, RNG draws) and serves requests.
//
// Determinism: each sequence draws from its own RNG stream (request seed, sequence index), so a request's text
// does not depend on what else is in the batch (up to float rounding of batched matmuls, which does not move
// a sampled token except on a knife-edge).
import { headDim as headDimOf, type ModelConfig } from '../model-config';
import { IncrementalDecoder, type TokenDecoder } from './detokenize';
import { SessionLane, type DecodeLane, type LaneShape, type PolicySession, type StepDraws, type StepOutput } from './lane';
import { Xoshiro128, randomSeed } from './rng';
import { sampleToken, type SampledToken, type SamplingParams } from './sample';
import { StopMatcher } from './stop';

export type { PolicySession } from './lane';

/** What the engine needs from a tokenizer (shared/tokenizer.ts provides it). */
export interface SamplingTokenizer {
  /** Text to ids, no special tokens added. */
  encode(text: string): number[];
  /** Ids to text (special tokens skipped); UTF-8 bytes that do not form a character decode to U+FFFD. */
  decode(ids: readonly number[]): string;
  /** End of sequence: sampling it ends the sequence with finish reason `stop`. */
  readonly eosId: number;
  /** Beginning of sequence, prepended to prompts when `addBos` is on. */
  readonly bosId?: number;
  /**
   * A streaming decoder, when the tokenizer has one (shared/tokenizer.ts: one UTF-8 decode of each token's bytes);
   * otherwise the engine's IncrementalDecoder re-decodes the window since the last clean boundary twice per token
   * (in a hot loop 0.15 against 0.36 µs per token; in a decode loop both sit inside the noise).
   */
  streamDecoder?(): TokenDecoder;
}

export interface EngineOptions {
  /** Model shape: sizes the KV cache and bounds prompt + completion by contextLength. */
  config: ModelConfig;
  tokenizer: SamplingTokenizer;
  /** Most sequences decoded together in one run; requests that do not fit wait for rows to free. */
  maxBatchRows?: number;
  /** Prepend the tokenizer's BOS to prompts given as text (default: when the tokenizer has one). */
  addBos?: boolean;
}

export type FinishReason = 'stop' | 'length';

export interface GenerateRequest {
  /** Prompt text (encoded with BOS per `addBos`)... */
  prompt?: string;
  /** ...or prompt token ids, used as given (PPO rollouts that already tokenised). */
  promptIds?: readonly number[];
  /** Number of sequences sampled for this prompt (each its own RNG stream). Default 1. */
  n?: number;
  /** Most tokens generated per sequence (EOS included); the context length may end a sequence earlier. Default 16. */
  maxTokens?: number;
  /** Default 1; 0 = greedy. */
  temperature?: number;
  /** Default 1 (off). */
  topP?: number;
  /** Default 0 (off). */
  topK?: number;
  /** Stop strings: the sequence ends at the first occurrence, which is excluded from the text. */
  stop?: readonly string[];
  /** Default: a random seed (returned in the result so the output can be reproduced). */
  seed?: number;
  /** Streaming: detokenised text per sequence; the deltas of a sequence concatenate to its final text. */
  onDelta?: (index: number, delta: string) => void;
  /** Called as each sequence finishes (before the whole request resolves). */
  onSequenceEnd?: (seq: SequenceResult) => void;
  /** Keep sampling past EOS (benchmarks that need fixed-length outputs; vLLM's `ignore_eos`). */
  ignoreEos?: boolean;
  /** Aborting drops the request's sequences at the next step boundary and rejects with an AbortError. */
  signal?: AbortSignal;
}

export interface SequenceResult {
  /** 0..n-1 within the request. */
  index: number;
  text: string;
  /** Generated token ids, EOS included when it was sampled. */
  tokenIds: number[];
  /** log p(token) per generated token (temperature-scaled, before top-k/top-p; see sample.ts). */
  logprobs: number[];
  /** Value-head output at the position that produced each token (PPO critic), when the graph has one. */
  values: number[];
  finishReason: FinishReason;
}

export interface GenerateResult {
  seed: number;
  promptIds: number[];
  sequences: SequenceResult[];
}

export interface EngineStats {
  /** Decode steps run (session.run calls after prefill). */
  steps: number;
  /** Sum over decode steps of rows in the batch (rowSteps / steps = mean batch size). */
  rowSteps: number;
  prefills: number;
  /** Cache rebuilds (a request joined or a sequence left). */
  rebuilds: number;
  /** rowSteps per lane (lane 0 on this thread; see lane.ts). */
  laneRowSteps: number[];
}

interface Pending {
  promptIds: number[];
  n: number;
  params: SamplingParams;
  maxTokens: number;
  stop: readonly string[];
  seed: number;
  req: GenerateRequest;
  results: (SequenceResult | null)[];
  remaining: number;
  resolve: (r: GenerateResult) => void;
  reject: (e: unknown) => void;
  failed: boolean;
}

interface Row {
  p: Pending;
  index: number;
  rng: Xoshiro128;
  /** Tokens already in the KV cache (prompt + fed generated tokens); the row's cache columns 0..realLen-1. */
  realLen: number;
  /** Last sampled token, fed at position realLen in the next step. */
  next: number;
  tokenIds: number[];
  logprobs: number[];
  values: number[];
  decoder: TokenDecoder;
  stop: StopMatcher;
  done: boolean;
}

interface Lane {
  runner: DecodeLane;
  index: number;
  /** The lane's batch; rows[r] owns the lane's cache row r. */
  rows: Row[];
  running: Promise<void> | null;
  /** The step's per-row inputs, reused while the lane keeps its row count (its runner copies what it keeps). */
  inputs: { next: Int32Array; lens: Int32Array; draws: StepDraws } | null;
}

export class GenerationEngine {
  readonly stats: EngineStats = { steps: 0, rowSteps: 0, prefills: 0, rebuilds: 0, laneRowSteps: [] };
  private readonly cfg: ModelConfig;
  private readonly maxRows: number;
  private readonly addBos: boolean;
  private readonly queue: Pending[] = [];
  /** Lane 0 runs on this thread; any others come from the session's offThreadLanes (lane.ts). */
  private readonly lanes: Lane[];

  constructor(
    session: PolicySession,
    private readonly opts: EngineOptions,
  ) {
    this.cfg = opts.config;
    this.maxRows = opts.maxBatchRows ?? 64;
    this.addBos = opts.addBos ?? opts.tokenizer.bosId !== undefined;
    const shape: LaneShape = { nLayer: this.cfg.nLayer, nHead: this.cfg.nHead, headDim: headDimOf(this.cfg), contextLength: this.cfg.contextLength, vocabSize: this.cfg.vocabSize };
    const runners = [new SessionLane(session, shape), ...(session.offThreadLanes?.(shape) ?? [])];
    this.lanes = runners.map((runner, index) => ({ runner, index, rows: [], running: null, inputs: null }));
    this.stats.laneRowSteps = runners.map(() => 0);
  }

  /** True when the session runs the step graph (runs return only the new tokens' key/value). */
  get usesStepGraph(): boolean {
    return this.lanes[0].runner.usesStepGraph;
  }

  /** Decode lanes (1 unless the session brings off-thread lanes). */
  get laneCount(): number {
    return this.lanes.length;
  }

  /** Prompt ids for a text prompt, as generate() will feed them (for validation and token counts). */
  encodePrompt(prompt: string): number[] {
    const ids = this.opts.tokenizer.encode(prompt);
    return this.addBos && this.opts.tokenizer.bosId !== undefined ? [this.opts.tokenizer.bosId, ...ids] : ids;
  }

  /** Sequences running or waiting (0 = idle). */
  get load(): number {
    return this.lanes.reduce((s, l) => s + l.rows.length, 0) + this.queue.reduce((s, p) => s + p.n, 0);
  }

  /** Resolves when nothing is running or queued (used before releasing the session on a policy swap). */
  async drain(): Promise<void> {
    for (;;) {
      const running = this.lanes.map((l) => l.running).filter((r) => r !== null);
      if (!running.length) return;
      await Promise.all(running);
    }
  }

  generate(req: GenerateRequest): Promise<GenerateResult> {
    const promptIds = req.promptIds ? [...req.promptIds] : this.encodePrompt(req.prompt ?? '');
    const n = req.n ?? 1;
    const params: SamplingParams = { temperature: req.temperature ?? 1, topP: req.topP ?? 1, topK: req.topK ?? 0 };
    const maxTokens = req.maxTokens ?? 16;
    if (promptIds.length === 0) return Promise.reject(new RangeError('prompt is empty (no tokens)'));
    if (promptIds.length > this.cfg.contextLength) {
      return Promise.reject(new RangeError(`prompt has ${promptIds.length} tokens; the context holds ${this.cfg.contextLength}`));
    }
    if (!Number.isInteger(n) || n < 1 || n > this.maxRows) return Promise.reject(new RangeError(`n must be 1..${this.maxRows}`));
    if (!(maxTokens >= 1)) return Promise.reject(new RangeError('maxTokens must be >= 1'));
    if (req.signal?.aborted) return Promise.reject(abortError());
    return new Promise<GenerateResult>((resolve, reject) => {
      this.queue.push({
        promptIds,
        n,
        params,
        maxTokens,
        stop: req.stop ?? [],
        seed: req.seed ?? randomSeed(),
        req,
        results: new Array(n).fill(null),
        remaining: n,
        resolve,
        reject,
        failed: false,
      });
      this.kick();
    });
  }

  /** Starts the loop of every idle lane; one that gets no work ends at once. Lane 0 first, so a lone request stays on this thread. */
  private kick(): void {
    for (const lane of this.lanes) {
      if (lane.running) continue;
      // Started from a microtask so `running` is set before the loop runs: the loop itself kicks other lanes.
      lane.running = Promise.resolve()
        .then(() => this.loop(lane))
        .catch(() => undefined) // failures are delivered to the requests concerned
        .finally(() => {
          lane.running = null;
          if (this.queue.length && this.canAdmit(lane, this.queue[0])) this.kick();
        });
    }
  }

  private async loop(lane: Lane): Promise<void> {
    for (;;) {
      try {
        this.leave(lane);
        await this.admit(lane);
        this.leave(lane); // sequences that ended on their first token
        if (lane.rows.length === 0) {
          lane.runner.clear();
          if (this.queue.length === 0 || !this.canAdmit(lane, this.queue[0])) return;
          continue;
        }
        await this.step(lane);
      } catch (e) {
        // A fault outside session.run (a callback, a tokenizer that cannot decode an id): fail the lane's running
        // requests rather than leave them waiting forever, and start its next batch from a clean state.
        this.failAll(lane, e);
      }
    }
  }

  private failAll(lane: Lane, e: unknown): void {
    for (const row of lane.rows) this.fail(row.p, e);
    lane.rows = [];
    lane.runner.clear();
  }

  /** Rows that will take part in the next step (finished and failed ones leave at the boundary). */
  private live(lane: Lane): number {
    let n = 0;
    for (const row of lane.rows) if (!row.done && !row.p.failed) n++;
    return n;
  }

  /**
   * Whether `lane` takes request `p` now. The rows must fit under maxBatchRows across lanes, and a request's n rows
   * stay together in one lane. With off-thread lanes, lane 0 (this thread) takes a request only when the engine is
   * idle: a lone request then decodes with no thread hand-off, and under load this thread is left to sample and
   * serve while the other lanes' threads run the graph (it was the bottleneck when it also ran a share of the
   * batch: bench:serve, server_main_thread_busy ~0.99). Off-thread lanes fill evenly relative to their shares,
   * the lowest-numbered on ties.
   */
  private canAdmit(lane: Lane, p: Pending, taken = 0): boolean {
    if (lane.runner.closed) return false;
    const mine = this.live(lane) + taken;
    let total = mine;
    for (const other of this.lanes) if (other !== lane) total += this.live(other);
    if (total + p.n > this.maxRows) return false;
    const offThread = this.lanes.filter((l) => l.index > 0 && !l.runner.closed);
    if (!offThread.length) return true;
    if (lane.index === 0) return total === 0;
    const fill = (l: Lane, n: number) => n / (l.runner.share ?? 1);
    for (const other of offThread) {
      if (other === lane) continue;
      const d = fill(other, this.live(other)) - fill(lane, mine);
      if (d < 0 || (d === 0 && other.index < lane.index)) return false;
    }
    return true;
  }

  /** Step boundary: drops finished, failed and aborted rows, filling each hole with the last row. */
  private leave(lane: Lane): void {
    const rows = lane.rows;
    let changed = false;
    for (let i = 0; i < rows.length; ) {
      const row = rows[i];
      if (row.p.req.signal?.aborted && !row.p.failed) this.fail(row.p, abortError());
      if (!row.done && !row.p.failed) {
        i++;
        continue;
      }
      changed = true;
      const last = rows.length - 1;
      if (i !== last) {
        lane.runner.moveRow(last, i, rows[last].realLen);
        rows[i] = rows[last];
      }
      rows.pop();
    }
    if (!changed) return;
    this.stats.rebuilds++;
    // Freed rows may let a waiting request into an idle lane.
    if (this.queue.length) this.kick();
  }

  /** Step boundary: prefills the waiting requests this lane takes, samples their first tokens, adds their rows. */
  private async admit(lane: Lane): Promise<void> {
    const batch: Pending[] = [];
    let taken = 0;
    while (this.queue.length) {
      const p = this.queue[0];
      if (p.req.signal?.aborted) {
        this.queue.shift();
        p.reject(abortError());
        continue;
      }
      // The rows taken so far are not in lane.rows yet: count them as this lane's.
      if (!this.canAdmit(lane, p, taken)) break;
      this.queue.shift();
      taken += p.n;
      batch.push(p);
    }
    // What this lane leaves may be another lane's to take.
    if (this.queue.length) this.kick();
    if (!batch.length) return;
    // Prompts of equal length prefill together (no padding needed); others one group each.
    const groups = new Map<number, Pending[]>();
    for (const p of batch) groups.set(p.promptIds.length, [...(groups.get(p.promptIds.length) ?? []), p]);
    for (const [len, group] of groups) {
      try {
        await this.prefill(lane, group, len);
      } catch (e) {
        for (const p of group) this.fail(p, e);
      }
    }
    this.stats.rebuilds++;
  }

  private async prefill(lane: Lane, group: Pending[], len: number): Promise<void> {
    const g = group.length;
    const ids = new Int32Array(g * len);
    group.forEach((p, r) => ids.set(p.promptIds, r * len));
    // Every sequence gets a cache row before its first token is sampled (the lane copies the prompt's KV as it
    // prefills); one that ends on that token leaves at the next boundary like any finished row.
    const sources = group.flatMap((p, r) => Array.from({ length: p.n }, () => r));
    const out = await lane.runner.prefill(ids, g, len, sources, lane.rows.map((r) => r.realLen));
    this.stats.prefills++;
    const V = this.cfg.vocabSize;
    group.forEach((p, r) => {
      for (let i = 0; i < p.n; i++) {
        const row: Row = {
          p,
          index: i,
          rng: new Xoshiro128(p.seed, i),
          realLen: len,
          next: -1,
          tokenIds: [],
          logprobs: [],
          values: [],
          decoder: this.opts.tokenizer.streamDecoder?.() ?? new IncrementalDecoder((x) => this.opts.tokenizer.decode(x)),
          stop: new StopMatcher(p.stop),
          done: false,
        };
        lane.rows.push(row);
        const tok = sampleToken(out.logits, r * V, V, p.params, p.params.temperature > 0 ? row.rng.next() : 0);
        this.accept(row, tok, out.values?.[r]);
      }
    });
  }

  /** One decode step for every row of the lane. */
  private async step(lane: Lane): Promise<void> {
    const rows = lane.rows;
    const B = rows.length;
    if (lane.inputs?.next.length !== B) {
      lane.inputs = { next: new Int32Array(B), lens: new Int32Array(B), draws: { u: new Float64Array(B), temperature: new Float64Array(B), topP: new Float64Array(B), topK: new Int32Array(B) } };
    }
    // Each row's draw for the token this step samples, from its own stream: the same draws wherever it is sampled.
    const { next, lens, draws } = lane.inputs;
    for (let r = 0; r < B; r++) {
      const row = rows[r];
      const params = row.p.params;
      next[r] = row.next;
      lens[r] = row.realLen;
      draws.u[r] = params.temperature > 0 ? row.rng.next() : 0;
      draws.temperature[r] = params.temperature;
      draws.topP[r] = params.topP;
      draws.topK[r] = params.topK;
    }
    let out: StepOutput;
    try {
      out = await lane.runner.step(next, lens, draws);
    } catch (e) {
      this.failAll(lane, e);
      return;
    }
    this.stats.steps++;
    this.stats.rowSteps += B;
    this.stats.laneRowSteps[lane.index] += B;
    for (let r = 0; r < B; r++) {
      const row = rows[r];
      row.realLen++;
      if (!row.p.failed) this.accept(row, { id: out.tokens[r], logprob: out.logprobs[r] }, out.values?.[r]);
    }
  }

  /** Takes the row's sampled token and decides whether the sequence ends here. */
  private accept(row: Row, tok: SampledToken, value: number | undefined): void {
    const p = row.p;
    row.tokenIds.push(tok.id);
    row.logprobs.push(tok.logprob);
    if (value !== undefined) row.values.push(value);
    row.next = tok.id;
    let finish: FinishReason | null = null;
    if (tok.id === this.opts.tokenizer.eosId && !p.req.ignoreEos) finish = 'stop';
    else {
      const delta = row.stop.append(row.decoder.push(tok.id));
      if (delta) p.req.onDelta?.(row.index, delta);
      if (row.stop.stoppedAt !== null) finish = 'stop';
      // The sampled token is fed at position realLen next step; the learned positions end at contextLength.
      else if (row.tokenIds.length >= p.maxTokens || row.realLen >= this.cfg.contextLength) finish = 'length';
    }
    if (finish) this.finishRow(row, finish);
  }

  private finishRow(row: Row, finishReason: FinishReason): void {
    row.done = true;
    if (row.stop.stoppedAt === null) {
      const tail = row.stop.append(row.decoder.end());
      const rest = row.stop.finish();
      if (row.stop.stoppedAt !== null) finishReason = 'stop'; // the flushed text completed a stop string
      if (tail + rest) row.p.req.onDelta?.(row.index, tail + rest);
    }
    const seq: SequenceResult = {
      index: row.index,
      text: row.stop.finalText,
      tokenIds: row.tokenIds,
      logprobs: row.logprobs,
      values: row.values,
      finishReason,
    };
    const p = row.p;
    if (p.failed) return;
    p.results[row.index] = seq;
    p.req.onSequenceEnd?.(seq);
    if (--p.remaining === 0) p.resolve({ seed: p.seed, promptIds: p.promptIds, sequences: p.results as SequenceResult[] });
  }

  private fail(p: Pending, e: unknown): void {
    if (p.failed) return;
    p.failed = true;
    p.reject(e);
  }
}

function abortError(): Error {
  const e = new Error('generation aborted');
  e.name = 'AbortError';
  return e;
}
