// Auth, scopes, tenant isolation and every error status, over real HTTP. A rejected request must change nothing.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeKey } from '../../api/keys';
import { apiKeys } from '../../shared/schema';
import { type TestServer, startTestServer } from './helpers';

const thumbs = (prompt = 'p', response = 'r') => ({ type: 'thumbs', value: 'up', prompt, response });

describe('auth, scopes and tenant isolation', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ settings: { authCacheTtlMs: 0 } });
  });
  afterAll(() => s.stop());

  it('answers 401 without a key, with a malformed header, or with an unknown key', async () => {
    for (const key of [null, 'pfk_unknown_key_0000000000000000']) {
      const res = await s.call('/v1/stats', { key });
      expect(res.status).toBe(401);
      expect((await res.json()).error.code).toMatch(/unauthorized|invalid_api_key/);
    }
    const res = await s.call('/v1/stats', { key: null, headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    expect(res.status).toBe(401);
  });

  it('stores keys only as SHA-256 hashes', async () => {
    const p = await s.project('hash-check');
    const rows = await s.db.select().from(apiKeys).where(eq(apiKeys.projectId, p.id));
    expect(rows).toHaveLength(2);
    for (const r of rows) {
      expect(r.keyHash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(r)).not.toContain(p.admin);
      expect(JSON.stringify(r)).not.toContain(p.ingest);
    }
  });

  it('lets an ingest key write feedback but not read (403), and an admin key do both', async () => {
    const p = await s.project('scopes');
    expect((await s.call('/v1/feedback', { method: 'POST', key: p.ingest, json: thumbs() })).status).toBe(201);
    expect((await s.call('/v1/feedback/batch', { method: 'POST', key: p.ingest, json: { events: [thumbs()] } })).status).toBe(207);
    for (const path of ['/v1/feedback', '/v1/stats', '/v1/datasets/preferences']) {
      const res = await s.call(path, { key: p.ingest });
      expect(res.status, path).toBe(403);
      expect((await res.json()).error.code).toBe('forbidden');
      expect((await s.call(path, { key: p.admin })).status).toBe(200);
    }
  });

  it('stops accepting a revoked key (cache TTL 0 here)', async () => {
    const p = await s.project('revoke');
    expect((await s.call('/v1/stats', { key: p.admin })).status).toBe(200);
    const adminRow = (await s.db.select().from(apiKeys).where(eq(apiKeys.projectId, p.id))).find((r) => r.scopes.includes('admin'))!;
    expect(await revokeKey(s.db, adminRow.id, Date.now())).toBe(true);
    expect((await s.call('/v1/stats', { key: p.admin })).status).toBe(401);
  });

  it('never shows one project another project’s data', async () => {
    const a = await s.project('tenant-a');
    const b = await s.project('tenant-b');
    const genA = await s.generation(a.id, 'A prompt', 'A output');
    await s.call('/v1/feedback', { method: 'POST', key: a.ingest, json: { id: 'shared-id', type: 'comparison', prompt: 'secret A', chosen: 'x', rejected: 'y' } });
    // B cannot rate A's generation: it does not exist for B.
    const cross = await s.call('/v1/feedback', { method: 'POST', key: b.ingest, json: { type: 'thumbs', value: 'up', generation_id: genA } });
    expect(cross.status).toBe(404);
    expect((await cross.json()).error.code).toBe('generation_not_found');
    // The same client id in B is B's own event, not a conflict with A's.
    const same = await s.call('/v1/feedback', { method: 'POST', key: b.ingest, json: { id: 'shared-id', type: 'thumbs', value: 'down', prompt: 'B', response: 'b' } });
    expect(same.status).toBe(201);
    const listB = await (await s.call('/v1/feedback?limit=1000', { key: b.admin })).json();
    expect(listB.data.map((r: { prompt: string }) => r.prompt)).toEqual(['B']);
    const statsB = await (await s.call('/v1/stats', { key: b.admin })).json();
    expect(statsB).toMatchObject({ project_id: b.id, total: 1 });
    const exportB = await (await s.call('/v1/datasets/preferences', { key: b.admin })).text();
    expect(exportB).not.toContain('secret A');
    const exportA = await (await s.call('/v1/datasets/preferences', { key: a.admin })).text();
    expect(exportA).toContain('secret A');
  });
});

describe('error statuses', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ settings: { bodyLimitBytes: 4096 } });
  });
  afterAll(() => s.stop());

  /** Every rejected request below must leave these counts unchanged. */
  async function counts() {
    return { feedback: await s.count('feedback'), projects: await s.count('projects'), keys: await s.count('api_keys') };
  }

  it('413 for a body over the configured limit, storing nothing', async () => {
    const before = await counts();
    const big = await s.call('/v1/feedback', { method: 'POST', json: thumbs('p', 'x'.repeat(5000)) });
    expect(big.status).toBe(413);
    expect((await big.json()).error.code).toBe('payload_too_large');
    // A chunked body (no Content-Length) is cut off at the limit as well.
    const chunks = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(JSON.stringify(thumbs('p', 'y'.repeat(8000)))));
        c.close();
      },
    });
    const chunked = await fetch(`${s.url}/v1/feedback`, {
      method: 'POST',
      headers: { authorization: `Bearer ${(await import('./helpers')).ADMIN_KEY}`, 'content-type': 'application/json' },
      body: chunks,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await counts()).toEqual(before);
  });

  it('415 for a non-JSON body, 400 for malformed JSON, storing nothing', async () => {
    const before = await counts();
    const form = await s.call('/v1/feedback', { method: 'POST', body: 'type=thumbs', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect((await form.json()).error.code).toBe('unsupported_media_type');
    const none = await s.call('/v1/feedback/batch', { method: 'POST', body: '{"events":[]}', headers: { 'content-type': 'text/plain' } });
    expect(none.status).toBe(415);
    const bad = await s.call('/v1/feedback', { method: 'POST', body: '{"type": "thumbs",', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toMatchObject({ code: 'invalid_json' });
    expect(await counts()).toEqual(before);
  });

  it('404 in the error shape for an unknown route', async () => {
    for (const path of ['/v1/nothing-here', '/nope']) {
      const res = await s.call(path);
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('not_found');
    }
  });

  it('400/404/409 leave the database as it was', async () => {
    await s.call('/v1/feedback', { method: 'POST', json: { id: 'fixed', ...thumbs() } });
    const before = await counts();
    expect((await s.call('/v1/feedback', { method: 'POST', json: { type: 'thumbs' } })).status).toBe(400);
    expect((await s.call('/v1/feedback', { method: 'POST', json: { type: 'thumbs', value: 'up', generation_id: 'gen_x' } })).status).toBe(404);
    expect((await s.call('/v1/feedback', { method: 'POST', json: { id: 'fixed', ...thumbs('other') } })).status).toBe(409);
    expect((await s.call('/v1/feedback/batch', { method: 'POST', json: { events: 'nope' } })).status).toBe(400);
    expect(await counts()).toEqual(before);
  });
});

describe('rate limit', () => {
  let now = 1_000_000;
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ clock: () => now, settings: { rateLimit: { requestsPerSecond: 2, burst: 3 } } });
  });
  afterAll(() => s.stop());

  it('answers 429 with Retry-After once a key spends its bucket, per key, and refills with time', async () => {
    const other = await s.project('other');
    for (let i = 0; i < 3; i++) expect((await s.call('/v1/stats')).status).toBe(200);
    const before = await s.count('feedback');
    const limited = await s.call('/v1/feedback', { method: 'POST', json: thumbs() });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect((await limited.json()).error.code).toBe('rate_limited');
    expect(await s.count('feedback')).toBe(before);
    // Another key has its own bucket.
    expect((await s.call('/v1/stats', { key: other.admin })).status).toBe(200);
    // /health is never limited.
    expect((await s.call('/health', { key: null })).status).toBe(200);
    now += 500; // refills one token at 2/s
    expect((await s.call('/v1/stats')).status).toBe(200);
    expect((await s.call('/v1/stats')).status).toBe(429);
  });
});
