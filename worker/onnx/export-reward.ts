// The reward graph: input_ids + attention_mask [B, S] → rewards [B], the score head averaged over the real
// tokens of each row (GPT.reward), and token_rewards [B, S], each token's share of it (PPO's dense reward). Positions are derived from the mask (cumsum − 1, as Hugging Face does), so a left-padded
// row, a right-padded row and the same row unpadded all get the same reward.
import type { ModelConfig } from '../../shared/model-config';
import { POLICY_INPUTS, REWARD_OUTPUT, REWARD_TOKENS_OUTPUT } from '../../shared/policy-io';
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

  // Mean over the real tokens: Σ mask·score / Σ mask.
  const maskF = g.node('Cast', [mask], { attrs: { to: DType.float } }); // [B, S]
  const count = g.node('ReduceSum', [maskF, g.constInt('axes', [1])], { attrs: { keepdims: 1 } }); // [B, 1]
  const terms = g.node('Div', [g.node('Mul', [scores, maskF]), count]); // [B, S]: each token's share
  const rewards = g.node('ReduceSum', [terms, g.constInt('axes', [1])], { attrs: { keepdims: 0 } }); // [B]

  g.output(REWARD_OUTPUT, rewards, DType.float, ['batch']);
  g.output(REWARD_TOKENS_OUTPUT, terms, DType.float, ['batch', 'seq']);
  return g.toBytes({
    producerVersion: opts.version,
    docString: 'prefloop GPT-2 reward model: scalar reward, the score head averaged over the real tokens (see shared/policy-io.ts)',
    metadata: graphMetadata('reward', c, opts.tokenizerSha256, opts.version),
  });
}
