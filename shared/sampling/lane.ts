// A decode lane: one policy session plus the KV cache of the rows it decodes (kv-cache.ts). The engine
// (engine.ts) keeps the rows' state (RNG streams, text, stop strings); a lane keeps what the graph needs, runs
// it, writes each run's new key/value into its cache and samples each row's next token with the draw the engine
// gives it, so a decode step returns token ids, log-probabilities and values (a prefill returns its logits).
//
// Why the cache sits with the session and not with the engine: a lane may live on another thread (the
// onnxruntime-node adapter puts one in a worker thread, api/adapters/ort-lane-worker.ts), where the cache has
// to be, since onnxruntime-node accepts no SharedArrayBuffer-backed input (measured: "Invalid argument") and
// copying the cache to another thread on every step would cost more than the step. Only token ids, row lengths,
// draws and the sampled tokens cross.
import { Tensor, type InferenceSession } from 'onnxruntime-common';
import { POLICY_INPUTS, POLICY_OUTPUTS, STEP_PROBS, pastKeyName, pastValueName, presentKeyName, presentValueName, stepKeyName, stepValueName } from '../policy-io';
import { KvCache } from './kv-cache';
import { plainSampling, sampleFromProbs, sampleToken } from './sample';

/** What the engine needs from a session: `run` of onnxruntime's InferenceSession (node, web or a test double). */
export interface PolicySession {
  run(feeds: InferenceSession.FeedsType, fetches?: InferenceSession.FetchesType): Promise<InferenceSession.ReturnType>;
  /** The graph's outputs; a session whose outputs include `step.0.key` runs the step graph (step-graph.ts). */
  readonly outputNames?: readonly string[];
  /**
   * More lanes over the same graph that run off this thread (onnxruntime-node worker threads): the engine then
   * splits its batch over this session's own lane and these, so one lane's sampling overlaps another's run.
   * Called once per engine. Sessions without it decode on one lane.
   */
  readonly offThreadLanes?: (shape: LaneShape) => DecodeLane[];
}

/** The graph's sizes a lane needs (plain numbers, so they can be posted to a worker thread). */
export interface LaneShape {
  nLayer: number;
  nHead: number;
  headDim: number;
  contextLength: number;
  vocabSize: number;
}

export interface LaneOutput {
  /** [rows, vocab]: the next-token logits of each prompt (prefill) or row (step). */
  logits: Float32Array;
  /** [rows]: value-head outputs at the same positions, when the graph has a value head. */
  values?: Float32Array;
}

/**
 * What a step needs to sample each row's next token in the lane (sample.ts): the row's uniform draw from its own
 * RNG stream (drawn by the engine, so the stream does not depend on the lane) and its sampling parameters.
 * Sampling where the logits are keeps 22 µs per row (vocabulary 2048) off the engine's thread and leaves only
 * token ids and log-probabilities to cross back, not [rows, vocab] logits.
 */
export interface StepDraws {
  u: Float64Array;
  temperature: Float64Array;
  topP: Float64Array;
  topK: Int32Array;
}

export interface StepOutput {
  /** [rows]: the sampled token of each row. */
  tokens: Int32Array;
  /** [rows]: its log-probability (SampledToken.logprob). */
  logprobs: Float64Array;
  /** [rows]: value-head outputs at the fed position, when the graph has a value head. */
  values?: Float32Array;
}

/** The contract of a lane; SessionLane implements it in-thread, the worker proxy by messages to one. */
export interface DecodeLane {
  /** True when runs return only the fed tokens' key/value (the step graph). */
  readonly usesStepGraph: boolean;
  /** True once the lane can run no more (its thread died): the engine gives it no new requests. */
  readonly closed?: boolean;
  /**
   * Rows this lane takes relative to others (default 1): a lane on a thread of its own can carry more than the
   * engine's thread, which also samples every lane's rows and serves requests.
   */
  readonly share?: number;
  /**
   * Runs `g` prompts of `len` tokens each (`ids` row-major [g, len]) with an empty past and appends one cache
   * row per entry of `sources`, holding that prompt's key/value (a prompt sampled n times gets n rows). `used`
   * gives the tokens each current row holds. Returns each prompt's last-position logits and value.
   */
  prefill(ids: Int32Array, g: number, len: number, sources: readonly number[], used: readonly number[]): Promise<LaneOutput>;
  /**
   * One decode step: row r is fed token `next[r]` at position `lens[r]` (the tokens it holds), then holds one
   * more; its next token is sampled with `draws`.
   */
  step(next: Int32Array, lens: Int32Array, draws: StepDraws): Promise<StepOutput>;
  /** Moves the first `n` cached tokens of row `from` to row `to` (compaction when a row leaves). */
  moveRow(from: number, to: number, n: number): void;
  /** The batch is empty. */
  clear(): void;
}

/** A lane on the calling thread over any PolicySession. */
export class SessionLane implements DecodeLane {
  readonly usesStepGraph: boolean;
  private readonly cache: KvCache;
  /** Output names holding the fed tokens' key/value per layer (step graph), or the contract's present names. */
  private readonly kvNames: { keys: string[]; values: string[] };
  private readonly fetches: string[];
  /** The step fetches when every row samples from `probs`: the [rows, vocab] logits are not copied out. */
  private readonly probsFetches: string[];
  /** A prefill samples from its last positions' logits on the engine's side: no [g, len, vocab] probs copy. */
  private readonly prefillFetches: string[];
  private readonly hasValues: boolean;
  /** The graph outputs softmax(logits) (step-graph.ts): temperature-1 rows sample from it (sample.ts). */
  private readonly hasProbs: boolean;
  /** Input names per layer, made once: a decode step would otherwise build 2 × nLayer strings. */
  private readonly pastNames: { keys: string[]; values: string[] };
  /**
   * A step's inputs, reused while the cache hands out the same past tensors (same rows, columns and buffers: KvCache.past)
   * — typed-array allocation was a share of a step's JS.
   */
  private stepInputs: { past: ReturnType<KvCache['past']>; ids: BigInt64Array; pos: BigInt64Array; mask: BigInt64Array; feeds: Record<string, Tensor> } | null = null;

  constructor(
    private readonly session: PolicySession,
    private readonly shape: LaneShape,
  ) {
    this.cache = new KvCache(shape.nLayer, shape.nHead, shape.headDim, shape.contextLength);
    const layers = Array.from({ length: shape.nLayer }, (_, i) => i);
    this.usesStepGraph = session.outputNames?.includes(stepKeyName(0)) ?? false;
    this.kvNames = this.usesStepGraph
      ? { keys: layers.map(stepKeyName), values: layers.map(stepValueName) }
      : { keys: layers.map(presentKeyName), values: layers.map(presentValueName) };
    this.hasValues = session.outputNames ? session.outputNames.includes(POLICY_OUTPUTS.values) : true;
    this.hasProbs = session.outputNames?.includes(STEP_PROBS) ?? false;
    this.pastNames = { keys: layers.map(pastKeyName), values: layers.map(pastValueName) };
    this.fetches = [
      POLICY_OUTPUTS.logits,
      ...(this.hasValues ? [POLICY_OUTPUTS.values] : []),
      ...(this.hasProbs ? [STEP_PROBS] : []),
      ...layers.flatMap((l) => [this.kvNames.keys[l], this.kvNames.values[l]]),
    ];
    this.probsFetches = this.fetches.filter((f) => f !== POLICY_OUTPUTS.logits);
    this.prefillFetches = this.fetches.filter((f) => f !== STEP_PROBS);
  }

  async prefill(ids: Int32Array, g: number, len: number, sources: readonly number[], used: readonly number[]): Promise<LaneOutput> {
    const { nLayer, nHead, headDim, vocabSize: V } = this.shape;
    const idsT = new BigInt64Array(g * len);
    const pos = new BigInt64Array(g * len);
    for (let i = 0; i < g * len; i++) {
      idsT[i] = BigInt(ids[i]);
      pos[i] = BigInt(i % len);
    }
    const feeds: Record<string, Tensor> = {
      [POLICY_INPUTS.inputIds]: new Tensor('int64', idsT, [g, len]),
      [POLICY_INPUTS.attentionMask]: new Tensor('int64', new BigInt64Array(g * len).fill(1n), [g, len]),
      [POLICY_INPUTS.positionIds]: new Tensor('int64', pos, [g, len]),
    };
    const empty = new Float32Array(0);
    for (let l = 0; l < nLayer; l++) {
      feeds[this.pastNames.keys[l]] = new Tensor('float32', empty, [g, nHead, 0, headDim]);
      feeds[this.pastNames.values[l]] = new Tensor('float32', empty, [g, nHead, 0, headDim]);
    }
    const out = await this.session.run(feeds, this.prefillFetches);
    if (sources.length) {
      let longest = len;
      for (const n of used) if (n > longest) longest = n;
      this.cache.reserve(used.length + sources.length, longest, used);
      for (let l = 0; l < nLayer; l++) {
        const k = out[this.kvNames.keys[l]].data as Float32Array;
        const v = out[this.kvNames.values[l]].data as Float32Array;
        sources.forEach((src, j) => this.cache.write(l, k, v, src, len, 0, len, used.length + j, 0));
      }
    }
    // Only the last position of each prompt is sampled from; the step graph returns only that one (step-graph.ts).
    const logitsOut = out[POLICY_OUTPUTS.logits];
    const vals = out[POLICY_OUTPUTS.values]?.data as Float32Array | undefined;
    const values = vals ? new Float32Array(g) : undefined;
    if (values) for (let r = 0; r < g; r++) values[r] = vals![r * len + len - 1];
    const S = logitsOut.dims[1];
    const all = logitsOut.data as Float32Array;
    if (S === 1) return { logits: all, values };
    const logits = new Float32Array(g * V);
    for (let r = 0; r < g; r++) logits.set(all.subarray((r * S + S - 1) * V, (r * S + S) * V), r * V);
    return { logits, values };
  }

  async step(next: Int32Array, lens: Int32Array, draws: StepDraws): Promise<StepOutput> {
    const B = next.length;
    let longest = 0;
    for (let r = 0; r < B; r++) if (lens[r] > longest) longest = lens[r];
    this.cache.reserve(B, longest, lens);
    const P = this.cache.cols;
    const { ids, pos, mask, feeds } = this.inputsFor(B, P);
    mask.fill(0n);
    for (let r = 0; r < B; r++) {
      ids[r] = BigInt(next[r]);
      pos[r] = BigInt(lens[r]);
      mask.fill(1n, r * (P + 1), r * (P + 1) + lens[r]);
      mask[r * (P + 1) + P] = 1n;
    }
    let allPlain = this.hasProbs;
    for (let r = 0; r < B && allPlain; r++) allPlain = plainSampling(draws.temperature[r], draws.topP[r], draws.topK[r]);
    const out = await this.session.run(feeds, allPlain ? this.probsFetches : this.fetches);
    // The fed token's key/value: the only position of a step output, the last of a present output.
    const srcLen = this.usesStepGraph ? 1 : P + 1;
    for (let l = 0; l < this.shape.nLayer; l++) {
      const k = out[this.kvNames.keys[l]].data as Float32Array;
      const v = out[this.kvNames.values[l]].data as Float32Array;
      for (let r = 0; r < B; r++) this.cache.write(l, k, v, r, srcLen, srcLen - 1, 1, r, lens[r]);
    }
    const logits = out[POLICY_OUTPUTS.logits]?.data as Float32Array;
    const probs = this.hasProbs ? (out[STEP_PROBS].data as Float32Array) : null;
    const V = this.shape.vocabSize;
    const tokens = new Int32Array(B);
    const logprobs = new Float64Array(B);
    for (let r = 0; r < B; r++) {
      const t = draws.temperature[r], topP = draws.topP[r], topK = draws.topK[r];
      const tok = probs && (allPlain || plainSampling(t, topP, topK)) ? sampleFromProbs(probs, r * V, V, draws.u[r]) : sampleToken(logits, r * V, V, { temperature: t, topP, topK }, draws.u[r]);
      tokens[r] = tok.id;
      logprobs[r] = tok.logprob;
    }
    return { tokens, logprobs, values: out[POLICY_OUTPUTS.values]?.data as Float32Array | undefined };
  }

  /** The step's input tensors for `rows` rows over `cols` past columns: the previous step's when the cache's views held. */
  private inputsFor(rows: number, cols: number): NonNullable<SessionLane['stepInputs']> {
    const past = this.cache.past(rows);
    if (this.stepInputs?.past === past) return this.stepInputs;
    const ids = new BigInt64Array(rows);
    const pos = new BigInt64Array(rows);
    const mask = new BigInt64Array(rows * (cols + 1));
    const feeds: Record<string, Tensor> = {
      [POLICY_INPUTS.inputIds]: new Tensor('int64', ids, [rows, 1]),
      [POLICY_INPUTS.attentionMask]: new Tensor('int64', mask, [rows, cols + 1]),
      [POLICY_INPUTS.positionIds]: new Tensor('int64', pos, [rows, 1]),
    };
    for (let l = 0; l < this.shape.nLayer; l++) {
      feeds[this.pastNames.keys[l]] = past.keys[l];
      feeds[this.pastNames.values[l]] = past.values[l];
    }
    this.stepInputs = { past, ids, pos, mask, feeds };
    return this.stepInputs;
  }

  moveRow(from: number, to: number, n: number): void {
    this.cache.moveRow(from, to, n);
  }

  clear(): void {
    this.cache.clear();
  }
}
