// The bundled base model (models/base, trained by the model issue) served end to end, once it exists: version 1
// is bootstrapped from base:// with the file's sha256, and a seeded generation is reproducible and readable.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARTIFACT_FILES } from '../../shared/policy-io';
import { client, makeFixture } from './helpers';

const baseDir = join(import.meta.dirname, '../../models/base');
const present = [ARTIFACT_FILES.policyOnnx, ARTIFACT_FILES.config, ARTIFACT_FILES.tokenizer].every((f) => existsSync(join(baseDir, f)));

describe.skipIf(!present)('models/base served through the API', () => {
  it('bootstraps v1 from base://, generates reproducibly, and the text decodes cleanly', async () => {
    const fx = await makeFixture();
    const server = await fx.start({ baseModelDir: baseDir });
    try {
      const api = client(server);
      const body = { prompt: 'The', max_tokens: 32, temperature: 0.8, top_p: 0.95, seed: 3, n: 2 };
      const a = await api.post('/v1/generations', body);
      expect(a.status).toBe(200);
      expect(a.json.policy_version).toBe(1);
      const b = await api.post('/v1/generations', body);
      expect(b.json.generations.map((g: { text: string }) => g.text)).toEqual(a.json.generations.map((g: { text: string }) => g.text));
      const live = await api.get('/v1/policies/live');
      expect(live.json.policy.sha256).toBe(createHash('sha256').update(readFileSync(join(baseDir, ARTIFACT_FILES.policyOnnx))).digest('hex'));
      expect(a.json.generations[0].text.length).toBeGreaterThan(0);
    } finally {
      await server.close();
      fx.cleanup();
    }
  });
});
