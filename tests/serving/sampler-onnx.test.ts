// The shared sampling loop on a real policy.onnx (random weights, built by the exporter) in onnxruntime-node:
// batched decoding equals solo decoding, greedy decoding agrees with the worker's independent KV-cache loop,
// and seeded sampling is reproducible.
import * as ort from 'onnxruntime-node';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeOnnxRuntime } from '../../api/adapters/onnxruntime-node';
import { writeRandomPolicy, type RandomPolicy } from '../../bench/random-policy';
import { ortSessionOptions } from '../../shared/onnx-session';
import { STEP_PROBS } from '../../shared/policy-io';
import { GenerationEngine } from '../../shared/sampling';
import { deriveStepGraph } from '../../shared/sampling/step-graph';
import { Tokenizer } from '../../shared/tokenizer';
import { generate as workerGenerate } from '../../worker/onnx/policy-session';

const tok = Tokenizer.byteLevel();
let dir: string;
let policy: RandomPolicy;
let session: ort.InferenceSession;
let stepSession: ort.InferenceSession;
const engine = () => new GenerationEngine(session, { config: policy.config, tokenizer: tok });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'prefloop-sampler-'));
  policy = await writeRandomPolicy(join(dir, 'p'), 11);
  const bytes = readFileSync(join(policy.dir, 'policy.onnx'));
  session = await ort.InferenceSession.create(bytes, ortSessionOptions());
  stepSession = await ort.InferenceSession.create(deriveStepGraph(bytes)!, ortSessionOptions());
});
afterAll(async () => {
  await session?.release();
  await stepSession?.release();
  rmSync(dir, { recursive: true, force: true });
});

describe('GenerationEngine on onnxruntime-node', () => {
  it('greedy output equals the worker’s own KV-cache decode loop', async () => {
    const prompt = 'The meaning of life is';
    const r = await engine().generate({ prompt, temperature: 0, maxTokens: 24, ignoreEos: true });
    const [ref] = await workerGenerate(session, policy.config, [r.promptIds], { maxNewTokens: 24, useCache: true });
    expect(r.sequences[0].tokenIds).toEqual(ref);
  });

  it('same seed, same text; concurrent requests and n > 1 do not change a sequence', async () => {
    const req = { prompt: 'Once upon a time', maxTokens: 32, temperature: 0.9, topP: 0.95, topK: 50, seed: 1234 };
    const a = await engine().generate(req);
    const b = await engine().generate(req);
    expect(b.sequences[0].text).toBe(a.sequences[0].text);
    const e = engine();
    const [c, , d] = await Promise.all([
      e.generate({ ...req, n: 3 }),
      e.generate({ ...req, prompt: 'Something else entirely, longer than the others', seed: 5, n: 2 }),
      e.generate(req),
    ]);
    expect(c.sequences[0].tokenIds).toEqual(a.sequences[0].tokenIds);
    expect(d.sequences[0].tokenIds).toEqual(a.sequences[0].tokenIds);
    expect(c.sequences[1].tokenIds).not.toEqual(c.sequences[0].tokenIds);
    expect(e.stats.rowSteps / e.stats.steps).toBeGreaterThan(2);
    for (const s of c.sequences) {
      expect(s.values.length).toBe(s.tokenIds.length);
      expect(s.logprobs.every((x) => Number.isFinite(x) && x <= 0)).toBe(true);
    }
  });

  it('the step graph (only new key/values out) samples exactly what the contract graph samples, batched and solo', async () => {
    const stepEngine = new GenerationEngine(stepSession, { config: policy.config, tokenizer: tok });
    expect(stepEngine.usesStepGraph).toBe(true);
    expect(engine().usesStepGraph).toBe(false);
    const reqs = [
      { prompt: 'Once upon a time', maxTokens: 40, temperature: 0.8, topK: 40, seed: 3, n: 2 },
      { prompt: 'A much longer prompt that makes the rows of the batch differ in length', maxTokens: 20, temperature: 1, seed: 4 },
      { prompt: 'Hi', maxTokens: 33, temperature: 0, seed: 5 },
    ];
    const viaStep = await Promise.all(reqs.map((r) => stepEngine.generate(r)));
    for (let i = 0; i < reqs.length; i++) {
      const alone = await engine().generate(reqs[i]);
      expect(viaStep[i].sequences.map((s) => s.tokenIds)).toEqual(alone.sequences.map((s) => s.tokenIds));
      for (let j = 0; j < alone.sequences.length; j++) {
        alone.sequences[j].logprobs.forEach((lp, t) => expect(viaStep[i].sequences[j].logprobs[t]).toBeCloseTo(lp, 4));
        alone.sequences[j].values.forEach((v, t) => expect(viaStep[i].sequences[j].values[t]).toBeCloseTo(v, 4));
      }
    }
    expect(stepEngine.stats.rowSteps / stepEngine.stats.steps).toBeGreaterThan(2);
  });

  it('the step graph returns the last position’s logits, as the contract graph has them, and probs = their softmax', async () => {
    expect(session.outputNames).not.toContain(STEP_PROBS);
    expect(stepSession.outputNames).toContain(STEP_PROBS);
    const prompts = [tok.encode('Once upon a time'), tok.encode('Upon a time once')];
    const L = prompts[0].length;
    const g = prompts.length;
    const int64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [g, L]);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64(prompts.flat()),
      attention_mask: int64(prompts.flat().map(() => 1)),
      position_ids: int64(prompts.flatMap((p) => p.map((_, i) => i))),
    };
    const hd = policy.config.dModel / policy.config.nHead;
    for (let l = 0; l < policy.config.nLayer; l++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [g, policy.config.nHead, 0, hd]);
    }
    const out = await stepSession.run(feeds);
    const full = await session.run(feeds);
    const V = policy.config.vocabSize;
    expect(full.logits.dims).toEqual([g, L, V]);
    expect(out.logits.dims).toEqual([g, 1, V]);
    expect(out[STEP_PROBS].dims).toEqual([g, 1, V]);
    expect(out.values.dims).toEqual([g, L]);
    const logits = out.logits.data as Float32Array;
    const fullLogits = full.logits.data as Float32Array;
    const probs = out[STEP_PROBS].data as Float32Array;
    for (let r = 0; r < g; r++) {
      const row = logits.subarray(r * V, (r + 1) * V);
      const last = fullLogits.subarray((r * L + L - 1) * V, (r * L + L) * V);
      for (let v = 0; v < V; v += 7) expect(row[v]).toBeCloseTo(last[v], 5);
      const m = Math.max(...row);
      const z = row.reduce((a, x) => a + Math.exp(x - m), 0);
      for (let v = 0; v < V; v += 17) expect(Math.abs(probs[r * V + v] - Math.exp(row[v] - m) / z)).toBeLessThan(1e-6);
    }
  });

  it('the adapter’s worker-thread lane samples what a single in-thread lane samples', async () => {
    const bytes = readFileSync(join(policy.dir, 'policy.onnx'));
    const laned = await nodeOnnxRuntime({}, { workerLanes: 1, wideThreads: 1 }).createSession(bytes);
    const single = await nodeOnnxRuntime({}, { workerLanes: 0, wideThreads: 1 }).createSession(bytes);
    try {
      const e = new GenerationEngine(laned, { config: policy.config, tokenizer: tok });
      expect(e.laneCount).toBe(2);
      // Odd requests sample plainly at temperature 1 (from the step graph's probs), even ones through the JS sampler.
      const reqs = Array.from({ length: 8 }, (_, i) => ({ prompt: ['Once upon a time', 'A longer prompt than the first one', 'Hi'][i % 3], maxTokens: 10 + 3 * i, ...(i % 2 ? { temperature: 1 } : { temperature: 0.9, topK: 40 }), seed: 100 + i, n: 1 + (i % 2) }));
      // Two waves, so rows join the worker lane while it is decoding and leave it mid-run.
      const first = Promise.all(reqs.slice(0, 5).map((r) => e.generate(r)));
      await new Promise((r) => setTimeout(r, 5));
      const together = [...(await first), ...(await Promise.all(reqs.slice(5).map((r) => e.generate(r))))];
      const s = new GenerationEngine(single, { config: policy.config, tokenizer: tok });
      for (let i = 0; i < reqs.length; i++) {
        const alone = await s.generate(reqs[i]);
        expect(together[i].sequences.map((q) => q.tokenIds)).toEqual(alone.sequences.map((q) => q.tokenIds));
      }
      expect(e.stats.laneRowSteps.every((n) => n > 0)).toBe(true); // both lanes decoded
    } finally {
      await laned.release();
      await single.release();
    }
  });
});
