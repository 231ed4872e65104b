// The official `openai` npm client — a real client this project did not write — against prefloop's
// OpenAI-compatible endpoints: completions (n, seed, stop, streaming with [DONE] and usage), models, errors.
import OpenAI from 'openai';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../api/server';
import { generations } from '../../shared/schema';
import { ADMIN_KEY, makeFixture, type Fixture } from './helpers';

let fx: Fixture;
let server: RunningServer;
let openai: OpenAI;

beforeAll(async () => {
  fx = await makeFixture();
  server = await fx.start();
  openai = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: ADMIN_KEY, maxRetries: 0 });
});
afterAll(async () => {
  await server?.close();
  fx?.cleanup();
});

type Choice = { text: string; finish_reason: string | null; index: number; generation_id?: string };

describe('openai client against /v1/completions', () => {
  it('completes with n and seed; every choice carries a stored generation id', async () => {
    const r = await openai.completions.create({ model: 'live', prompt: 'Once upon a time', max_tokens: 20, n: 2, seed: 11, temperature: 0.9, top_p: 0.95 });
    expect(r.object).toBe('text_completion');
    expect(r.model).toBe('v1');
    expect(r.choices).toHaveLength(2);
    expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + r.usage!.completion_tokens);
    for (const c of r.choices as Choice[]) {
      expect(['stop', 'length']).toContain(c.finish_reason);
      const [row] = await server.db.select().from(generations).where(eq(generations.id, c.generation_id!));
      expect(row.output).toBe(c.text);
      expect(row.policyVersion).toBe(1);
    }
    const again = await openai.completions.create({ model: 'v1', prompt: 'Once upon a time', max_tokens: 20, n: 2, seed: 11, temperature: 0.9, top_p: 0.95 });
    expect(again.choices.map((c) => c.text)).toEqual(r.choices.map((c) => c.text));
  });

  it('streams chunks that concatenate to the non-streamed text, with finish reasons, usage and [DONE]', async () => {
    const params = { model: '1', prompt: 'The best way to learn is', max_tokens: 24, n: 2, seed: 5, temperature: 1 } as const;
    const plain = await openai.completions.create(params);
    const stream = await openai.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
    const texts = ['', ''];
    const finish: (string | null)[] = [null, null];
    const ids: (string | undefined)[] = [undefined, undefined];
    let usage: OpenAI.Completions.CompletionUsage | undefined;
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices as Choice[]) {
        texts[c.index] += c.text;
        if (c.finish_reason) finish[c.index] = c.finish_reason;
        ids[c.index] ??= c.generation_id;
      }
    }
    expect(texts).toEqual(plain.choices.map((c) => c.text));
    expect(finish).toEqual(plain.choices.map((c) => c.finish_reason));
    expect(usage?.completion_tokens).toBe(plain.usage?.completion_tokens);
    for (const id of ids) expect((await server.db.select().from(generations).where(eq(generations.id, id!))).length).toBe(1);
  });

  it('raw stream ends with data: [DONE]', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'live', prompt: 'Hi', max_tokens: 4, stream: true, seed: 1 }),
    });
    const text = await res.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  it('stop strings behave as OpenAI documents (stop before, excluded)', async () => {
    const base = { model: 'live', prompt: 'Numbers:', max_tokens: 30, temperature: 0, seed: 1 } as const;
    const full = (await openai.completions.create(base)).choices[0].text;
    const stop = [...full.slice(6)].find((ch) => ch.trim() && ch !== '\uFFFD')!;
    const cut = await openai.completions.create({ ...base, stop: [stop] });
    expect(cut.choices[0].text).toBe(full.slice(0, full.indexOf(stop)));
    expect(cut.choices[0].finish_reason).toBe('stop');
  });

  it('lists and retrieves models', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    expect(ids).toEqual(['live', 'v1']);
    expect((await openai.models.retrieve('v1')).id).toBe('v1');
  });

  it('errors come back as API errors with the right status', async () => {
    const bad = async (p: Record<string, unknown>) => {
      try {
        await openai.completions.create({ model: 'live', prompt: 'x', ...p } as never);
        return null;
      } catch (e) {
        return e as InstanceType<typeof OpenAI.APIError>;
      }
    };
    const nErr = await bad({ n: 9 });
    expect(nErr?.status).toBe(400);
    expect(nErr?.message).toContain('n');
    expect((await bad({ temperature: 3 }))?.status).toBe(400);
    expect((await bad({ prompt: 'y'.repeat(300) }))?.message).toContain('prompt');
    expect((await bad({ model: 'v42' }))?.status).toBe(404);
    expect((await bad({ model: 'gpt-4' }))?.status).toBe(400);
    const unauth = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'pfk_wrong_key_000000000000000', maxRetries: 0 });
    await expect(unauth.completions.create({ model: 'live', prompt: 'x' })).rejects.toMatchObject({ status: 401 });
  });
});
