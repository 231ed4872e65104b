// The committed base model (models/base/) is loaded and run once: its policy.onnx must carry metadata that
// matches its config.json and tokenizer.json, and give the same logits as TF.js on model.safetensors for a
// real sentence. Skips, saying so, until the pretraining run has committed models/base/.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../shared/model-config';
import { readPrefloopMetadata } from '../../shared/onnx-metadata';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { Tokenizer } from '../../shared/tokenizer';
import { ensureBackend } from '../../worker/backend';
import { GPT } from '../../worker/model/gpt';
import { createSession, generate, runPolicy } from '../../worker/onnx/policy-session';
import { readSafetensors } from '../../worker/safetensors';
import { maxAbsDiff } from './reference-gpt';

const dir = join(import.meta.dirname, '..', '..', 'models', 'base');
const present = [ARTIFACT_FILES.config, ARTIFACT_FILES.tokenizer, ARTIFACT_FILES.weights, ARTIFACT_FILES.policyOnnx].every((f) => existsSync(join(dir, f)));
if (!present) console.warn('skipping base-model parity: models/base/ (config, tokenizer, safetensors, policy.onnx) is not committed yet');

describe.skipIf(!present)('models/base', () => {
  it('policy.onnx matches its config, tokenizer and TF.js on its safetensors', async () => {
    const config = parseModelConfig(JSON.parse(readFileSync(join(dir, ARTIFACT_FILES.config), 'utf8')));
    const tokenizerText = readFileSync(join(dir, ARTIFACT_FILES.tokenizer), 'utf8');
    const onnx = readFileSync(join(dir, ARTIFACT_FILES.policyOnnx));
    const meta = readPrefloopMetadata(onnx);
    expect(meta.kind).toBe('policy');
    expect(meta.config).toEqual(config);
    expect(meta.tokenizerSha256).toBe(createHash('sha256').update(tokenizerText).digest('hex'));

    const tok = Tokenizer.fromJSON(tokenizerText);
    const ids = tok.encode('The jury said it did find that many of the registration practices were').slice(0, config.contextLength);
    const session = await createSession(onnx);
    const o = await runPolicy(session, config, { ids: [ids], mask: [ids.map(() => 1)], positions: [ids.map((_, j) => j)] });

    await ensureBackend({ log: () => {} });
    const { tensors } = readSafetensors(readFileSync(join(dir, ARTIFACT_FILES.weights)));
    const model = new GPT(config, { heads: { value: 'v_head.weight' in tensors, reward: false } });
    model.loadWeights(tensors, { strict: false });
    const t = model.forward([ids]);
    expect(maxAbsDiff(o.logits.data as Float32Array, t.logits.dataSync() as Float32Array)).toBeLessThanOrEqual(1e-4);
    tf.dispose([t.logits, t.hidden, ...(t.values ? [t.values] : [])]);
    model.dispose();

    // And it generates text that decodes (a smoke run of the KV-cached loop on the real model).
    const out = await generate(session, config, [ids.slice(0, 8)], { maxNewTokens: 16, useCache: true });
    expect(typeof tok.decode(out[0])).toBe('string');
    expect(out[0]).toHaveLength(16);
  });
});
