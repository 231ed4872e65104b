// Running policy.onnx on onnxruntime-node from the worker side (rollouts, parity tests, bench:decode):
// left-padded batches, prefill with past length 0, one-token decode steps that feed each step's present
// key/values back as the next step's past, and full-prefix recompute for comparison. The API's sampler has
// its own copy of this loop (api/ cannot import worker/); both follow shared/policy-io.ts.
import * as ort from 'onnxruntime-node';
import type { ModelConfig } from '../../shared/model-config';
import { headDim } from '../../shared/model-config';
import { ortSessionOptions, type OrtSessionDefaults } from '../../shared/onnx-session';
import {
  POLICY_INPUTS,
  POLICY_OUTPUTS,
  pastKeyName,
  pastValueName,
  presentKeyName,
  presentValueName,
} from '../../shared/policy-io';

export async function createSession(model: string | Uint8Array, overrides: Partial<OrtSessionDefaults> = {}): Promise<ort.InferenceSession> {
  const opts = ortSessionOptions(overrides);
  return typeof model === 'string' ? ort.InferenceSession.create(model, opts) : ort.InferenceSession.create(model, opts);
}

const int64 = (rows: number[][]) => {
  const flat = new BigInt64Array(rows.length * (rows[0]?.length ?? 0));
  let k = 0;
  for (const r of rows) for (const v of r) flat[k++] = BigInt(v);
  return new ort.Tensor('int64', flat, [rows.length, rows[0]?.length ?? 0]);
};

/** Left-pads prompts to one length; returns ids, mask (1 = real) and positions (cumsum(mask) − 1, pads 0). */
export function leftPad(prompts: number[][], padId: number): { ids: number[][]; mask: number[][]; positions: number[][] } {
  const len = Math.max(...prompts.map((p) => p.length));
  const ids = prompts.map((p) => [...Array(len - p.length).fill(padId), ...p]);
  const mask = prompts.map((p) => [...Array(len - p.length).fill(0), ...p.map(() => 1)]);
  const positions = prompts.map((p) => [...Array(len - p.length).fill(0), ...p.map((_, j) => j)]);
  return { ids, mask, positions };
}

export interface PolicyStepOutput {
  /** [B, S, V] */
  logits: ort.Tensor;
  /** [B, S] */
  values: ort.Tensor;
  /** present key/value per layer, in the order [key0, value0, key1, value1, ...] */
  present: ort.Tensor[];
}

/** One run of the merged graph. `past` empty (or omitted) means a prefill with past length 0. */
export async function runPolicy(
  session: ort.InferenceSession,
  c: ModelConfig,
  input: { ids: number[][]; mask: number[][]; positions: number[][]; past?: ort.Tensor[] },
): Promise<PolicyStepOutput> {
  const B = input.ids.length;
  const feeds: Record<string, ort.Tensor> = {
    [POLICY_INPUTS.inputIds]: int64(input.ids),
    [POLICY_INPUTS.attentionMask]: int64(input.mask),
    [POLICY_INPUTS.positionIds]: int64(input.positions),
  };
  const empty = new ort.Tensor('float32', new Float32Array(0), [B, c.nHead, 0, headDim(c)]);
  for (let i = 0; i < c.nLayer; i++) {
    feeds[pastKeyName(i)] = input.past?.[2 * i] ?? empty;
    feeds[pastValueName(i)] = input.past?.[2 * i + 1] ?? empty;
  }
  const out = await session.run(feeds);
  const present: ort.Tensor[] = [];
  for (let i = 0; i < c.nLayer; i++) present.push(out[presentKeyName(i)], out[presentValueName(i)]);
  return { logits: out[POLICY_OUTPUTS.logits], values: out[POLICY_OUTPUTS.values], present };
}

/** Picks the next token of row `b` from its logits (a view of V floats). Default: greedy argmax. */
export type TokenPicker = (logits: Float32Array, row: number) => number;

export const argmax: TokenPicker = (logits) => {
  let best = 0;
  for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
  return best;
};

/** The logits of the last position of every row: [B][V] views into the output. */
function lastLogits(logits: ort.Tensor): Float32Array[] {
  const [B, S, V] = logits.dims as number[];
  const data = logits.data as Float32Array;
  return Array.from({ length: B }, (_, b) => data.subarray((b * S + S - 1) * V, (b * S + S) * V));
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** true: KV cache (prefill once, then one token per step); false: recompute the whole prefix each step. */
  useCache: boolean;
  padId?: number;
  pick?: TokenPicker;
}

/** Generates `maxNewTokens` for every prompt (no early stop); returns the new tokens per row. */
export async function generate(session: ort.InferenceSession, c: ModelConfig, prompts: number[][], o: GenerateOptions): Promise<number[][]> {
  const pick = o.pick ?? argmax;
  const { ids, mask, positions } = leftPad(prompts, o.padId ?? 0);
  if (ids[0].length + o.maxNewTokens > c.contextLength) {
    throw new Error(`prompt (${ids[0].length}) + ${o.maxNewTokens} new tokens exceeds contextLength ${c.contextLength}`);
  }
  const out: number[][] = prompts.map(() => []);
  const nextPos = prompts.map((p) => p.length);
  if (o.useCache) {
    let step = await runPolicy(session, c, { ids, mask, positions });
    for (let t = 0; t < o.maxNewTokens; t++) {
      const next = lastLogits(step.logits).map((l, b) => pick(l, b));
      next.forEach((tok, b) => out[b].push(tok));
      if (t === o.maxNewTokens - 1) break;
      for (const m of mask) m.push(1);
      const pos = nextPos.map((p) => [p]);
      for (let b = 0; b < nextPos.length; b++) nextPos[b]++;
      step = await runPolicy(session, c, { ids: next.map((tok) => [tok]), mask, positions: pos, past: step.present });
    }
  } else {
    for (let t = 0; t < o.maxNewTokens; t++) {
      const step = await runPolicy(session, c, { ids, mask, positions });
      const next = lastLogits(step.logits).map((l, b) => pick(l, b));
      next.forEach((tok, b) => {
        out[b].push(tok);
        ids[b].push(tok);
        mask[b].push(1);
        positions[b].push(nextPos[b]++);
      });
    }
  }
  return out;
}
