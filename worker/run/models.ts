// Model artifacts as the run needs them: read a directory (config, tokenizer, weights, graphs) from the
// artifact store, build TF.js GPTs from weights, open onnxruntime sessions on exported graphs, and write a
// trained model back as an artifact directory (exportArtifacts to a local scratch dir, then one `put` per
// file, so an S3 store works the same as a local one).
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { artifactFileUri, type ArtifactStore } from '../../shared/artifact-store';
import { parseModelConfig, type ModelConfig } from '../../shared/model-config';
import { ortSessionOptions } from '../../shared/onnx-session';
import { ARTIFACT_FILES, type RewardPooling } from '../../shared/policy-io';
import type { PolicySession } from '../../shared/sampling';
import { Tokenizer } from '../../shared/tokenizer';
import { exportArtifacts } from '../export';
import { GPT, type HeadOptions } from '../model/gpt';
import { readSafetensors, type SafeTensors } from '../safetensors';

export const sha256Hex = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

export interface ModelArtifact {
  uri: string;
  config: ModelConfig;
  tokenizerJson: string;
  tokenizer: Tokenizer;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** Reads config.json and tokenizer.json of an artifact directory. */
export async function readArtifact(store: ArtifactStore, uri: string): Promise<ModelArtifact> {
  const config = parseModelConfig(JSON.parse(text(await store.get(artifactFileUri(uri, ARTIFACT_FILES.config)))));
  const tokenizerJson = text(await store.get(artifactFileUri(uri, ARTIFACT_FILES.tokenizer)));
  return { uri, config, tokenizerJson, tokenizer: Tokenizer.fromJSON(tokenizerJson) };
}

export async function readWeights(store: ArtifactStore, uri: string): Promise<SafeTensors> {
  return readSafetensors(await store.get(artifactFileUri(uri, ARTIFACT_FILES.weights))).tensors;
}

/** A GPT with the given heads, from weights (heads the weights lack keep their seeded init). */
export function gptFrom(config: ModelConfig, weights: SafeTensors, heads: HeadOptions, seed: number): GPT {
  const g = new GPT(config, { heads, seed });
  g.loadWeights(weights, { strict: false });
  return g;
}

export type OwnedSession = PolicySession & { release(): Promise<void> };

export async function sessionFrom(onnx: Uint8Array): Promise<OwnedSession> {
  const s = await ort.InferenceSession.create(onnx, ortSessionOptions());
  return { run: (feeds) => s.run(feeds), release: () => s.release() };
}

export interface WrittenArtifact {
  uri: string;
  /** sha256 of the graph file (policy.onnx or reward.onnx): what the policies/reward_models rows record. */
  sha256: string;
  /** The graph's bytes (to open a session without reading it back). */
  onnx: Uint8Array;
}

/**
 * Exports `weights` as a `kind` artifact into `scratchDir`, then copies every file to `uri` in the store.
 * The graph goes last, so a directory whose graph exists is complete.
 */
export async function writeArtifact(
  store: ArtifactStore,
  uri: string,
  weights: SafeTensors,
  art: Pick<ModelArtifact, 'config' | 'tokenizerJson'>,
  kind: 'policy' | 'reward',
  scratchDir: string,
  rewardPooling?: RewardPooling,
): Promise<WrittenArtifact> {
  const res = await exportArtifacts(weights, art.config, art.tokenizerJson, scratchDir, { kinds: [kind], rewardPooling });
  const graph = kind === 'policy' ? ARTIFACT_FILES.policyOnnx : ARTIFACT_FILES.rewardOnnx;
  const names = Object.keys(res.files).sort((a, b) => (a === graph ? 1 : b === graph ? -1 : a.localeCompare(b)));
  let onnx: Uint8Array | undefined;
  for (const name of names) {
    const bytes = new Uint8Array(await readFile(join(scratchDir, name)));
    await store.put(artifactFileUri(uri, name), bytes);
    if (name === graph) onnx = bytes;
  }
  if (!onnx) throw new Error(`export wrote no ${graph}`);
  return { uri, sha256: sha256Hex(onnx), onnx };
}

/** Weights of a GPT as safetensors records (GPT-2 names). */
export function weightsOf(g: GPT): SafeTensors {
  return g.toNamedArrays() as SafeTensors;
}
