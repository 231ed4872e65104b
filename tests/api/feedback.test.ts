// POST /v1/feedback, POST /v1/feedback/batch and GET /v1/feedback over real HTTP against a real database file.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestServer, startTestServer } from './helpers';

let s: TestServer;
let defaultProject: string;
beforeAll(async () => {
  s = await startTestServer();
  defaultProject = s.defaultProjectId;
});
afterAll(() => s.stop());

describe('POST /v1/feedback', () => {
  it('stores each event type on inline text and returns the record (201)', async () => {
    const events = [
      { type: 'thumbs', value: 'up', prompt: 'p1', response: 'r1', comment: 'nice', user_id: 'u1', metadata: { app: 'x', n: 1 } },
      { type: 'score', name: 'helpfulness', value: 0.75, prompt: 'p1', response: 'r1' },
      { type: 'comparison', prompt: 'p1', chosen: 'good', rejected: 'bad' },
      { type: 'correction', prompt: 'p1', response: 'bad', correction: 'better' },
    ];
    for (const e of events) {
      const res = await s.call('/v1/feedback', { method: 'POST', json: e });
      expect(res.status).toBe(201);
      const rec = await res.json();
      expect(rec.id).toMatch(/^fb_/);
      expect(rec.type).toBe(e.type);
      expect(rec.prompt).toBe('p1');
      expect(Date.parse(rec.created_at)).toBeGreaterThan(0);
    }
    const list = await (await s.call('/v1/feedback?limit=10')).json();
    const [thumbs, score, comparison, correction] = list.data.slice(-4);
    expect(thumbs).toMatchObject({ value: 'up', comment: 'nice', user_id: 'u1', metadata: { app: 'x', n: 1 }, response: 'r1' });
    expect(score).toMatchObject({ name: 'helpfulness', value: 0.75 });
    expect(comparison).toMatchObject({ response: 'good', rejected: 'bad' });
    expect(correction).toMatchObject({ response: 'bad', correction: 'better' });
  });

  it('resolves generation ids to their prompt and output, including both sides of a comparison', async () => {
    const g1 = await s.generation(defaultProject, 'Tell a joke', 'Why did the chicken...');
    const g2 = await s.generation(defaultProject, 'Tell a joke', 'Knock knock.');
    const thumbs = await (await s.call('/v1/feedback', { method: 'POST', json: { type: 'thumbs', value: 'down', generation_id: g1 } })).json();
    expect(thumbs).toMatchObject({ generation_id: g1, prompt: 'Tell a joke', response: 'Why did the chicken...', value: 'down' });
    const cmp = await s.call('/v1/feedback', { method: 'POST', json: { type: 'comparison', chosen_generation_id: g2, rejected_generation_id: g1 } });
    expect(cmp.status).toBe(201);
    expect(await cmp.json()).toMatchObject({ generation_id: g2, rejected_generation_id: g1, prompt: 'Tell a joke', response: 'Knock knock.', rejected: 'Why did the chicken...' });
    const corr = await s.call('/v1/feedback', { method: 'POST', json: { type: 'correction', generation_id: g1, correction: 'A better joke.' } });
    expect(await corr.json()).toMatchObject({ response: 'Why did the chicken...', correction: 'A better joke.' });
  });

  it('answers 404 generation_not_found for an unknown generation id, storing nothing', async () => {
    const before = await s.count('feedback');
    const res = await s.call('/v1/feedback', { method: 'POST', json: { type: 'thumbs', value: 'up', generation_id: 'gen_nope' } });
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('generation_not_found');
    expect(await s.count('feedback')).toBe(before);
  });

  it('refuses a comparison of generations answering different prompts (400)', async () => {
    const a = await s.generation(defaultProject, 'prompt A', 'x');
    const b = await s.generation(defaultProject, 'prompt B', 'y');
    const res = await s.call('/v1/feedback', { method: 'POST', json: { type: 'comparison', chosen_generation_id: a, rejected_generation_id: b } });
    expect(res.status).toBe(400);
    expect((await res.json()).error.code).toBe('prompt_mismatch');
  });

  it('is idempotent on the client id: same body replays (200), another body is 409, key order does not matter', async () => {
    const event = { id: 'client-evt-1', type: 'thumbs', value: 'up', prompt: 'idem', response: 'r', metadata: { a: 1, b: 2 } };
    const first = await s.call('/v1/feedback', { method: 'POST', json: event });
    expect(first.status).toBe(201);
    const stored = await first.json();
    const before = await s.count('feedback');
    const reordered = { metadata: { b: 2, a: 1 }, response: 'r', prompt: 'idem', value: 'up', type: 'thumbs', id: 'client-evt-1' };
    const replay = await s.call('/v1/feedback', { method: 'POST', json: reordered });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toEqual(stored);
    const conflict = await s.call('/v1/feedback', { method: 'POST', json: { ...event, value: 'down' } });
    expect(conflict.status).toBe(409);
    expect((await conflict.json()).error.code).toBe('idempotency_conflict');
    expect(await s.count('feedback')).toBe(before);
  });

  it('answers 409 to a request that names the id the server chose for an earlier event, and stores nothing', async () => {
    const event = { type: 'thumbs', value: 'up', prompt: 'server-id', response: 'r' };
    const first = await s.call('/v1/feedback', { method: 'POST', json: event });
    expect(first.status).toBe(201);
    const { id } = await first.json();
    const before = await s.count('feedback');
    for (const body of [{ ...event, id }, { ...event, id, value: 'down' }]) {
      const res = await s.call('/v1/feedback', { method: 'POST', json: body });
      expect(res.status).toBe(409);
      expect((await res.json()).error.code).toBe('idempotency_conflict');
    }
    expect(await s.count('feedback')).toBe(before);
  });

  it('settles concurrent retries of one id into exactly one row', async () => {
    const event = { id: 'concurrent-1', type: 'score', name: 'q', value: 3, prompt: 'c', response: 'r' };
    const statuses = await Promise.all(Array.from({ length: 20 }, () => s.call('/v1/feedback', { method: 'POST', json: event }).then((r) => r.status)));
    expect(statuses.filter((x) => x === 201)).toHaveLength(1);
    expect(statuses.filter((x) => x === 200)).toHaveLength(19);
    const all = await (await s.call('/v1/feedback?limit=1000&type=score')).json();
    expect(all.data.filter((r: { id: string }) => r.id === 'concurrent-1')).toHaveLength(1);
  });

  it('names the offending field on 400', async () => {
    const cases: Array<[unknown, string]> = [
      [{ type: 'thumbs', value: 'sideways', prompt: 'p', response: 'r' }, 'value'],
      [{ type: 'thumbs', value: 'up', prompt: 'p' }, 'response'],
      [{ type: 'thumbs', value: 'up', generation_id: 'g', prompt: 'p', response: 'r' }, 'prompt'],
      [{ type: 'score', value: 1, prompt: 'p', response: 'r' }, 'name'],
      [{ type: 'comparison', prompt: 'p', chosen: 'a' }, 'rejected'],
      [{ type: 'correction', prompt: 'p', response: 'r' }, 'correction'],
      [{ type: 'rating', value: 1 }, 'type'],
      [{ type: 'thumbs', value: 'up', prompt: 'p', response: 'r', surprise: 1 }, ''],
      [{ type: 'thumbs', value: 'up', prompt: 'p', response: 'r', id: 'has space' }, 'id'],
    ];
    for (const [body, field] of cases) {
      const res = await s.call('/v1/feedback', { method: 'POST', json: body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      const err = (await res.json()).error;
      expect(err.code).toBe('validation_failed');
      expect(Array.isArray(err.details)).toBe(true);
      if (field) expect(err.details.map((d: { path: string }) => d.path)).toContain(field);
      if (field) expect(err.message.startsWith(field)).toBe(true);
    }
  });
});

describe('POST /v1/feedback/batch', () => {
  it('validates each event alone and answers 207 with a result per item', async () => {
    const gen = await s.generation(defaultProject, 'batch prompt', 'batch output');
    await s.call('/v1/feedback', { method: 'POST', json: { id: 'batch-existing', type: 'thumbs', value: 'up', prompt: 'b', response: 'r' } });
    const before = await s.count('feedback');
    const events = [
      { type: 'thumbs', value: 'up', prompt: 'b', response: 'r0' }, // 201
      { type: 'thumbs', value: 'meh', prompt: 'b', response: 'r1' }, // 400
      { type: 'thumbs', value: 'down', generation_id: 'gen_missing' }, // 404
      { id: 'batch-existing', type: 'thumbs', value: 'up', prompt: 'b', response: 'r' }, // 200 replay
      { id: 'batch-existing', type: 'thumbs', value: 'down', prompt: 'b', response: 'r' }, // 409
      { type: 'correction', generation_id: gen, correction: 'fixed' }, // 201
      'not an object', // 400
      { id: 'dup-in-batch', type: 'score', name: 'n', value: 1, prompt: 'b', response: 'r' }, // 201
      { id: 'dup-in-batch', type: 'score', name: 'n', value: 1, prompt: 'b', response: 'r' }, // 200 (same body)
    ];
    const res = await s.call('/v1/feedback/batch', { method: 'POST', json: { events } });
    expect(res.status).toBe(207);
    const body = await res.json();
    expect(body.results.map((r: { status: number }) => r.status)).toEqual([201, 400, 404, 200, 409, 201, 400, 201, 200]);
    expect(body.results.map((r: { index: number }) => r.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(body.results[1].error.details[0].path).toBe('events.1.value');
    expect(body.results[2].error.code).toBe('generation_not_found');
    expect(body.results[4].error.code).toBe('idempotency_conflict');
    expect(body).toMatchObject({ created: 3, replayed: 2, failed: 4 });
    expect(await s.count('feedback')).toBe(before + 3);
  });

  it('takes 1,000 events and refuses 1,001 or none (400 naming events)', async () => {
    const ev = (i: number) => ({ type: 'thumbs', value: i % 2 ? 'up' : 'down', prompt: `bulk ${i % 7}`, response: `r${i}` });
    const before = await s.count('feedback');
    const ok = await s.call('/v1/feedback/batch', { method: 'POST', json: { events: Array.from({ length: 1000 }, (_, i) => ev(i)) } });
    expect(ok.status).toBe(207);
    expect((await ok.json()).created).toBe(1000);
    expect(await s.count('feedback')).toBe(before + 1000);
    for (const events of [Array.from({ length: 1001 }, (_, i) => ev(i)), []]) {
      const res = await s.call('/v1/feedback/batch', { method: 'POST', json: { events } });
      expect(res.status).toBe(400);
      expect((await res.json()).error.details[0].path).toBe('events');
    }
    expect(await s.count('feedback')).toBe(before + 1000);
  });

  it('keeps every acknowledged event when batches and singles race', async () => {
    const before = await s.count('feedback');
    const reqs = [];
    for (let i = 0; i < 30; i++) {
      reqs.push(s.call('/v1/feedback', { method: 'POST', json: { type: 'thumbs', value: 'up', prompt: 'race', response: `s${i}` } }));
      reqs.push(s.call('/v1/feedback/batch', { method: 'POST', json: { events: Array.from({ length: 10 }, (_, j) => ({ type: 'thumbs', value: 'down', prompt: 'race', response: `b${i}-${j}` })) } }));
    }
    const res = await Promise.all(reqs);
    expect(res.map((r) => r.status).sort()).toEqual([...Array(30).fill(201), ...Array(30).fill(207)].sort());
    expect(await s.count('feedback')).toBe(before + 30 + 300);
  });
});

describe('GET /v1/feedback', () => {
  it('walks every event exactly once with the cursor, and filters by type and time', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Response = await s.call(`/v1/feedback?limit=97${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      const page = await res.json();
      seen.push(...page.data.map((r: { id: string }) => r.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor);
    expect(seen.length).toBe(await s.count('feedback'));
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil(seen.length / 97));

    const comparisons = await (await s.call('/v1/feedback?type=comparison&limit=1000')).json();
    expect(comparisons.data.length).toBeGreaterThan(0);
    expect(comparisons.data.every((r: { type: string }) => r.type === 'comparison')).toBe(true);

    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect((await (await s.call(`/v1/feedback?since=${encodeURIComponent(future)}`)).json()).data).toEqual([]);
    expect((await (await s.call(`/v1/feedback?until=0`)).json()).data).toEqual([]);
    const all = await (await s.call(`/v1/feedback?since=0&until=${Date.now() + 1000}&limit=5`)).json();
    expect(all.data).toHaveLength(5);
  });

  it('rejects a bad cursor, limit or time with 400', async () => {
    for (const q of ['cursor=garbage', 'limit=0', 'limit=1001', 'since=yesterday', 'type=stars']) {
      const res = await s.call(`/v1/feedback?${q}`);
      expect(res.status, q).toBe(400);
    }
  });
});
