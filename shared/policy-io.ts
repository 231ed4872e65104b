// Names and layouts of the ONNX graphs' inputs and outputs: the contract between the exporter (worker/) and
// every runtime that runs the graphs (the API's sampler on onnxruntime-node, onnxruntime-web in workerd,
// PPO rollouts). The names follow Hugging Face Optimum's decoder exports, so the files read like any GPT-2 ONNX.
//
// Policy graph (one merged graph; past length may be 0 for the prefill step):
//   input_ids                  int64   [batch, seq]
//   attention_mask             int64   [batch, past + seq]   1 = real token, 0 = padding (left padding allowed)
//   position_ids               int64   [batch, seq]
//   past_key_values.{i}.key    float32 [batch, nHead, past, headDim]   for i in 0..nLayer-1
//   past_key_values.{i}.value  float32 [batch, nHead, past, headDim]
// outputs:
//   logits                     float32 [batch, seq, vocab]
//   values                     float32 [batch, seq]          value head (PPO critic)
//   present.{i}.key / .value   float32 [batch, nHead, past + seq, headDim]
//
// Reward graph:
//   input_ids int64 [batch, seq], attention_mask int64 [batch, seq]  ->  rewards float32 [batch]
//   (the scalar head averaged over the real tokens of each row), and token_rewards float32 [batch, seq]: each
//   real token's share of that mean (score / row length; 0 at pads), whose row sums are the rewards — PPO's
//   dense per-token reward
//
// Metadata (ModelProto.metadata_props): prefloop.config (JSON ModelConfig), prefloop.tokenizer_sha256,
// prefloop.kind ('policy' | 'reward'), prefloop.version.

export const POLICY_INPUTS = { inputIds: 'input_ids', attentionMask: 'attention_mask', positionIds: 'position_ids' } as const;
export const POLICY_OUTPUTS = { logits: 'logits', values: 'values' } as const;
/** Extra output of the derived step graph (shared/sampling/step-graph.ts): softmax(logits) over the vocabulary. */
export const STEP_PROBS = 'probs';
export const REWARD_OUTPUT = 'rewards';
/** How the reward graph reads its score head: averaged over the real tokens (default), or at the last one
 *  (TRL / Hugging Face sequence classification; the graph then gives the last token all of token_rewards). */
export const REWARD_POOLINGS = ['mean', 'last'] as const;
export type RewardPooling = (typeof REWARD_POOLINGS)[number];
export const REWARD_TOKENS_OUTPUT = 'token_rewards';

export const pastKeyName = (layer: number) => `past_key_values.${layer}.key`;
export const pastValueName = (layer: number) => `past_key_values.${layer}.value`;
export const presentKeyName = (layer: number) => `present.${layer}.key`;
export const presentValueName = (layer: number) => `present.${layer}.value`;
// The decode-step variant the sampler derives at load time (shared/sampling/step-graph.ts): same inputs, but
// instead of present.{i}.* it returns only the fed tokens' key/value, float32 [batch, nHead, seq, headDim].
// Not an artifact format: policy.onnx files always follow the contract above.
export const stepKeyName = (layer: number) => `step.${layer}.key`;
export const stepValueName = (layer: number) => `step.${layer}.value`;

export const METADATA_KEYS = {
  config: 'prefloop.config',
  tokenizerSha256: 'prefloop.tokenizer_sha256',
  kind: 'prefloop.kind',
  version: 'prefloop.version',
} as const;

/** Files in one model artifact directory (local dir, S3 prefix or R2 prefix). */
export const ARTIFACT_FILES = {
  config: 'config.json',
  tokenizer: 'tokenizer.json',
  weights: 'model.safetensors',
  policyOnnx: 'policy.onnx',
  rewardOnnx: 'reward.onnx',
  report: 'report.md',
} as const;
