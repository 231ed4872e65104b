// A policy artifact directory (config.json, tokenizer.json, policy.onnx) with random weights, for tests and
// for the serving benchmark when models/base has not been trained yet. Built through the real exporter
// (worker/onnx), so it runs exactly the graph a trained policy runs; only the numbers are random.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { parseModelConfig, type ModelConfig } from '../shared/model-config';
import { ARTIFACT_FILES } from '../shared/policy-io';
import { Tokenizer } from '../shared/tokenizer';
import { buildPolicyOnnx } from '../worker/onnx/export-policy';
import { backboneShapes, headShapes } from '../worker/onnx/weights';
import type { SafeTensors } from '../worker/safetensors';

/** Small enough for tests (a few ms per request), big enough to have several layers and heads. */
export const TINY_POLICY_CONFIG: ModelConfig = { vocabSize: Tokenizer.byteLevel().vocabSize, contextLength: 128, nLayer: 2, nHead: 4, dModel: 32, mlpRatio: 4, layerNormEps: 1e-5 };

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** GPT-2-named random weights (value head included). Larger than GPT-2's init so the logits are not flat. */
export function randomPolicyWeights(c: ModelConfig, seed: number): SafeTensors {
  const r = mulberry32(seed);
  const shapes: Record<string, number[]> = { ...backboneShapes(c), ...headShapes(c, 'value') };
  const out: SafeTensors = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    const ln = /ln_\d\.weight$|ln_f\.weight$/.test(name);
    const scale = name.endsWith('.bias') ? 0.1 : /wte|wpe/.test(name) ? 0.5 : ln ? 0.2 : 1 / Math.sqrt(shape[0]);
    for (let i = 0; i < n; i++) data[i] = (ln ? 1 : 0) + (r() * 2 - 1) * scale * Math.sqrt(3);
    out[name] = { dtype: 'F32', shape, data };
  }
  return out;
}

export interface RandomPolicy {
  dir: string;
  config: ModelConfig;
  /** sha256 (hex) of policy.onnx, as the policies table records it. */
  sha256: string;
}

/**
 * A BPE tokenizer with exactly `vocabSize` ids: the byte-level base plus synthetic merges (letter pairs, then
 * longer runs), so a random model of a bigger config never samples an id the tokenizer cannot decode.
 */
export function syntheticTokenizer(vocabSize: number): Tokenizer {
  const byteVocab = Tokenizer.byteLevel().vocabSize;
  if (vocabSize < byteVocab) throw new Error(`vocabSize must be at least ${byteVocab} (byte-level tokenizer)`);
  const letter = (i: number) => 3 + 97 + (i % 26);
  const merges: [number, number][] = [];
  for (let i = 0; merges.length < vocabSize - byteVocab; i++) {
    if (i < 26 * 26) merges.push([letter(i), letter(Math.floor(i / 26))]);
    else merges.push([byteVocab + (i - 26 * 26), 3 + 32]); // "<pair> " runs
  }
  return new Tokenizer(merges);
}

/** Writes a random policy artifact directory; a different seed gives a policy with different outputs. */
export async function writeRandomPolicy(dir: string, seed: number, config: ModelConfig = TINY_POLICY_CONFIG): Promise<RandomPolicy> {
  const c = parseModelConfig(config);
  const tokenizerJson = JSON.stringify(syntheticTokenizer(c.vocabSize).toJSON());
  const tokenizerSha256 = createHash('sha256').update(tokenizerJson).digest('hex');
  const onnx = buildPolicyOnnx(randomPolicyWeights(c, seed), c, { tokenizerSha256, version: `random-${seed}` });
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, ARTIFACT_FILES.config), `${JSON.stringify(c, null, 2)}\n`);
  await writeFile(join(dir, ARTIFACT_FILES.tokenizer), tokenizerJson);
  await writeFile(join(dir, ARTIFACT_FILES.policyOnnx), onnx);
  return { dir, config: c, sha256: createHash('sha256').update(onnx).digest('hex') };
}
