// The training-run and training-config routes over real HTTP on a real SQLite file (no worker: runs stay
// queued). Auth, idempotent enqueue (one active run per project), 404s, tenant isolation, config validation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../api/helpers';

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s?.stop();
});

const json = async (r: Response) => ({ status: r.status, body: (await r.json()) as any });

describe('training runs API', () => {
  it('needs a key, and the admin scope to queue', async () => {
    const p = await s.project('runs-auth');
    expect((await s.call('/v1/training-runs', { method: 'POST', key: null, json: {} })).status).toBe(401);
    const r = await json(await s.call('/v1/training-runs', { method: 'POST', key: p.ingest, json: {} }));
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe('forbidden');
    // Reading is allowed with ingest.
    expect((await s.call('/v1/training-runs', { key: p.ingest })).status).toBe(200);
  });

  it('queues one run per project: a second POST returns the active run', async () => {
    const p = await s.project('runs-idem');
    const a = await json(await s.call('/v1/training-runs', { method: 'POST', key: p.admin, json: {} }));
    expect(a.status).toBe(201);
    expect(a.body.created).toBe(true);
    expect(a.body.run).toMatchObject({ status: 'queued', trigger: 'manual', progress: 0, attempts: 0 });
    expect(a.body.run.config.ppo.clipRange).toBe(0.2); // resolved defaults stored on the run
    const b = await json(await s.call('/v1/training-runs', { method: 'POST', key: p.admin, json: {} }));
    expect(b.status).toBe(200);
    expect(b.body.created).toBe(false);
    expect(b.body.run.id).toBe(a.body.run.id);
    // Exactly one job was queued for it.
    const jobs = await s.db.all<{ n: number }>(`SELECT count(*) AS n FROM jobs WHERE queue = 'training' AND dedupe_key = '${a.body.run.id}'` as never);
    expect(Number(jobs[0].n)).toBe(1);

    const list = await json(await s.call('/v1/training-runs', { key: p.admin }));
    expect(list.body.runs.map((r: any) => r.id)).toEqual([a.body.run.id]);
    const one = await json(await s.call(`/v1/training-runs/${a.body.run.id}`, { key: p.admin }));
    expect(one.status).toBe(200);
    expect(one.body.run).toMatchObject({ id: a.body.run.id, status: 'queued', stage: null, eta_s: null, history: {} });
  });

  it('404 for an unknown run and for another project\'s run', async () => {
    const p = await s.project('runs-404-a');
    const q = await s.project('runs-404-b');
    const a = await json(await s.call('/v1/training-runs', { method: 'POST', key: p.admin, json: {} }));
    const miss = await json(await s.call('/v1/training-runs/run_nope', { key: p.admin }));
    expect(miss.status).toBe(404);
    expect(miss.body.error.code).toBe('run_not_found');
    expect((await s.call(`/v1/training-runs/${a.body.run.id}`, { key: q.admin })).status).toBe(404);
    expect((await json(await s.call('/v1/training-runs', { key: q.admin }))).body.runs).toEqual([]);
  });

  it('validates the training config and names the bad field', async () => {
    const p = await s.project('runs-config');
    const bad = await json(await s.call('/v1/config/training', { method: 'PUT', key: p.admin, json: { ppo: { klTarget: -1 } } }));
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_training_config');
    expect(bad.body.error.message).toMatch(/^ppo\.klTarget: /);
    expect(bad.body.error.details[0].path).toBe('ppo.klTarget');

    const typo = await json(await s.call('/v1/config/training', { method: 'PUT', key: p.admin, json: { ppo: { kltarget: 3 } } }));
    expect(typo.status).toBe(400);
    expect(JSON.stringify(typo.body.error)).toContain('kltarget');

    const ref = await json(await s.call('/v1/config/training', { method: 'PUT', key: p.admin, json: { ppo: { rolloutBatchSize: 10, miniBatchSize: 4 } } }));
    expect(ref.status).toBe(400);
    expect(ref.body.error.message).toMatch(/^ppo\.miniBatchSize: /);

    expect((await s.call('/v1/config/training', { method: 'PUT', key: p.ingest, json: {} })).status).toBe(403);

    const ok = await json(await s.call('/v1/config/training', { method: 'PUT', key: p.admin, json: { ppo: { klTarget: 3 }, run: { klBudget: 8 } } }));
    expect(ok.status).toBe(200);
    expect(ok.body.resolved.ppo.klTarget).toBe(3);
    expect(ok.body.resolved.ppo.clipRange).toBe(0.2);
    const got = await json(await s.call('/v1/config/training', { key: p.ingest }));
    expect(got.body.overrides).toEqual({ ppo: { klTarget: 3 }, run: { klBudget: 8 } });

    // A one-off override on the POST is validated too, and merged over the project's config.
    const badRun = await json(await s.call('/v1/training-runs', { method: 'POST', key: p.admin, json: { config: { run: { klBudget: 0 } } } }));
    expect(badRun.status).toBe(400);
    expect(badRun.body.error.message).toMatch(/^config\.run\.klBudget: /);
    const run = await json(await s.call('/v1/training-runs', { method: 'POST', key: p.admin, json: { config: { run: { maxWallS: 60 } } } }));
    expect(run.status).toBe(201);
    expect(run.body.run.config.ppo.klTarget).toBe(3);
    expect(run.body.run.config.run).toMatchObject({ klBudget: 8, maxWallS: 60 });
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await (await s.call('/openapi.json', { key: null })).json()) as any;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/training-runs', '/v1/training-runs/{id}', '/v1/config/training']));
  });
});
