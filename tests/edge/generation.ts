// Generation at the edge: onnxruntime-web (wasm) inside workerd serving a policy read from R2, against the same
// artifacts served by the Node deployment (onnxruntime-node): greedy outputs must agree token for token. Then
// the policy routes on D1 + R2: activate a trained version from s3:// (= the R2 bucket), roll back, refuse a
// broken artifact while the live one keeps serving. Imported by edge.test.ts (one workerd for the file).
import { rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeServingPorts } from '../../api/adapters/node-serving';
import { startServer, type RunningServer } from '../../api/server';
import { writeRandomPolicy, type RandomPolicy } from '../../bench/random-policy';
import type { TestServer } from '../api/helpers';
import { insertPolicy } from '../serving/helpers';
import { ADMIN_KEY, startEdgeTestServer, uploadDir, type EdgeRuntime } from './harness';

const BUCKET = 'prefloop-artifacts';

export function generationSuite(edgeRuntime: () => EdgeRuntime): void {
  describe('generation at the edge (onnxruntime-web in workerd, artifacts in R2)', () => {
    let dir: string;
    let base: RandomPolicy;
    let v2: RandomPolicy;
    let s: TestServer;
    let node: RunningServer;
    const greedy = { prompt: 'Tell me a story about', max_tokens: 24, temperature: 0 };
    const post = (server: { url: string }, path: string, body: unknown) =>
      fetch(server.url + path, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });

    beforeAll(async () => {
      const edge = edgeRuntime();
      dir = mkdtempSync(join(tmpdir(), 'prefloop-edge-gen-'));
      base = await writeRandomPolicy(join(dir, 'base'), 1);
      v2 = await writeRandomPolicy(join(dir, 'v2'), 2);
      await uploadDir(edge, base.dir, 'base/'); // base:// at the edge
      await uploadDir(edge, v2.dir, 'policies/v2/');
      s = await startEdgeTestServer(edge);
      node = await startServer({
        dbPath: join(dir, 'node.db'),
        port: 0,
        apiKey: ADMIN_KEY,
        ports: nodeServingPorts({ artifactsDir: join(dir, 'artifacts'), baseModelDir: base.dir, poll: false, log: () => undefined }),
      });
    }, 120_000);
    afterAll(async () => {
      await node?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('bootstraps version 1 from base:// in R2 and generates the same greedy text as onnxruntime-node', async () => {
      const res = await post(s, '/v1/generations', greedy);
      expect(res.status).toBe(200);
      const edgeOut = await res.json();
      expect(edgeOut.policy_version).toBe(1);
      expect(edgeOut.generations[0].completion_tokens).toBeGreaterThan(0);
      const nodeOut = await (await post(node, '/v1/generations', greedy)).json();
      expect(edgeOut.generations[0].text).toBe(nodeOut.generations[0].text);
      expect(edgeOut.generations[0].completion_tokens).toBe(nodeOut.generations[0].completion_tokens);
      // Stored in D1 like any generation: feedback can point at it.
      const fb = await s.call('/v1/feedback', { method: 'POST', json: { type: 'thumbs', value: 'up', generation_id: edgeOut.generations[0].id } });
      expect(fb.status).toBe(201);
      // Same seed, same policy, sampled: same text again (and n outputs batch together).
      const sampled = { prompt: 'Once', max_tokens: 12, temperature: 0.8, seed: 42, n: 3 };
      const a = await (await post(s, '/v1/generations', sampled)).json();
      const b = await (await post(s, '/v1/generations', sampled)).json();
      expect(a.generations.map((g: { text: string }) => g.text)).toEqual(b.generations.map((g: { text: string }) => g.text));
      expect(a.generations).toHaveLength(3);
    });

    it('activates a trained version from s3:// (the R2 bucket), rolls back, and refuses a broken artifact', async () => {
      const project = s.defaultProjectId;
      await insertPolicy(s.db, { projectId: project, version: 2, uri: `s3://${BUCKET}/policies/v2`, sha256: v2.sha256 });
      await insertPolicy(s.db, { projectId: project, version: 3, uri: `s3://${BUCKET}/policies/v2`, sha256: '0'.repeat(64) });
      const before = await (await post(s, '/v1/generations', greedy)).json();

      const act = await post(s, '/v1/policies/2/activate', {});
      expect(act.status).toBe(200);
      expect((await act.json()).previous_version).toBe(1);
      const live = await (await s.call('/v1/policies/live')).json();
      expect(live.policy.version).toBe(2);
      const after = await (await post(s, '/v1/generations', greedy)).json();
      expect(after.policy_version).toBe(2);
      expect(after.generations[0].text).not.toBe(before.generations[0].text);

      const broken = await post(s, '/v1/policies/3/activate', {});
      expect(broken.status).toBe(409);
      expect((await broken.json()).error.code).toBe('policy_load_failed');
      expect((await (await post(s, '/v1/generations', greedy)).json()).policy_version).toBe(2);

      expect((await post(s, '/v1/policies/1/activate', {})).status).toBe(200); // rollback
      const back = await (await post(s, '/v1/generations', greedy)).json();
      expect(back.policy_version).toBe(1);
      expect(back.generations[0].text).toBe(before.generations[0].text);
      const list = await (await s.call('/v1/policies')).json();
      expect(list.policies.map((p: { version: number; status: string }) => [p.version, p.status])).toEqual([
        [3, 'candidate'],
        [2, 'retired'],
        [1, 'live'],
      ]);
    });
  });
}
