// The one sampling loop prefloop has: the API serves requests with it and the worker's PPO rollouts call it.
//
// A GenerationEngine owns one policy session (onnxruntime-node, -web, or anything with the same `run`) and
// decodes every live sequence together: the n sequences of a request and all concurrent requests advance in
// one session.run per step (continuous batching: requests join at step boundaries, finished ones leave).
//
// The KV cache lives in the engine (kv-cache.ts), one row per sequence, tokens left-aligned and the unused
// tail of each row masked by attention_mask, position_ids explicit (the ONNX contract in shared/policy-io.ts).
// Each run returns the new tokens' key/value, which are written into the rows in place: with a step graph
// (step-graph.ts; the session lists `step.{i}.*` among its outputNames) a run returns only those, otherwise
// they are read out of the contract's `present` outputs (same results, but the runtime copies the whole cache
// out on every run). A prompt is prefilled once (requests with prompts of equal length together) and its KV
// copied to its n rows; a leaving row's slot is filled by moving the last row into it. No step copies the cache.
//
// Determinism: each sequence draws from its own RNG stream (request seed, sequence index), so a request's text
// does not depend on what else is in the batch (up to float rounding of batched matmuls, which does not move
// a sampled token except on a knife-edge).
import { Tensor, type InferenceSession } from 'onnxruntime-common';
import { headDim as headDimOf, type ModelConfig } from '../model-config';
import { POLICY_INPUTS, POLICY_OUTPUTS, pastKeyName, pastValueName, presentKeyName, presentValueName, stepKeyName, stepValueName } from '../policy-io';
import { IncrementalDecoder } from './detokenize';
import { KvCache } from './kv-cache';
import { Xoshiro128, randomSeed } from './rng';
import { sampleToken, type SamplingParams } from './sample';
import { StopMatcher } from './stop';

/** What the engine needs from a session: `run` of onnxruntime's InferenceSession (node, web or a test double). */
export interface PolicySession {
  run(feeds: InferenceSession.FeedsType, fetches?: InferenceSession.FetchesType): Promise<InferenceSession.ReturnType>;
  /** The graph's outputs; a session whose outputs include `step.0.key` runs the step graph (step-graph.ts). */
  readonly outputNames?: readonly string[];
}

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
  decoder: IncrementalDecoder;
  stop: StopMatcher;
  done: boolean;
}

export class GenerationEngine {
  readonly stats: EngineStats = { steps: 0, rowSteps: 0, prefills: 0, rebuilds: 0 };
  private readonly cfg: ModelConfig;
  private readonly hd: number;
  private readonly maxRows: number;
  private readonly addBos: boolean;
  private readonly queue: Pending[] = [];
  /** The running batch; rows[r] owns cache row r. */
  private rows: Row[] = [];
  private readonly cache: KvCache;
  /** Output names holding the fed tokens' key/value per layer (step graph), or the contract's present names. */
  private readonly kvNames: { keys: string[]; values: string[]; step: boolean };
  private readonly fetches: string[];
  private running: Promise<void> | null = null;

  constructor(
    private readonly session: PolicySession,
    private readonly opts: EngineOptions,
  ) {
    this.cfg = opts.config;
    this.hd = headDimOf(opts.config);
    this.maxRows = opts.maxBatchRows ?? 64;
    this.addBos = opts.addBos ?? opts.tokenizer.bosId !== undefined;
    this.cache = new KvCache(this.cfg.nLayer, this.cfg.nHead, this.hd, this.cfg.contextLength);
    const layers = range(this.cfg.nLayer);
    const step = session.outputNames?.includes(stepKeyName(0)) ?? false;
    this.kvNames = step
      ? { keys: layers.map(stepKeyName), values: layers.map(stepValueName), step }
      : { keys: layers.map(presentKeyName), values: layers.map(presentValueName), step };
    const hasValues = session.outputNames ? session.outputNames.includes(POLICY_OUTPUTS.values) : true;
    this.fetches = [POLICY_OUTPUTS.logits, ...(hasValues ? [POLICY_OUTPUTS.values] : []), ...layers.flatMap((l) => [this.kvNames.keys[l], this.kvNames.values[l]])];
  }

  /** True when the session runs the step graph (runs return only the new tokens' key/value). */
  get usesStepGraph(): boolean {
    return this.kvNames.step;
  }

  /** Prompt ids for a text prompt, as generate() will feed them (for validation and token counts). */
  encodePrompt(prompt: string): number[] {
    const ids = this.opts.tokenizer.encode(prompt);
    return this.addBos && this.opts.tokenizer.bosId !== undefined ? [this.opts.tokenizer.bosId, ...ids] : ids;
  }

  /** Sequences running or waiting (0 = idle). */
  get load(): number {
    return this.rows.length + this.queue.reduce((s, p) => s + p.n, 0);
  }

  /** Resolves when nothing is running or queued (used before releasing the session on a policy swap). */
  async drain(): Promise<void> {
    while (this.running) await this.running;
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

  private kick(): void {
    if (this.running) return;
    this.running = this.loop()
      .catch(() => undefined) // failures are delivered to the requests concerned
      .finally(() => {
        this.running = null;
        if (this.queue.length) this.kick();
      });
  }

  private async loop(): Promise<void> {
    for (;;) {
      try {
        this.leave();
        await this.admit();
        if (this.rows.length === 0) {
          this.cache.clear();
          if (this.queue.length === 0) return;
          continue;
        }
        await this.step();
      } catch (e) {
        // A fault outside session.run (a callback, a tokenizer that cannot decode an id): fail the running
        // requests rather than leave them waiting forever, and start the next batch from a clean state.
        this.failAll(e);
      }
    }
  }

  private failAll(e: unknown): void {
    for (const row of this.rows) this.fail(row.p, e);
    this.rows = [];
    this.cache.clear();
  }

  /** Step boundary: drops finished, failed and aborted rows, filling each hole with the last row. */
  private leave(): void {
    let changed = false;
    for (let i = 0; i < this.rows.length; ) {
      const row = this.rows[i];
      if (row.p.req.signal?.aborted && !row.p.failed) this.fail(row.p, abortError());
      if (!row.done && !row.p.failed) {
        i++;
        continue;
      }
      changed = true;
      const last = this.rows.length - 1;
      if (i !== last) {
        this.cache.moveRow(last, i, this.rows[last].realLen);
        this.rows[i] = this.rows[last];
      }
      this.rows.pop();
    }
    if (changed) this.stats.rebuilds++;
  }

  /** Step boundary: prefills the waiting requests that fit, samples their first tokens, adds the rows that go on. */
  private async admit(): Promise<void> {
    let free = this.maxRows - this.rows.length;
    const batch: Pending[] = [];
    while (this.queue.length && this.queue[0].n <= free) {
      const p = this.queue.shift()!;
      if (p.req.signal?.aborted) {
        p.reject(abortError());
        continue;
      }
      free -= p.n;
      batch.push(p);
    }
    if (!batch.length) return;
    // Prompts of equal length prefill together (no padding needed); others one group each.
    const groups = new Map<number, Pending[]>();
    for (const p of batch) groups.set(p.promptIds.length, [...(groups.get(p.promptIds.length) ?? []), p]);
    for (const [len, group] of groups) {
      try {
        await this.prefill(group, len);
      } catch (e) {
        for (const p of group) this.fail(p, e);
      }
    }
    this.stats.rebuilds++;
  }

  private async prefill(group: Pending[], len: number): Promise<void> {
    const g = group.length;
    const ids = new BigInt64Array(g * len);
    const pos = new BigInt64Array(g * len);
    group.forEach((p, r) => p.promptIds.forEach((t, j) => ((ids[r * len + j] = BigInt(t)), (pos[r * len + j] = BigInt(j)))));
    const feeds: Record<string, Tensor> = {
      [POLICY_INPUTS.inputIds]: new Tensor('int64', ids, [g, len]),
      [POLICY_INPUTS.attentionMask]: new Tensor('int64', new BigInt64Array(g * len).fill(1n), [g, len]),
      [POLICY_INPUTS.positionIds]: new Tensor('int64', pos, [g, len]),
    };
    const empty = new Float32Array(0);
    for (let l = 0; l < this.cfg.nLayer; l++) {
      feeds[pastKeyName(l)] = new Tensor('float32', empty, [g, this.cfg.nHead, 0, this.hd]);
      feeds[pastValueName(l)] = new Tensor('float32', empty, [g, this.cfg.nHead, 0, this.hd]);
    }
    const out = await this.session.run(feeds, this.fetches);
    this.stats.prefills++;
    const logits = out[POLICY_OUTPUTS.logits].data as Float32Array;
    const values = out[POLICY_OUTPUTS.values]?.data as Float32Array | undefined;
    const V = this.cfg.vocabSize;
    const joining: { row: Row; src: number }[] = [];
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
          decoder: new IncrementalDecoder((x) => this.opts.tokenizer.decode(x)),
          stop: new StopMatcher(p.stop),
          done: false,
        };
        this.accept(row, logits, (r * len + len - 1) * V, values ? values[r * len + len - 1] : undefined);
        if (!row.done) joining.push({ row, src: r });
      }
    });
    if (!joining.length) return;
    const B = this.rows.length + joining.length;
    this.cache.reserve(B, Math.max(len, ...this.rows.map((r) => r.realLen)), this.rows.map((r) => r.realLen));
    const first = this.rows.length;
    for (let l = 0; l < this.cfg.nLayer; l++) {
      const k = out[this.kvNames.keys[l]].data as Float32Array;
      const v = out[this.kvNames.values[l]].data as Float32Array;
      joining.forEach(({ src }, j) => this.cache.write(l, k, v, src, len, 0, len, first + j, 0));
    }
    for (const { row } of joining) this.rows.push(row);
  }

  /** One decode step for every row in the batch. */
  private async step(): Promise<void> {
    const rows = this.rows;
    const B = rows.length;
    let longest = 0;
    for (const row of rows) if (row.realLen > longest) longest = row.realLen;
    this.cache.reserve(B, longest, rows.map((r) => r.realLen));
    const P = this.cache.cols;
    const ids = new BigInt64Array(B);
    const pos = new BigInt64Array(B);
    const mask = new BigInt64Array(B * (P + 1));
    for (let r = 0; r < B; r++) {
      const row = rows[r];
      ids[r] = BigInt(row.next);
      pos[r] = BigInt(row.realLen);
      mask.fill(1n, r * (P + 1), r * (P + 1) + row.realLen);
      mask[r * (P + 1) + P] = 1n;
    }
    const past = this.cache.past(B);
    const feeds: Record<string, Tensor> = {
      [POLICY_INPUTS.inputIds]: new Tensor('int64', ids, [B, 1]),
      [POLICY_INPUTS.attentionMask]: new Tensor('int64', mask, [B, P + 1]),
      [POLICY_INPUTS.positionIds]: new Tensor('int64', pos, [B, 1]),
    };
    for (let l = 0; l < this.cfg.nLayer; l++) {
      feeds[pastKeyName(l)] = past.keys[l];
      feeds[pastValueName(l)] = past.values[l];
    }
    let out: InferenceSession.ReturnType;
    try {
      out = await this.session.run(feeds, this.fetches);
    } catch (e) {
      this.failAll(e);
      return;
    }
    this.stats.steps++;
    this.stats.rowSteps += B;
    // The fed token's key/value: the only position of a step output, the last of a present output.
    const srcLen = this.kvNames.step ? 1 : P + 1;
    for (let l = 0; l < this.cfg.nLayer; l++) {
      const k = out[this.kvNames.keys[l]].data as Float32Array;
      const v = out[this.kvNames.values[l]].data as Float32Array;
      for (let r = 0; r < B; r++) this.cache.write(l, k, v, r, srcLen, srcLen - 1, 1, r, rows[r].realLen);
    }
    const logits = out[POLICY_OUTPUTS.logits].data as Float32Array;
    const values = out[POLICY_OUTPUTS.values]?.data as Float32Array | undefined;
    const V = this.cfg.vocabSize;
    for (let r = 0; r < B; r++) {
      const row = rows[r];
      row.realLen++;
      if (!row.p.failed) this.accept(row, logits, r * V, values?.[r]);
    }
  }

  /** Samples the row's next token from its logits and decides whether the sequence ends here. */
  private accept(row: Row, logits: Float32Array, offset: number, value: number | undefined): void {
    const p = row.p;
    const tok = sampleToken(logits, offset, this.cfg.vocabSize, p.params, p.params.temperature > 0 ? row.rng.next() : 0);
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
      const tail = row.stop.append(row.decoder.flush());
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

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function abortError(): Error {
  const e = new Error('generation aborted');
  e.name = 'AbortError';
  return e;
}
