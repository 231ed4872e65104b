// Loading one policy artifact directory into a ready GenerationEngine, with the checks a swap depends on:
// the bytes of policy.onnx must hash to the sha256 the policies table recorded, the runtime must accept the
// file, and a smoke forward pass must return logits of the right shape with finite values. Any failure is a
// PolicyLoadError and nothing is swapped.
import { Tensor } from 'onnxruntime-common';
import { artifactFileUri, type ArtifactStore } from '../../shared/artifact-store';
import { bytesToHex } from '../../shared/hash';
import { headDim, parseModelConfig, type ModelConfig } from '../../shared/model-config';
import { ARTIFACT_FILES, POLICY_INPUTS, POLICY_OUTPUTS, pastKeyName, pastValueName, presentKeyName, stepKeyName } from '../../shared/policy-io';
import { GenerationEngine } from '../../shared/sampling';
import { Tokenizer } from '../../shared/tokenizer';
import type { LoadedSession, OnnxRuntimePort } from './onnx-runtime';

export type PolicyLoadStage = 'fetch' | 'sha256' | 'config' | 'tokenizer' | 'session' | 'smoke';

export class PolicyLoadError extends Error {
  constructor(
    readonly stage: PolicyLoadStage,
    message: string,
    /** false for a fault of the artifact itself (bad hash, corrupt file); true for a fetch that may succeed later. */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'PolicyLoadError';
  }
}

/** A policy ready to serve: one session, one engine batching every request that uses it. */
export interface LoadedModel {
  sha256: string;
  artifactUri: string;
  config: ModelConfig;
  tokenizer: Tokenizer;
  engine: GenerationEngine;
  session: LoadedSession;
}

export interface LoaderDeps {
  artifacts: ArtifactStore;
  runtime: OnnxRuntimePort;
  /** Most sequences one engine decodes together. */
  maxBatchRows: number;
}

export async function sha256Bytes(bytes: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>)));
}

export async function loadPolicy(deps: LoaderDeps, artifactUri: string, expectedSha256: string): Promise<LoadedModel> {
  const fetch = async (file: string) => {
    try {
      return await deps.artifacts.get(artifactFileUri(artifactUri, file));
    } catch (e) {
      const missing = (e as { code?: string }).code === 'artifact_not_found';
      throw new PolicyLoadError('fetch', `${artifactFileUri(artifactUri, file)}: ${(e as Error).message}`, !missing);
    }
  };
  const [onnx, configBytes, tokenizerBytes] = await Promise.all([fetch(ARTIFACT_FILES.policyOnnx), fetch(ARTIFACT_FILES.config), fetch(ARTIFACT_FILES.tokenizer)]);
  const sha256 = await sha256Bytes(onnx);
  if (sha256 !== expectedSha256.toLowerCase()) throw new PolicyLoadError('sha256', `policy.onnx hashes to ${sha256}, the registry expects ${expectedSha256}`);
  let config: ModelConfig;
  try {
    config = parseModelConfig(JSON.parse(new TextDecoder().decode(configBytes)));
  } catch (e) {
    throw new PolicyLoadError('config', `config.json: ${(e as Error).message}`);
  }
  let tokenizer: Tokenizer;
  try {
    tokenizer = Tokenizer.fromJSON(new TextDecoder().decode(tokenizerBytes));
  } catch (e) {
    throw new PolicyLoadError('tokenizer', `tokenizer.json: ${(e as Error).message}`);
  }
  if (tokenizer.vocabSize > config.vocabSize) throw new PolicyLoadError('tokenizer', `tokenizer has ${tokenizer.vocabSize} tokens, the model ${config.vocabSize}`);
  let session: LoadedSession;
  try {
    session = await deps.runtime.createSession(onnx);
  } catch (e) {
    throw new PolicyLoadError('session', `onnxruntime refused policy.onnx: ${(e as Error).message}`);
  }
  try {
    await smokeTest(session, config, tokenizer);
  } catch (e) {
    await session.release().catch(() => undefined);
    throw new PolicyLoadError('smoke', `smoke forward pass failed: ${(e as Error).message}`);
  }
  const engine = new GenerationEngine(session, { config, tokenizer, maxBatchRows: deps.maxBatchRows });
  return { sha256, artifactUri, config, tokenizer, engine, session };
}

/** Prefill of [BOS, 'a']: logits [1, 2, vocab] (a step graph's: [1, 1, vocab], the last position) all finite, present KV of length 2. */
async function smokeTest(session: LoadedSession, c: ModelConfig, tok: Tokenizer): Promise<void> {
  const ids = [tok.bosId, ...tok.encode('a')];
  const S = ids.length;
  const feeds: Record<string, Tensor> = {
    [POLICY_INPUTS.inputIds]: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, S]),
    [POLICY_INPUTS.attentionMask]: new Tensor('int64', new BigInt64Array(S).fill(1n), [1, S]),
    [POLICY_INPUTS.positionIds]: new Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, S]),
  };
  for (let l = 0; l < c.nLayer; l++) {
    feeds[pastKeyName(l)] = new Tensor('float32', new Float32Array(0), [1, c.nHead, 0, headDim(c)]);
    feeds[pastValueName(l)] = new Tensor('float32', new Float32Array(0), [1, c.nHead, 0, headDim(c)]);
  }
  const out = await session.run(feeds);
  const logits = out[POLICY_OUTPUTS.logits];
  const positions = out[stepKeyName(c.nLayer - 1)] ? [S, 1] : [S];
  if (!logits || !positions.some((p) => logits.dims.join() === [1, p, c.vocabSize].join())) {
    throw new Error(`logits dims ${logits?.dims} (expected 1,${positions.join(' or ')},${c.vocabSize})`);
  }
  const data = logits.data as Float32Array;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) throw new Error('logits are not finite');
  // With no past, a step graph's step.{i}.* (the runtime may serve one: step-graph.ts) equals present.{i}.*.
  const present = out[presentKeyName(c.nLayer - 1)] ?? out[stepKeyName(c.nLayer - 1)];
  if (!present || present.dims.join() !== [1, c.nHead, S, headDim(c)].join()) throw new Error(`present dims ${present?.dims}`);
}
