// POST /v1/generations over real HTTP on a real SQLite file with a real (random-weight) ONNX policy:
// storage, seeded determinism, streaming == non-streaming, validation errors, no live policy.
import { eq } from 'drizzle-orm';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../api/server';
import { generations, policies } from '../../shared/schema';
import { client, makeFixture, parseSse, type Fixture } from './helpers';

let fx: Fixture;
let server: RunningServer;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  fx = await makeFixture();
  server = await fx.start();
  api = client(server);
});
afterAll(async () => {
  await server?.close();
  fx?.cleanup();
});

const req = { prompt: 'The weather today is', max_tokens: 24, temperature: 0.8, top_p: 0.9, top_k: 40, seed: 42 };

describe('POST /v1/generations', () => {
  it('bootstraps version 1 from the base model, returns n outputs and stores each with its parameters', async () => {
    const r = await api.post('/v1/generations', { ...req, n: 2 });
    expect(r.status).toBe(200);
    expect(r.json.policy_version).toBe(1);
    expect(r.json.seed).toBe(42);
    expect(r.json.generations).toHaveLength(2);
    const [a, b] = r.json.generations;
    expect(a.id).toMatch(/^gen_/);
    expect(a.text).not.toBe(b.text);
    expect(r.json.usage.total_tokens).toBe(r.json.prompt_tokens + a.completion_tokens + b.completion_tokens);
    const rows = await server.db.select().from(generations).where(eq(generations.requestId, r.json.request_id));
    expect(rows).toHaveLength(2);
    const row = rows.find((x) => x.id === a.id)!;
    expect(row).toMatchObject({ projectId: server.defaultProjectId, policyVersion: 1, prompt: req.prompt, output: a.text, finishReason: a.finish_reason, completionTokens: a.completion_tokens, promptTokens: r.json.prompt_tokens });
    expect(row.params).toMatchObject({ temperature: 0.8, top_p: 0.9, top_k: 40, max_tokens: 24, seed: 42, n: 2, stop: [] });
    const [v1] = await server.db.select().from(policies).where(eq(policies.projectId, server.defaultProjectId));
    expect(v1).toMatchObject({ version: 1, artifactUri: 'base://', status: 'live', sha256: fx.base.sha256 });
  });

  it('same seed + same policy = same text; another seed, another text; no seed still returns the one used', async () => {
    const a = await api.post('/v1/generations', req);
    const b = await api.post('/v1/generations', req);
    const c = await api.post('/v1/generations', { ...req, seed: 43 });
    expect(b.json.generations[0].text).toBe(a.json.generations[0].text);
    expect(c.json.generations[0].text).not.toBe(a.json.generations[0].text);
    const d = await api.post('/v1/generations', { ...req, seed: undefined });
    expect(Number.isSafeInteger(d.json.seed)).toBe(true);
    const e = await api.post('/v1/generations', { ...req, seed: d.json.seed });
    expect(e.json.generations[0].text).toBe(d.json.generations[0].text);
  });

  it('the first output of n = 3 equals the n = 1 output for the same seed, even under concurrent load', async () => {
    const single = await api.post('/v1/generations', req);
    const [triple] = await Promise.all([
      api.post('/v1/generations', { ...req, n: 3 }),
      ...Array.from({ length: 6 }, (_, i) => api.post('/v1/generations', { ...req, prompt: `noise ${i}`, seed: i })),
    ]);
    expect(triple.json.generations[0].text).toBe(single.json.generations[0].text);
  });

  it('streams SSE deltas whose concatenation equals the non-streamed text, then stores the outputs', async () => {
    const plain = await api.post('/v1/generations', { ...req, n: 2 });
    const streamed = await api.post('/v1/generations', { ...req, n: 2, stream: true });
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events = parseSse(streamed.text);
    expect(events[0].event).toBe('start');
    const start = JSON.parse(events[0].data);
    const texts = ['', ''];
    for (const e of events.filter((x) => x.event === 'delta')) {
      const d = JSON.parse(e.data);
      expect(d.generation_id).toBe(start.generation_ids[d.index]);
      texts[d.index] += d.text;
    }
    const done = JSON.parse(events.at(-1)!.data);
    expect(events.at(-1)!.event).toBe('done');
    expect(texts).toEqual(plain.json.generations.map((g: { text: string }) => g.text));
    expect(done.generations.map((g: { text: string }) => g.text)).toEqual(texts);
    expect(done.generations.map((g: { id: string }) => g.id)).toEqual(start.generation_ids);
    const rows = await server.db.select().from(generations).where(eq(generations.requestId, done.request_id));
    expect(rows.map((r) => r.output).sort()).toEqual([...texts].sort());
  });

  it('stop strings end outputs (excluded); max_tokens gives finish_reason length', async () => {
    const full = await api.post('/v1/generations', { ...req, max_tokens: 40, temperature: 0 });
    const text: string = full.json.generations[0].text;
    expect(full.json.generations[0].finish_reason).toBe('length');
    expect(full.json.generations[0].completion_tokens).toBe(40);
    const stop = [...text.slice(8)].find((ch) => ch.trim() && ch !== '\uFFFD')!;
    const cut = await api.post('/v1/generations', { ...req, max_tokens: 40, temperature: 0, stop: [stop, 'never-appears'] });
    expect(cut.json.generations[0].finish_reason).toBe('stop');
    expect(cut.json.generations[0].text).toBe(text.slice(0, text.indexOf(stop)));
  });

  it('feedback can reference a returned generation id', async () => {
    const g = await api.post('/v1/generations', req);
    const fb = await api.post('/v1/feedback', { type: 'thumbs', value: 'up', generation_id: g.json.generations[0].id });
    expect(fb.status).toBeLessThan(300);
  });

  it('bad input is a 400 naming the field; nothing is stored', async () => {
    const before = (await server.db.select().from(generations)).length;
    const cases: [Record<string, unknown>, string][] = [
      [{ ...req, n: 9 }, 'n'],
      [{ ...req, n: 0 }, 'n'],
      [{ ...req, temperature: -0.1 }, 'temperature'],
      [{ ...req, temperature: 2.5 }, 'temperature'],
      [{ ...req, top_p: 0 }, 'top_p'],
      [{ ...req, top_k: -1 }, 'top_k'],
      [{ ...req, max_tokens: 0 }, 'max_tokens'],
      [{ ...req, seed: 1.5 }, 'seed'],
      [{ ...req, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ ...req, prompt: 'x'.repeat(500) }, 'prompt'], // 501 tokens with BOS; context 128
      [{ ...req, prompt: undefined }, 'prompt'],
      [{ ...req, bogus: 1 }, ''],
    ];
    for (const [body, field] of cases) {
      const r = await api.post('/v1/generations', body);
      expect(r.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(r.json.error.message).toContain(field);
      if (field) expect(r.json.error.details.map((d: { path: string }) => d.path)).toContain(field);
    }
    expect((await server.db.select().from(generations)).length).toBe(before);
  });

  it('no live policy: 503 no_live_policy', async () => {
    const emptyBase = join(fx.dir, 'no-base');
    mkdirSync(emptyBase);
    const other = await fx.start({ dbPath: join(fx.dir, 'other.db'), baseModelDir: emptyBase });
    try {
      const r = await client(other).post('/v1/generations', req);
      expect(r.status).toBe(503);
      expect(r.json.error.code).toBe('no_live_policy');
      expect((await client(other).get('/v1/policies/live')).json.error.code).toBe('no_live_policy');
    } finally {
      await other.close();
    }
  });
});
