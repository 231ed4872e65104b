// In-memory ONNX sessions of TF.js models: PPO exports the current policy once per rollout batch and samples
// from it with the serving sampler on onnxruntime-node (10× the tokens/s of a TF.js forward here), and a
// TF.js reward model can be scored the same way. Nothing touches the disk; the graph is the one
// worker/export.ts writes into artifacts, so rollouts sample exactly what serving would.
import type * as ort from 'onnxruntime-node';
import type { RewardPooling } from '../../shared/policy-io';
import type { GPT } from '../model/gpt';
import { buildPolicyOnnx } from '../onnx/export-policy';
import { buildRewardOnnx } from '../onnx/export-reward';
import { zeroHead } from '../onnx/weights';
import { createSession } from '../onnx/policy-session';
import type { SafeTensors } from '../safetensors';

const GRAPH_OPTS = { tokenizerSha256: 'in-memory', version: 'rollout' };

/** policy.onnx of the model's current weights (a zero value head when it has none), as an onnxruntime session. */
export async function exportPolicySession(model: GPT): Promise<ort.InferenceSession> {
  const w = model.toNamedArrays() as SafeTensors;
  const bytes = buildPolicyOnnx(model.heads.value ? w : { ...w, ...zeroHead(model.config, 'value') }, model.config, GRAPH_OPTS);
  return createSession(bytes);
}

/** reward.onnx of a reward model's current weights, as an onnxruntime session. */
export async function exportRewardSession(model: GPT, pooling: RewardPooling = 'mean'): Promise<ort.InferenceSession> {
  if (!model.heads.reward) throw new Error('model has no reward head');
  return createSession(buildRewardOnnx(model.toNamedArrays() as SafeTensors, model.config, { ...GRAPH_OPTS, pooling }));
}
