// Policy lifecycle over real HTTP with real ONNX files: hot swap under concurrent load with zero failed
// requests, rollback, refusal of broken artifacts (the old policy keeps serving), and two API instances on
// one database file converging on the live version within the poll interval.
import { and, eq } from 'drizzle-orm';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addKey } from '../../api/keys';
import type { RunningServer } from '../../api/server';
import { policies } from '../../shared/schema';
import { client, insertPolicy, makeFixture, type Fixture } from './helpers';

let fx: Fixture;
let a: RunningServer;
let b: RunningServer;
let api: ReturnType<typeof client>;
let apiB: ReturnType<typeof client>;
let project: string;
/** Instance B's log, to tell its poll delay apart from its load time. */
const bLog: { event: string; fields: Record<string, unknown>; at: number }[] = [];

const req = { prompt: 'Tell me a story about', max_tokens: 16, temperature: 0.7, seed: 7 };

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const value = await fn();
    if (ok(value)) return { value, ms: Date.now() - t0 };
    if (Date.now() - t0 > timeoutMs) throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  fx = await makeFixture();
  a = await fx.start();
  b = await fx.start({ log: (event, fields) => bLog.push({ event, fields, at: Date.now() }) }); // a second API instance on the same database file
  api = client(a);
  apiB = client(b);
  project = a.defaultProjectId;
  // Version 1 (base) is bootstrapped by the first request; versions 2 and 3 are trained candidates.
  expect((await api.post('/v1/generations', req)).json.policy_version).toBe(1);
  for (const [v, seed] of [[2, 2], [3, 3]] as const) {
    const art = await fx.addPolicyArtifact(`v${v}`, seed);
    await insertPolicy(a.db, { projectId: project, version: v, uri: art.uri, sha256: art.sha256 });
  }
});
afterAll(async () => {
  await a?.close();
  await b?.close();
  fx?.cleanup();
});

const statusOf = async (v: number) => (await a.db.select().from(policies).where(and(eq(policies.projectId, project), eq(policies.version, v))))[0]?.status;

describe('policies', () => {
  it('lists policies and the live one; activation needs the admin scope', async () => {
    const list = await api.get('/v1/policies');
    expect(list.status).toBe(200);
    expect(list.json.policies.map((p: { version: number; status: string }) => [p.version, p.status])).toEqual([[3, 'candidate'], [2, 'candidate'], [1, 'live']]);
    const live = await api.get('/v1/policies/live');
    expect(live.json.policy.version).toBe(1);
    expect(live.json.serving_version).toBe(1);
    const ingest = await addKey(a.db, { projectId: project, name: 'ingest only', scopes: ['ingest'], now: Date.now() });
    expect((await client(a, ingest.key).post('/v1/policies/2/activate')).status).toBe(403);
    expect((await api.post('/v1/policies/99/activate')).json.error.code).toBe('policy_not_found');
  });

  it('hot swap under concurrent requests: zero failures, in-flight requests finish, new ones use the new version', async () => {
    const before = await api.post('/v1/generations', req);
    let stop = false;
    const results: { status: number; version?: number }[] = [];
    const workers = Array.from({ length: 12 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const r = await (w % 2 ? api : apiB).post('/v1/generations', { ...req, seed: w * 1000 + i, stream: i % 3 === 0 });
        const version = r.json?.policy_version ?? (r.text.includes('"policy_version":2') ? 2 : r.text.includes('"policy_version":1') ? 1 : undefined);
        results.push({ status: r.status, version });
      }
    });
    await new Promise((r) => setTimeout(r, 300));
    const act = await api.post('/v1/policies/2/activate');
    expect(act.status).toBe(200);
    expect(act.json).toMatchObject({ policy: { version: 2, status: 'live' }, previous_version: 1 });
    await new Promise((r) => setTimeout(r, 600)); // > poll interval (150 ms): instance B swaps too
    stop = true;
    await Promise.all(workers);
    expect(results.length).toBeGreaterThan(20);
    expect(results.filter((r) => r.status !== 200)).toEqual([]);
    expect(new Set(results.map((r) => r.version))).toEqual(new Set([1, 2]));
    const after = await api.post('/v1/generations', req);
    expect(after.json.policy_version).toBe(2);
    expect(after.json.generations[0].text).not.toBe(before.json.generations[0].text);
    expect(await statusOf(1)).toBe('retired');
    expect(await statusOf(2)).toBe('live');
  });

  it('a second instance on the same database converges within the poll interval', async () => {
    const act = await api.post('/v1/policies/3/activate');
    expect(act.status).toBe(200);
    const activatedAt = Date.now();
    await waitFor(() => apiB.get('/v1/policies/live'), (r) => r.json.serving_version === 3, 10_000);
    // Convergence = B's poll delay + B's load (hash, session, smoke pass). The load's length depends on how
    // busy the machine is (other test files share its 2 cores), so the bound is on when B *started* loading:
    // within one poll interval (150 ms) of the activation, with slack for event-loop lag.
    const loaded = bLog.find((l) => l.event === 'policy_loaded' && l.fields.version === 3);
    expect(loaded).toBeDefined();
    const loadStartedAfter = loaded!.at - Number(loaded!.fields.ms) - activatedAt;
    expect(loadStartedAfter).toBeLessThan(150 + 250);
    expect((await apiB.post('/v1/generations', req)).json.policy_version).toBe(3);
  });

  it('rollback: activating an older version serves it again with identical output', async () => {
    const v1Output = (await api.post('/v1/generations', { ...req, policy_version: 'v1' })).json.generations[0].text;
    const r = await api.post('/v1/policies/1/activate');
    expect(r.status).toBe(200);
    expect(r.json.previous_version).toBe(3);
    expect(await statusOf(1)).toBe('live');
    expect(await statusOf(3)).toBe('retired');
    const g = await api.post('/v1/generations', req);
    expect(g.json.policy_version).toBe(1);
    expect(g.json.generations[0].text).toBe(v1Output);
    await waitFor(() => apiB.get('/v1/policies/live'), (x) => x.json.serving_version === 1, 5_000);
  });

  it('broken artifacts are refused and the old policy keeps serving (activation and a direct DB flip)', async () => {
    // v4: a corrupt ONNX file whose recorded sha256 matches (passes the hash, fails the runtime).
    const corrupt = await fx.addPolicyArtifact('v4', 4);
    const garbage = new TextEncoder().encode('this is not an onnx model');
    writeFileSync(join(corrupt.dir, 'policy.onnx'), garbage);
    const garbageSha = Buffer.from(await crypto.subtle.digest('SHA-256', garbage)).toString('hex');
    await insertPolicy(a.db, { projectId: project, version: 4, uri: corrupt.uri, sha256: garbageSha });
    // v5: a valid model whose bytes do not match the recorded sha256 (tampered or half-copied).
    const tampered = await fx.addPolicyArtifact('v5', 5);
    await insertPolicy(a.db, { projectId: project, version: 5, uri: tampered.uri, sha256: '0'.repeat(64) });
    // v6: missing artifact.
    await insertPolicy(a.db, { projectId: project, version: 6, uri: 'file://policies/nowhere', sha256: '1'.repeat(64) });

    for (const [v, why] of [[4, 'session'], [5, 'sha256'], [6, 'fetch']] as const) {
      const r = await api.post(`/v1/policies/${v}/activate`);
      expect(r.status).toBe(409);
      expect(r.json.error.code).toBe('policy_load_failed');
      expect(r.json.error.message).toContain(why);
      expect(await statusOf(v)).toBe('candidate');
      expect(await statusOf(1)).toBe('live');
      expect((await api.post('/v1/generations', req)).json.policy_version).toBe(1);
    }

    // The worker (or an operator) flips the database directly: both instances refuse and keep v1.
    await a.db.batch([
      a.db.update(policies).set({ status: 'retired' }).where(and(eq(policies.projectId, project), eq(policies.version, 1))),
      a.db.update(policies).set({ status: 'live', activatedAt: Date.now() }).where(and(eq(policies.projectId, project), eq(policies.version, 4))),
    ]);
    await new Promise((r) => setTimeout(r, 500));
    for (const c of [api, apiB]) {
      const g = await c.post('/v1/generations', req);
      expect(g.status).toBe(200);
      expect(g.json.policy_version).toBe(1);
      const live = await c.get('/v1/policies/live');
      expect(live.json.policy.version).toBe(4); // what the database says
      expect(live.json.serving_version).toBe(1); // what this instance still serves
    }
    // Recovery: activating a good version works as usual.
    expect((await api.post('/v1/policies/2/activate')).status).toBe(200);
    await waitFor(() => apiB.post('/v1/generations', req), (r) => r.json.policy_version === 2, 5_000);
  });
});
