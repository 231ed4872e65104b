// A policy session in plain JS that honours the ONNX contract of shared/policy-io.ts exactly (left padding,
// attention_mask over past + new tokens, explicit position_ids, present = past ++ new), with a toy "model":
// each KV entry stores (token, position) and the logits are a fixed pseudo-random function of the attended
// entries. Any slip in the sampler's batching (wrong row, shifted cache, unmasked padding, wrong position)
// changes the logits, so tests can compare batched against solo runs without onnxruntime. It also checks the
// contract itself and throws on a violation (position_ids not matching the attended history, bad shapes).
// With `stepOutputs` it plays the step graph (step-graph.ts) instead: step.{i}.* hold only the fed tokens.
import { Tensor, type InferenceSession } from 'onnxruntime-common';
import { POLICY_INPUTS, POLICY_OUTPUTS, pastKeyName, pastValueName, presentKeyName, presentValueName, stepKeyName, stepValueName } from '../policy-io';
import type { PolicySession } from './engine';

export interface ReferenceSessionOptions {
  vocabSize: number;
  nLayer: number;
  nHead: number;
  headDim: number;
  /** Token id whose logit is raised by `eosBias` once a sequence holds `eosAfter` tokens (to exercise EOS). */
  eosId?: number;
  eosAfter?: number;
  /** Sharpness of the logits (higher = more peaked distribution). */
  scale?: number;
  /** Artificial latency per run in ms (lets tests have requests overlap). */
  delayMs?: number;
  /** Return step.{i}.* (the fed tokens' key/value) instead of present.{i}.*, as the step graph does. */
  stepOutputs?: boolean;
}

export class ReferenceSession implements PolicySession {
  runs = 0;
  batchSizes: number[] = [];
  /** Past lengths fed per run (the cache the sampler keeps). */
  pastLengths: number[] = [];
  readonly outputNames: readonly string[];
  constructor(private readonly o: ReferenceSessionOptions) {
    const kv = Array.from({ length: o.nLayer }, (_, l) =>
      o.stepOutputs ? [stepKeyName(l), stepValueName(l)] : [presentKeyName(l), presentValueName(l)],
    ).flat();
    this.outputNames = [POLICY_OUTPUTS.logits, POLICY_OUTPUTS.values, ...kv];
  }

  async run(feeds: InferenceSession.FeedsType): Promise<InferenceSession.ReturnType> {
    this.runs++;
    if (this.o.delayMs) await new Promise((r) => setTimeout(r, this.o.delayMs));
    const ids = feeds[POLICY_INPUTS.inputIds] as Tensor;
    const mask = feeds[POLICY_INPUTS.attentionMask] as Tensor;
    const pos = feeds[POLICY_INPUTS.positionIds] as Tensor;
    const [B, S] = ids.dims;
    this.batchSizes.push(B);
    const { nLayer, nHead, headDim: D, vocabSize: V } = this.o;
    const pastK = feeds[pastKeyName(0)] as Tensor;
    const P = pastK.dims[2];
    this.pastLengths.push(P);
    if (mask.dims[0] !== B || mask.dims[1] !== P + S) throw new Error(`attention_mask dims ${mask.dims} for past ${P} + seq ${S}`);
    const T = P + S;
    const presentK: Float32Array[] = [];
    const presentV: Float32Array[] = [];
    for (let l = 0; l < nLayer; l++) {
      const pk = (feeds[pastKeyName(l)] as Tensor).data as Float32Array;
      const pv = (feeds[pastValueName(l)] as Tensor).data as Float32Array;
      const k = new Float32Array(B * nHead * T * D);
      const v = new Float32Array(B * nHead * T * D);
      for (let b = 0; b < B; b++) {
        for (let h = 0; h < nHead; h++) {
          k.set(pk.subarray((b * nHead + h) * P * D, (b * nHead + h + 1) * P * D), (b * nHead + h) * T * D);
          v.set(pv.subarray((b * nHead + h) * P * D, (b * nHead + h + 1) * P * D), (b * nHead + h) * T * D);
          for (let s = 0; s < S; s++) {
            const o = ((b * nHead + h) * T + P + s) * D;
            k[o] = Number(ids.data[b * S + s] as bigint);
            k[o + 1] = Number(pos.data[b * S + s] as bigint);
            v[o] = l + h + 1;
          }
        }
      }
      presentK.push(k);
      presentV.push(v);
    }
    const logits = new Float32Array(B * S * V);
    const values = new Float32Array(B * S);
    const m = mask.data as BigInt64Array;
    const k0 = presentK[0];
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        // Attend to masked-in entries up to and including this query (causal).
        let h1 = 17;
        let count = 0;
        for (let t = 0; t <= P + s; t++) {
          if (m[b * T + t] === 0n) continue;
          const o = (b * nHead * T + t) * D;
          if (k0[o + 1] !== count) throw new Error(`row ${b}: attended entry ${t} has position ${k0[o + 1]}, expected ${count}`);
          h1 = (Math.imul(h1, 31) + k0[o] * 7 + 1) | 0;
          count++;
        }
        if (Number(pos.data[b * S + s] as bigint) !== count - 1) throw new Error(`row ${b}: position_ids ${pos.data[b * S + s]} but ${count} attended tokens`);
        const scale = this.o.scale ?? 3;
        for (let i = 0; i < V; i++) {
          const x = Math.sin(h1 * 0.001 + i * 12.9898) * 43758.5453;
          logits[(b * S + s) * V + i] = (x - Math.floor(x)) * scale;
        }
        if (this.o.eosId !== undefined && this.o.eosAfter !== undefined && count >= this.o.eosAfter) logits[(b * S + s) * V + this.o.eosId] += 50;
        values[b * S + s] = count / 10;
      }
    }
    const out: Record<string, Tensor> = {
      [POLICY_OUTPUTS.logits]: new Tensor('float32', logits, [B, S, V]),
      [POLICY_OUTPUTS.values]: new Tensor('float32', values, [B, S]),
    };
    for (let l = 0; l < nLayer; l++) {
      if (this.o.stepOutputs) {
        const tail = (x: Float32Array) => {
          const y = new Float32Array(B * nHead * S * D);
          for (let bh = 0; bh < B * nHead; bh++) y.set(x.subarray((bh * T + P) * D, (bh * T + T) * D), bh * S * D);
          return new Tensor('float32', y, [B, nHead, S, D]);
        };
        out[stepKeyName(l)] = tail(presentK[l]);
        out[stepValueName(l)] = tail(presentV[l]);
      } else {
        out[presentKeyName(l)] = new Tensor('float32', presentK[l], [B, nHead, T, D]);
        out[presentValueName(l)] = new Tensor('float32', presentV[l], [B, nHead, T, D]);
      }
    }
    return out;
  }
}
