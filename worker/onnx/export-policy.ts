// The policy graph: one merged graph for prefill (past length 0) and decode (past length > 0), with the
// inputs, outputs and metadata of shared/policy-io.ts. Logits use the tied embedding (Gemm with transB, so
// wte is stored once); the value head reads the same final hidden states.
import type { ModelConfig } from '../../shared/model-config';
import { headDim } from '../../shared/model-config';
import {
  POLICY_INPUTS,
  POLICY_OUTPUTS,
  pastKeyName,
  pastValueName,
  presentKeyName,
  presentValueName,
} from '../../shared/policy-io';
import type { SafeTensors } from '../safetensors';
import { DType, GraphBuilder } from './graph-builder';
import { addBackboneWeights, attentionBias, gptBody, scalarHead, type LayerCache } from './gpt-graph';
import { graphMetadata } from './metadata';
import { headShapes, take } from './weights';

export interface ExportGraphOptions {
  /** sha256 of the tokenizer.json bytes, written to prefloop.tokenizer_sha256. */
  tokenizerSha256: string;
  /** Written to prefloop.version (a policy version label or a content hash). */
  version: string;
}

/** Builds policy.onnx from GPT-2-named weights (backbone + v_head) and returns the file's bytes. */
export function buildPolicyOnnx(weights: SafeTensors, c: ModelConfig, opts: ExportGraphOptions): Uint8Array {
  const g = new GraphBuilder('prefloop_policy');
  const hd = headDim(c);
  addBackboneWeights(g, weights, c);
  for (const [name, shape] of Object.entries(headShapes(c, 'value'))) g.weight(name, shape, take(weights, name, shape).data);

  const ids = g.input(POLICY_INPUTS.inputIds, DType.int64, ['batch', 'seq']);
  const mask = g.input(POLICY_INPUTS.attentionMask, DType.int64, ['batch', 'past_seq']);
  const positions = g.input(POLICY_INPUTS.positionIds, DType.int64, ['batch', 'seq']);
  const caches: LayerCache[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    caches.push({
      pastKey: g.input(pastKeyName(i), DType.float, ['batch', c.nHead, 'past', hd]),
      pastValue: g.input(pastValueName(i), DType.float, ['batch', c.nHead, 'past', hd]),
      presentKey: presentKeyName(i),
      presentValue: presentValueName(i),
    });
  }

  const hidden = gptBody(g, c, { inputIds: ids, positionIds: positions, bias: attentionBias(g, mask, ids), caches }); // [B*S, d]

  // Tied LM head: logits = h @ wte^T, as a Gemm with transB so the transpose is free and wte is stored once.
  const logits2d = g.node('Gemm', [hidden, 'wte.weight'], { attrs: { transB: 1 } }); // [B*S, V]
  const logitsShape = g.node('Concat', [g.node('Shape', [ids]), g.constInt('vocab', [c.vocabSize])], { attrs: { axis: 0 } });
  const logits = g.node('Reshape', [logits2d, logitsShape]); // [B, S, V]
  const values = scalarHead(g, hidden, 'v_head', ids); // [B, S]

  g.output(POLICY_OUTPUTS.logits, logits, DType.float, ['batch', 'seq', c.vocabSize]);
  g.output(POLICY_OUTPUTS.values, values, DType.float, ['batch', 'seq']);
  for (let i = 0; i < c.nLayer; i++) {
    g.output(presentKeyName(i), presentKeyName(i), DType.float, ['batch', c.nHead, 'past_seq', hd]);
    g.output(presentValueName(i), presentValueName(i), DType.float, ['batch', c.nHead, 'past_seq', hd]);
  }
  return g.toBytes({
    producerVersion: opts.version,
    docString: 'prefloop GPT-2 policy: logits, values and KV cache (see shared/policy-io.ts)',
    metadata: graphMetadata('policy', c, opts.tokenizerSha256, opts.version),
  });
}
