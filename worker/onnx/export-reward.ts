// The reward graph: input_ids + attention_mask [B, S] → rewards [B], the score head averaged over the real
// tokens of each row or read at the last one (GPT.reward), and token_rewards [B, S], each token's share of it
// (PPO's dense reward). Positions are derived from the mask (cumsum − 1, as Hugging Face does), so a left-padded
// row, a right-padded row and the same row unpadded all get the same reward.
import type { ModelConfig } from '../../shared/model-config';
import { POLICY_INPUTS, REWARD_OUTPUT, REWARD_TOKENS_OUTPUT, type RewardPooling } from '../../shared/policy-io';
import type { SafeTensors } from '../safetensors';
import { DType, GraphBuilder } from './graph-builder';
import { addBackboneWeights, attentionBias, gptBody, scalarHead } from './gpt-graph';
import type { ExportGraphOptions } from './export-policy';
import { graphMetadata } from './metadata';
import { headShapes, take } from './weights';

/** Builds reward.onnx from GPT-2-named weights (backbone + score head) and returns the file's bytes. */
export function buildRewardOnnx(weights: SafeTensors, c: ModelConfig, opts: ExportGraphOptions & { pooling?: RewardPooling }): Uint8Array {
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

  // Each token's share of the reward: mask / row length (mean), or the one-hot of the last real token (last).
  const maskF = g.node('Cast', [mask], { attrs: { to: DType.float } }); // [B, S]
  let share: string;
  if ((opts.pooling ?? 'mean') === 'mean') {
    share = g.node('Div', [maskF, g.node('ReduceSum', [maskF, g.constInt('axes', [1])], { attrs: { keepdims: 1 } })]);
  } else {
    // Index of the last real token: argmax of mask · (j + 1), unique because j + 1 grows along the row.
    const seq = g.node('Shape', [ids], { attrs: { start: 1, end: 2 } });
    const ramp = g.node('Cast', [g.node('Range', [g.constInt('one_s', [1], []), g.node('Add', [g.node('Squeeze', [seq]), g.constInt('one_s', [1], [])]), g.constInt('one_s', [1], [])])], { attrs: { to: DType.float } }); // [S]
    const last = g.node('ArgMax', [g.node('Mul', [maskF, ramp])], { attrs: { axis: 1, keepdims: 1 } }); // [B, 1]
    const cols = g.node('Unsqueeze', [g.node('Range', [g.constInt('zero_s', [0], []), g.node('Squeeze', [seq]), g.constInt('one_s', [1], [])]), g.constInt('axes0', [0])]); // [1, S]
    share = g.node('Cast', [g.node('Equal', [cols, last])], { attrs: { to: DType.float } }); // [B, S]
  }
  const terms = g.node('Mul', [scores, share]); // [B, S]
  const rewards = g.node('ReduceSum', [terms, g.constInt('axes', [1])], { attrs: { keepdims: 0 } }); // [B]

  g.output(REWARD_OUTPUT, rewards, DType.float, ['batch']);
  g.output(REWARD_TOKENS_OUTPUT, terms, DType.float, ['batch', 'seq']);
  return g.toBytes({
    producerVersion: opts.version,
    docString: `prefloop GPT-2 reward model: scalar reward, the score head ${(opts.pooling ?? 'mean') === 'mean' ? 'averaged over the real tokens' : 'at the last real token'} (see shared/policy-io.ts)`,
    metadata: graphMetadata('reward', c, opts.tokenizerSha256, opts.version),
  });
}
