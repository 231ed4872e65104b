// GET /v1/datasets/preferences (both formats, parsed back line by line, streamed across many DB pages),
// GET /v1/stats, GET /health, /openapi.json and /docs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitOf } from '../../shared/preference-pairs';
import { type TestServer, jsonLines, startTestServer } from './helpers';

let now = Date.parse('2026-11-20T12:00:00Z');
let s: TestServer;
let project: { id: string; admin: string; ingest: string };
beforeAll(async () => {
  // Small export pages so the stream crosses many page boundaries, including inside one prompt's group.
  s = await startTestServer({ clock: () => now, settings: { exportPageSize: 3 } });
  project = await s.project('datasets');
});
afterAll(() => s.stop());

const post = (events: unknown[]) => s.call('/v1/feedback/batch', { method: 'POST', key: project.ingest, json: { events } });

describe('GET /v1/datasets/preferences', () => {
  it('derives pairs as METHOD.md says and streams them in TRL and OpenAI formats', async () => {
    const gA = await s.generation(project.id, 'Q1', 'gen answer A');
    const gB = await s.generation(project.id, 'Q1', 'gen answer B');
    const res = await post([
      { type: 'comparison', chosen_generation_id: gA, rejected_generation_id: gB }, // Q1: A > B
      { type: 'comparison', prompt: 'Q1', chosen: 'gen answer A', rejected: 'gen answer B' }, // duplicate vote
      { type: 'correction', prompt: 'Q2', response: 'draft', correction: 'final' }, // Q2: final > draft
      { type: 'thumbs', value: 'up', prompt: 'Q3', response: 'good' },
      { type: 'thumbs', value: 'down', prompt: 'Q3', response: 'bad' }, // Q3: good > bad
      { type: 'thumbs', value: 'up', prompt: 'Q4', response: 'lonely' }, // no pair
      { type: 'comparison', prompt: 'Q5', chosen: 'x', rejected: 'y' },
      { type: 'comparison', prompt: 'Q5', chosen: 'y', rejected: 'x' }, // Q5: tie, dropped
      { type: 'score', name: 'q', value: 1, prompt: 'Q6', response: 'z' }, // no pair
    ]);
    expect((await res.json()).created).toBe(9);

    const trl = await s.call('/v1/datasets/preferences', { key: project.admin });
    expect(trl.status).toBe(200);
    expect(trl.headers.get('content-type')).toMatch(/application\/x-ndjson/);
    const lines = await jsonLines(trl);
    expect(lines).toEqual([
      { prompt: 'Q1', chosen: 'gen answer A', rejected: 'gen answer B' },
      { prompt: 'Q2', chosen: 'final', rejected: 'draft' },
      { prompt: 'Q3', chosen: 'good', rejected: 'bad' },
    ]);

    const openai = await jsonLines(await s.call('/v1/datasets/preferences?format=openai', { key: project.admin }));
    expect(openai).toHaveLength(3);
    expect(openai[1]).toEqual({
      input: { messages: [{ role: 'user', content: 'Q2' }] },
      preferred_output: [{ role: 'assistant', content: 'final' }],
      non_preferred_output: [{ role: 'assistant', content: 'draft' }],
    });
  });

  it('streams a dataset many pages long and splits it by the stable prompt hash', async () => {
    const events = [];
    for (let i = 0; i < 300; i++) events.push({ type: 'comparison', prompt: `bulk prompt ${i}`, chosen: `good ${i}`, rejected: `bad ${i}` });
    await post(events);
    const all = (await jsonLines(await s.call('/v1/datasets/preferences', { key: project.admin }))) as Array<{ prompt: string }>;
    expect(all).toHaveLength(303);
    const prompts = all.map((l) => l.prompt);
    expect(new Set(prompts).size).toBe(303);
    const train = (await jsonLines(await s.call('/v1/datasets/preferences?split=train', { key: project.admin }))) as Array<{ prompt: string }>;
    const held = (await jsonLines(await s.call('/v1/datasets/preferences?split=heldout', { key: project.admin }))) as Array<{ prompt: string }>;
    expect(train.length + held.length).toBe(303);
    expect(held.length).toBeGreaterThan(0);
    expect(held.every((l) => splitOf(l.prompt) === 'heldout')).toBe(true);
    expect(train.every((l) => splitOf(l.prompt) === 'train')).toBe(true);
  });

  it('rejects an unknown format with 400', async () => {
    const res = await s.call('/v1/datasets/preferences?format=csv', { key: project.admin });
    expect(res.status).toBe(400);
    expect((await res.json()).error.details[0].path).toBe('format');
  });
});

describe('GET /v1/stats', () => {
  it('counts by type, total and over the last 24 h of the app clock', async () => {
    const p = await s.project('stats');
    const ev = (type: string) =>
      type === 'thumbs'
        ? { type, value: 'up', prompt: 'p', response: 'r' }
        : type === 'score'
          ? { type, name: 'n', value: 1, prompt: 'p', response: 'r' }
          : { type: 'comparison', prompt: 'p', chosen: 'a', rejected: 'b' };
    await s.call('/v1/feedback/batch', { method: 'POST', key: p.ingest, json: { events: [ev('thumbs'), ev('thumbs'), ev('score')] } });
    now += 25 * 3600 * 1000; // a day later
    await s.call('/v1/feedback/batch', { method: 'POST', key: p.ingest, json: { events: [ev('thumbs'), ev('comparison')] } });
    const stats = await (await s.call('/v1/stats', { key: p.admin })).json();
    expect(stats).toEqual({
      project_id: p.id,
      total: 5,
      last_24h: 2,
      by_type: {
        thumbs: { total: 3, last_24h: 1 },
        score: { total: 1, last_24h: 0 },
        comparison: { total: 1, last_24h: 1 },
        correction: { total: 0, last_24h: 0 },
      },
    });
  });
});

describe('meta routes', () => {
  it('serves /health without auth', async () => {
    const res = await s.call('/health', { key: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('serves an OpenAPI 3.1 document generated from the zod schemas, and a docs page', async () => {
    const doc = await (await s.call('/openapi.json', { key: null })).json();
    expect(doc.openapi).toBe('3.1.0');
    for (const path of ['/v1/feedback', '/v1/feedback/batch', '/v1/datasets/preferences', '/v1/stats', '/health']) expect(doc.paths[path], path).toBeDefined();
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['FeedbackEvent', 'ThumbsEvent', 'ComparisonEvent', 'FeedbackRecord', 'Error']));
    expect(doc.paths['/v1/feedback'].post.responses['409']).toBeDefined();
    expect(doc.components.securitySchemes.bearerAuth.scheme).toBe('bearer');
    const docs = await s.call('/docs', { key: null });
    expect(docs.status).toBe(200);
    expect(await docs.text()).toContain('/openapi.json');
  });
});
