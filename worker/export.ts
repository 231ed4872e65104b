// Writes one model artifact directory (shared/policy-io.ts ARTIFACT_FILES): config.json, tokenizer.json,
// model.safetensors and policy.onnx and/or reward.onnx, from GPT-2-named weights. Every graph carries the
// config, the tokenizer's sha256 and a version in its metadata, so a runtime holding only the .onnx can
// check it against the tokenizer it was given.
import { createHash } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseModelConfig, type ModelConfig } from '../shared/model-config';
import { ARTIFACT_FILES, type RewardPooling } from '../shared/policy-io';
import { buildPolicyOnnx } from './onnx/export-policy';
import { buildRewardOnnx } from './onnx/export-reward';
import { tokenizerSha256, type GraphKind } from './onnx/metadata';
import { checkWeights, zeroHead } from './onnx/weights';
import { writeSafetensors, type SafeTensors } from './safetensors';

export interface ExportOptions {
  /**
   * Which graphs to write. Default: 'reward' when the weights hold `score.*`, 'policy' when they hold
   * `v_head.*` or no head at all (a base LM).
   */
  kinds?: GraphKind[];
  /** prefloop.version in the ONNX metadata. Default: the first 16 hex digits of model.safetensors' sha256. */
  version?: string;
  /** How reward.onnx reads the score head (default 'mean'). */
  rewardPooling?: RewardPooling;
}

export interface ExportedFile {
  path: string;
  bytes: number;
  sha256: string;
}

export interface ExportResult {
  version: string;
  kinds: GraphKind[];
  /** 'zero' when a policy was exported from weights without `v_head.*` (its values output is then all 0). */
  valueHead: 'trained' | 'zero' | 'none';
  /** Keyed by ARTIFACT_FILES value (e.g. 'policy.onnx'). */
  files: Record<string, ExportedFile>;
}

const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** Writes to a temporary name, then renames, so a reader never sees a half-written file. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

export async function exportArtifacts(
  weights: SafeTensors,
  config: ModelConfig,
  tokenizerJson: string,
  outDir: string,
  opts: ExportOptions = {},
): Promise<ExportResult> {
  const c = parseModelConfig(config);
  const hasValue = 'v_head.weight' in weights;
  const hasScore = 'score.weight' in weights;
  const kinds: GraphKind[] = opts.kinds ?? [...(hasValue || !hasScore ? (['policy'] as const) : []), ...(hasScore ? (['reward'] as const) : [])];
  checkWeights(weights, c, [...(hasValue ? (['value'] as const) : []), ...(hasScore ? (['score'] as const) : [])]);
  if (kinds.includes('reward') && !hasScore) throw new Error('reward.onnx requested but the weights have no score.weight/score.bias');

  const safetensors = writeSafetensors(weights, { format: 'pt', 'prefloop.config': JSON.stringify(c) });
  const version = opts.version ?? sha256(safetensors).slice(0, 16);
  const graphOpts = { tokenizerSha256: tokenizerSha256(tokenizerJson), version };

  const files: Record<string, Uint8Array | string> = {
    [ARTIFACT_FILES.config]: `${JSON.stringify(c, null, 2)}\n`,
    [ARTIFACT_FILES.tokenizer]: tokenizerJson,
    [ARTIFACT_FILES.weights]: safetensors,
  };
  if (kinds.includes('policy')) {
    files[ARTIFACT_FILES.policyOnnx] = buildPolicyOnnx(hasValue ? weights : { ...weights, ...zeroHead(c, 'value') }, c, graphOpts);
  }
  if (kinds.includes('reward')) files[ARTIFACT_FILES.rewardOnnx] = buildRewardOnnx(weights, c, { ...graphOpts, pooling: opts.rewardPooling });

  await mkdir(outDir, { recursive: true });
  const result: ExportResult = { version, kinds, valueHead: !kinds.includes('policy') ? 'none' : hasValue ? 'trained' : 'zero', files: {} };
  for (const [name, data] of Object.entries(files)) {
    const path = join(outDir, name);
    await writeAtomic(path, data);
    result.files[name] = { path, bytes: typeof data === 'string' ? Buffer.byteLength(data) : data.length, sha256: sha256(data) };
  }
  return result;
}
