// exportArtifacts writes a complete artifact directory whose files agree with each other: the weights
// round-trip exactly, the graphs' metadata names the written config and tokenizer, and the graphs run.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../shared/model-config';
import { readPrefloopMetadata } from '../../shared/onnx-metadata';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { exportArtifacts } from '../../worker/export';
import { createSession, runPolicy } from '../../worker/onnx/policy-session';
import { readSafetensors } from '../../worker/safetensors';
import { randomIds, randomWeights, referenceRewards, TINY_CONFIG as c } from './reference-gpt';

const TOKENIZER = JSON.stringify({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } });

describe('exportArtifacts', () => {
  it('writes policy + reward graphs, weights, config and tokenizer that agree with each other', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prefloop-export-'));
    const weights = { ...randomWeights(c, 8, ['value']), ...randomWeights(c, 9, ['score']) };
    const res = await exportArtifacts(weights, c, TOKENIZER, dir);
    expect(res.kinds).toEqual(['policy', 'reward']);
    expect(readdirSync(dir).sort()).toEqual(
      [ARTIFACT_FILES.config, ARTIFACT_FILES.tokenizer, ARTIFACT_FILES.weights, ARTIFACT_FILES.policyOnnx, ARTIFACT_FILES.rewardOnnx].sort(),
    );
    const st = readSafetensors(readFileSync(join(dir, ARTIFACT_FILES.weights)));
    expect(Object.keys(st.tensors).sort()).toEqual(Object.keys(weights).sort());
    for (const [k, t] of Object.entries(weights)) expect(st.tensors[k].data).toEqual(t.data);
    expect(parseModelConfig(JSON.parse(readFileSync(join(dir, ARTIFACT_FILES.config), 'utf8')))).toEqual(c);
    expect(readFileSync(join(dir, ARTIFACT_FILES.tokenizer), 'utf8')).toBe(TOKENIZER);

    const tokSha = createHash('sha256').update(TOKENIZER).digest('hex');
    for (const [file, kind] of [[ARTIFACT_FILES.policyOnnx, 'policy'], [ARTIFACT_FILES.rewardOnnx, 'reward']] as const) {
      const bytes = readFileSync(join(dir, file));
      expect(readPrefloopMetadata(bytes)).toEqual({ kind, config: c, tokenizerSha256: tokSha, version: res.version });
      expect(res.files[file].sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    // The reward graph scores with the score head of these weights.
    const rows = randomIds(2, [10], c.vocabSize);
    const rm = await createSession(join(dir, ARTIFACT_FILES.rewardOnnx));
    const out = await rm.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(rows[0].map(BigInt)), [1, 10]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(10).fill(1n), [1, 10]),
    });
    expect(Math.abs((out.rewards.data as Float32Array)[0] - referenceRewards(weights, c, rows)[0])).toBeLessThanOrEqual(1e-4);
  });

  it('exports a base LM without heads as a policy whose values are zero', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prefloop-export-'));
    const res = await exportArtifacts(randomWeights(c, 10, []), c, TOKENIZER, dir, { version: 'base-1' });
    expect(res).toMatchObject({ kinds: ['policy'], valueHead: 'zero', version: 'base-1' });
    const s = await createSession(join(dir, ARTIFACT_FILES.policyOnnx));
    const out = await runPolicy(s, c, { ids: [[1, 2, 3]], mask: [[1, 1, 1]], positions: [[0, 1, 2]] });
    expect(Array.from(out.values.data as Float32Array)).toEqual([0, 0, 0]);
  });

  it('refuses weights with a wrong shape or a missing tensor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'prefloop-export-'));
    const w = randomWeights(c, 11, ['value']);
    const bad = { ...w, 'h.1.attn.c_attn.weight': { ...w['h.1.attn.c_attn.weight'], shape: [3 * c.dModel, c.dModel] } };
    await expect(exportArtifacts(bad, c, TOKENIZER, dir)).rejects.toThrow(/h\.1\.attn\.c_attn\.weight.*shape/);
    const { ['ln_f.bias']: _, ...missing } = w;
    await expect(exportArtifacts(missing, c, TOKENIZER, dir)).rejects.toThrow(/missing weight "ln_f.bias"/);
    await expect(exportArtifacts(w, c, TOKENIZER, dir, { kinds: ['reward'] })).rejects.toThrow(/score/);
  });
});
