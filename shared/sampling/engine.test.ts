// The batching loop against ReferenceSession, a pure-JS session that checks the ONNX contract and whose logits
// depend on every attended token: batched output must equal solo output exactly.
import { describe, expect, it } from 'vitest';
import type { ModelConfig } from '../model-config';
import { Tokenizer } from '../tokenizer';
import { GenerationEngine, type GenerateRequest } from './engine';
import { SessionLane, type DecodeLane, type PolicySession } from './lane';
import { ReferenceSession } from './reference-session';

const tok = Tokenizer.byteLevel();
const config: ModelConfig = { vocabSize: tok.vocabSize, contextLength: 48, nLayer: 2, nHead: 2, dModel: 8, mlpRatio: 4, layerNormEps: 1e-5 };
const base: GenerateRequest = { prompt: 'Once upon a time', maxTokens: 12, temperature: 1, seed: 7 };

// Both kinds of session: the contract graph (present = whole cache) and the step graph (new tokens only).
describe.each([{ stepOutputs: false }, { stepOutputs: true }])('GenerationEngine (step graph: $stepOutputs)', ({ stepOutputs }) => {
  const session = (extra: Partial<ConstructorParameters<typeof ReferenceSession>[0]> = {}) =>
    new ReferenceSession({ vocabSize: tok.vocabSize, nLayer: 2, nHead: 2, headDim: 4, stepOutputs, ...extra });
  const engine = (s = session(), maxBatchRows?: number) => new GenerationEngine(s, { config, tokenizer: tok, maxBatchRows });

  it('uses the step outputs exactly when the session has them', () => {
    expect(engine().usesStepGraph).toBe(stepOutputs);
  });

  it('same seed gives the same output; another seed another output', async () => {
    const a = await engine().generate(base);
    const b = await engine().generate(base);
    const c = await engine().generate({ ...base, seed: 8 });
    expect(a.sequences[0].tokenIds).toHaveLength(12);
    expect(b.sequences[0].tokenIds).toEqual(a.sequences[0].tokenIds);
    expect(c.sequences[0].tokenIds).not.toEqual(a.sequences[0].tokenIds);
    expect(a.sequences[0].finishReason).toBe('length');
    expect(a.promptIds[0]).toBe(tok.bosId);
    expect(a.sequences[0].logprobs.every((x) => x <= 0 && Number.isFinite(x))).toBe(true);
    expect(a.sequences[0].values).toHaveLength(12);
  });

  it('n sequences run in one batch and each equals its own solo run; concurrent requests do not change outputs', async () => {
    const solo = await engine().generate({ ...base, n: 3 });
    expect(new Set(solo.sequences.map((s) => s.text)).size).toBeGreaterThan(1);
    const s = session({ delayMs: 1 });
    const e = engine(s);
    const prompts = ['Once upon a time', 'A', 'The quick brown fox jumps', 'Zebra'];
    const together = await Promise.all(prompts.map((prompt, i) => e.generate({ ...base, prompt, n: i === 0 ? 3 : 2, maxTokens: 8 + i * 3 })));
    for (let i = 0; i < prompts.length; i++) {
      const alone = await engine().generate({ ...base, prompt: prompts[i], n: i === 0 ? 3 : 2, maxTokens: 8 + i * 3 });
      expect(together[i].sequences.map((q) => q.tokenIds)).toEqual(alone.sequences.map((q) => q.tokenIds));
      expect(together[i].sequences.map((q) => q.logprobs)).toEqual(alone.sequences.map((q) => q.logprobs));
    }
    expect(together[0].sequences.map((q) => q.tokenIds)).toEqual(solo.sequences.map((q) => q.tokenIds).map((t) => t.slice(0, 8)));
    expect(Math.max(...s.batchSizes)).toBe(9); // all 9 sequences shared decode steps
    expect(e.stats.rowSteps / e.stats.steps).toBeGreaterThan(3);
  });

  it('requests arriving mid-generation join the running batch at a step boundary', async () => {
    const s = session({ delayMs: 2 });
    const e = engine(s);
    const first = e.generate({ ...base, maxTokens: 30 });
    await new Promise((r) => setTimeout(r, 15));
    const second = e.generate({ ...base, prompt: 'late arrival', seed: 3, maxTokens: 10 });
    const [a, b] = await Promise.all([first, second]);
    expect(s.batchSizes.filter((n) => n === 2).length).toBeGreaterThan(0);
    expect(a.sequences[0].tokenIds).toEqual((await engine().generate({ ...base, maxTokens: 30 })).sequences[0].tokenIds);
    expect(b.sequences[0].tokenIds).toEqual((await engine().generate({ ...base, prompt: 'late arrival', seed: 3, maxTokens: 10 })).sequences[0].tokenIds);
    expect(e.stats.rebuilds).toBeGreaterThanOrEqual(3); // first joins, second joins, second leaves
  });

  it('keeps one cache: the past fed is the longest row rounded up to 16 columns, not one more column per step', async () => {
    const s = session();
    const r = await engine(s).generate(base); // 17 prompt tokens with BOS, 12 generated: rows of 17..28 tokens
    expect(r.promptIds).toHaveLength(17);
    expect(s.pastLengths[0]).toBe(0); // prefill
    expect(new Set(s.pastLengths.slice(1))).toEqual(new Set([32]));
  });

  it('respects maxBatchRows: extra requests wait and still finish', async () => {
    const s = session();
    const e = engine(s, 4);
    const out = await Promise.all(Array.from({ length: 6 }, (_, i) => e.generate({ ...base, seed: i, n: 2, maxTokens: 5 })));
    expect(out.every((r) => r.sequences.length === 2)).toBe(true);
    expect(Math.max(...s.batchSizes)).toBeLessThanOrEqual(4);
  });

  it('greedy decoding is the argmax path and ignores the seed', async () => {
    const a = await engine().generate({ ...base, temperature: 0, seed: 1 });
    const b = await engine().generate({ ...base, temperature: 0, seed: 2 });
    expect(a.sequences[0].tokenIds).toEqual(b.sequences[0].tokenIds);
  });

  it('EOS ends a sequence with finish reason stop; EOS is counted but not in the text', async () => {
    const prompt = 'Hi';
    const r = await engine(session({ eosId: tok.eosId, eosAfter: 6 })).generate({ ...base, prompt, maxTokens: 20 });
    const seq = r.sequences[0];
    expect(seq.finishReason).toBe('stop');
    expect(seq.tokenIds.at(-1)).toBe(tok.eosId);
    expect(seq.tokenIds).toHaveLength(6 - r.promptIds.length + 1);
    expect(seq.text).toBe(tok.decode(seq.tokenIds));
  });

  it('stop strings end the sequence, are excluded, and streaming deltas equal the final text', async () => {
    const full = (await engine().generate({ ...base, maxTokens: 20 })).sequences[0];
    const text = full.text.replace(/\uFFFD/g, '');
    const stop = text.slice(5, 7);
    expect(stop.length).toBe(2);
    const deltas: string[] = [];
    const r = await engine().generate({ ...base, maxTokens: 20, stop: [stop], onDelta: (_i, d) => deltas.push(d) });
    const seq = r.sequences[0];
    expect(seq.finishReason).toBe('stop');
    expect(seq.text).toBe(full.text.slice(0, full.text.indexOf(stop)));
    expect(deltas.join('')).toBe(seq.text);
  });

  it('streams every sequence of a request; deltas concatenate to each final text', async () => {
    const streamed = ['', '', ''];
    const ended: number[] = [];
    const r = await engine().generate({ ...base, n: 3, onDelta: (i, d) => (streamed[i] += d), onSequenceEnd: (s) => ended.push(s.index) });
    expect(streamed).toEqual(r.sequences.map((s) => s.text));
    expect(ended.sort()).toEqual([0, 1, 2]);
  });

  it('the context length ends a sequence with finish reason length; over-long prompts are refused', async () => {
    const prompt = 'x'.repeat(40); // 41 tokens with BOS, context 48: room for 48 - 41 + 1 = 8 tokens
    const r = await engine().generate({ ...base, prompt, maxTokens: 30 });
    expect(r.sequences[0].tokenIds).toHaveLength(8);
    expect(r.sequences[0].finishReason).toBe('length');
    await expect(engine().generate({ ...base, prompt: 'x'.repeat(48) })).rejects.toThrow(/context/);
  });

  it('an aborted request is dropped at the next step boundary without disturbing the others', async () => {
    const e = engine(session({ delayMs: 1 }));
    const ac = new AbortController();
    const doomed = e.generate({ ...base, maxTokens: 40, signal: ac.signal });
    const other = e.generate({ ...base, seed: 99, maxTokens: 20 });
    setTimeout(() => ac.abort(), 8);
    await expect(doomed).rejects.toThrow(/abort/);
    const r = await other;
    expect(r.sequences[0].tokenIds).toEqual((await engine().generate({ ...base, seed: 99, maxTokens: 20 })).sequences[0].tokenIds);
  });

  it('a failing session rejects the affected requests and the engine keeps serving', async () => {
    const s = session();
    let failNext = true;
    const flaky = { outputNames: s.outputNames, run: (f: Parameters<typeof s.run>[0]) => (failNext ? ((failNext = false), Promise.reject(new Error('boom'))) : s.run(f)) };
    const e = new GenerationEngine(flaky, { config, tokenizer: tok });
    await expect(e.generate(base)).rejects.toThrow('boom');
    expect((await e.generate(base)).sequences[0].tokenIds).toHaveLength(12);
  });

  it('a throwing callback fails its batch instead of hanging, and the engine keeps serving', async () => {
    const e = engine();
    const bad = e.generate({ ...base, onDelta: () => { throw new Error('callback failed'); } });
    await expect(bad).rejects.toThrow('callback failed');
    expect((await e.generate(base)).sequences[0].tokenIds).toHaveLength(12);
  });

  it('prompt ids can be given directly (PPO rollouts)', async () => {
    const ids = [tok.bosId, ...tok.encode('Once upon a time')];
    const a = await engine().generate({ ...base, prompt: undefined, promptIds: ids });
    const b = await engine().generate(base);
    expect(a.sequences[0].tokenIds).toEqual(b.sequences[0].tokenIds);
  });
});

// Off-thread lanes (the onnxruntime-node adapter's worker threads) stood in for by a SessionLane over a second
// ReferenceSession: the engine's split of the batch over lanes must not change any output.
describe('GenerationEngine with two lanes', () => {
  const opts = { vocabSize: tok.vocabSize, nLayer: 2, nHead: 2, headDim: 4, stepOutputs: true };
  const twoLanes = (delayMs = 1, closed = false) => {
    const main = new ReferenceSession({ ...opts, delayMs });
    const other = new ReferenceSession({ ...opts, delayMs });
    const session: PolicySession = {
      outputNames: main.outputNames,
      run: (f) => main.run(f),
      offThreadLanes: (shape) => {
        const lane: DecodeLane = new SessionLane(other, shape);
        return [closed ? Object.assign(Object.create(lane) as DecodeLane, { closed: true }) : lane];
      },
    };
    return { main, other, engine: new GenerationEngine(session, { config, tokenizer: tok }) };
  };
  const solo = (r: GenerateRequest) => new GenerationEngine(new ReferenceSession(opts), { config, tokenizer: tok }).generate(r);

  it('a lone request decodes on lane 0 only', async () => {
    const { main, other, engine } = twoLanes();
    expect(engine.laneCount).toBe(2);
    for (let i = 0; i < 3; i++) await engine.generate({ ...base, seed: i });
    expect(main.runs).toBeGreaterThan(0);
    expect(other.runs).toBe(0);
  });

  it('concurrent requests spread over both lanes; every output equals its solo run; rows leave and join mid-run', async () => {
    const { main, other, engine } = twoLanes();
    const reqs = Array.from({ length: 10 }, (_, i): GenerateRequest => ({ ...base, prompt: ['Once upon a time', 'A', 'The quick brown fox'][i % 3], seed: i, n: 1 + (i % 3), maxTokens: 4 + ((i * 5) % 11) }));
    const first = Promise.all(reqs.slice(0, 6).map((r) => engine.generate(r)));
    await new Promise((r) => setTimeout(r, 6));
    const together = [...(await first), ...(await Promise.all(reqs.slice(6).map((r) => engine.generate(r))))];
    for (let i = 0; i < reqs.length; i++) {
      const alone = await solo(reqs[i]);
      expect(together[i].sequences.map((q) => q.tokenIds)).toEqual(alone.sequences.map((q) => q.tokenIds));
      expect(together[i].sequences.map((q) => q.logprobs)).toEqual(alone.sequences.map((q) => q.logprobs));
      expect(together[i].sequences.map((q) => q.values)).toEqual(alone.sequences.map((q) => q.values));
    }
    expect(main.runs).toBeGreaterThan(0);
    expect(other.runs).toBeGreaterThan(0);
    expect(engine.stats.laneRowSteps.every((n) => n > 0)).toBe(true);
    expect(Math.max(...main.batchSizes, ...other.batchSizes)).toBeGreaterThan(1);
    await engine.drain();
    expect(engine.load).toBe(0);
  });

  it('a closed lane gets no requests', async () => {
    const { other, engine } = twoLanes(1, true);
    const out = await Promise.all(Array.from({ length: 4 }, (_, i) => engine.generate({ ...base, seed: i, maxTokens: 5 })));
    expect(out.every((r) => r.sequences[0].tokenIds.length === 5)).toBe(true);
    expect(other.runs).toBe(0);
  });

  it('maxBatchRows bounds the rows of all lanes together', async () => {
    const main = new ReferenceSession({ ...opts, delayMs: 1 });
    const other = new ReferenceSession({ ...opts, delayMs: 1 });
    const session: PolicySession = { outputNames: main.outputNames, run: (f) => main.run(f), offThreadLanes: (shape) => [new SessionLane(other, shape)] };
    const engine = new GenerationEngine(session, { config, tokenizer: tok, maxBatchRows: 4 });
    const out = await Promise.all(Array.from({ length: 6 }, (_, i) => engine.generate({ ...base, seed: i, n: 2, maxTokens: 5 })));
    expect(out.every((r) => r.sequences.length === 2)).toBe(true);
    // Each lane's runs hold at most maxBatchRows rows (canAdmit bounds the sum; the runs of two lanes overlap in time).
    expect(Math.max(...main.batchSizes, ...other.batchSizes)).toBeLessThanOrEqual(4);
  });
});
