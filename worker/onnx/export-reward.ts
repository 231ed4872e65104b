// The reward graph: input_ids + attention_mask [B, S] → rewards [B], the score head read at the last real
// token of each row. Positions are derived from the mask (cumsum − 1, as Hugging Face does), so a left-padded
// row, a right-padded row and the same row unpadded all get the same reward.
import type { ModelConfig } from '../../shared/model-config';
import { POLICY_INPUTS, REWARD_OUTPUT } from '../../shared/policy-io';
import type { SafeTensors } from '../safetensors';
import { DType, GraphBuilder } from './graph-builder';
import { addBackboneWeights, attentionBias, gptBody, scalarHead } from './gpt-graph';
import type { ExportGraphOptions } from './export-policy';
import { graphMetadata } from './metadata';
import { headShapes, take } from './weights';

/** Builds reward.onnx from GPT-2-named weights (backbone + score head) and returns the file's bytes. */
export function buildRewardOnnx(weights: SafeTensors, c: ModelConfig, opts: ExportGraphOptions): Uint8Array {
  const g = new GraphBuilder('prefloop_reward');
  addBackboneWeights(g, weights, c);
  for (const [name, shape] of Object.entries(headShapes(c, 'score'))) g.weight(name, shape, take(weights, name, shape).data);

  const ids = g.input(POLICY_INPUTS.inputIds, DType.int64, ['batch', 'seq']);
  const mask = g.input(POLICY_INPUTS.attentionMask, DType.int64, ['batch', 'seq']);

  // Position of each real token among the real tokens of its row; pads get 0 (never read).
  const cum = g.node('CumSum', [mask, g.constInt('axis1', [1], [])]);
  const positions = g.node('Max', [g.node('Sub', [cum, g.constInt('one', [1], [])]), g.constInt('zero', [0], [])]); // [B, S]

  const hidden = gptBody(g, c, { inputIds: ids, positionIds: positions, bias: attentionBias(g, mask, ids) });
  const scores = scalarHead(g, hidden, 'score', ids); // [B, S]

  // Index of the last real token: argmax of mask · (j + 1), unique because j + 1 grows along the row.
  const seq = g.node('Shape', [ids], { attrs: { start: 1, end: 2 } });
  const ramp = g.node('Cast', [g.node('Range', [g.constInt('one_s', [1], []), g.node('Add', [g.node('Squeeze', [seq]), g.constInt('one_s', [1], [])]), g.constInt('one_s', [1], [])])], { attrs: { to: DType.float } }); // [S]
  const weighted = g.node('Mul', [g.node('Cast', [mask], { attrs: { to: DType.float } }), ramp]); // [B, S]
  const last = g.node('ArgMax', [weighted], { attrs: { axis: 1, keepdims: 1 } }); // [B, 1]
  const rewards = g.node('Squeeze', [g.node('GatherElements', [scores, last], { attrs: { axis: 1 } }), g.constInt('axes', [1])]); // [B]

  g.output(REWARD_OUTPUT, rewards, DType.float, ['batch']);
  return g.toBytes({
    producerVersion: opts.version,
    docString: 'prefloop GPT-2 reward model: scalar reward at the last real token (see shared/policy-io.ts)',
    metadata: graphMetadata('reward', c, opts.tokenizerSha256, opts.version),
  });
}
