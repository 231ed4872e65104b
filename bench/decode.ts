// bench:decode — generation tokens/s of policy.onnx on onnxruntime-node, with the KV cache (prefill once,
// then one token per session.run) and with full-prefix recompute (the whole sequence every step), at batch
// 1 and 8, a 16-token prompt and 128 new greedy tokens picked in JS. The intra-op thread count is chosen by
// measurement first (shared/onnx-session.ts holds the default the runtimes use). Writes
// bench/results/decode.json. Uses models/base/ when it holds a policy, else a randomly initialised model of
// the fallback config (the JSON says which); speed does not depend on the weights' values.
//
//   npm run bench:decode [-- --reps 3 --new-tokens 128]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type * as ort from 'onnxruntime-node';
import { parseModelConfig, type ModelConfig } from '../shared/model-config';
import { ORT_SESSION_DEFAULTS } from '../shared/onnx-session';
import { ARTIFACT_FILES } from '../shared/policy-io';
import { buildPolicyOnnx } from '../worker/onnx/export-policy';
import { createSession, generate, leftPad, runPolicy } from '../worker/onnx/policy-session';
import { initGpt2Weights } from '../worker/onnx/weights';

/** Used only when models/base/ has no policy yet: the ENVIRONMENT.md size with room for 16 + 128 tokens. */
const FALLBACK_CONFIG: ModelConfig = { vocabSize: 1024, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 };

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '3' },
    'prompt-tokens': { type: 'string', default: '16' },
    'new-tokens': { type: 'string', default: '128' },
    model: { type: 'string', default: 'models/base' },
    out: { type: 'string', default: 'bench/results/decode.json' },
  },
});
const reps = Number(args.reps);
// The median of `reps` timed runs is reported; a warm-up run comes first.
const promptLen = Number(args['prompt-tokens']);
const newTokens = Number(args['new-tokens']);

function loadModel(): { source: string; config: ModelConfig; onnx: Uint8Array | string } {
  const dir = args.model!;
  const policy = join(dir, ARTIFACT_FILES.policyOnnx);
  const configFile = join(dir, ARTIFACT_FILES.config);
  const base = existsSync(configFile) ? parseModelConfig(JSON.parse(readFileSync(configFile, 'utf8'))) : null;
  const needed = promptLen + newTokens;
  if (base && existsSync(policy) && base.contextLength >= needed) return { source: dir, config: base, onnx: policy };
  // Speed does not depend on the weights' values, so a random model of the same shape measures the same
  // thing; only the position table must be long enough for prompt + new tokens.
  const c = base ? { ...base, contextLength: Math.max(base.contextLength, needed) } : FALLBACK_CONFIG;
  const why = !base
    ? `random-init with the fallback config (${dir} has no config.json yet)`
    : existsSync(policy)
      ? `random-init with ${dir}'s config, contextLength raised from ${base.contextLength} to ${c.contextLength} to fit ${needed} tokens`
      : `random-init with ${dir}'s config (${dir} has no policy.onnx)`;
  return { source: why, config: c, onnx: buildPolicyOnnx(initGpt2Weights(c, 1), c, { tokenizerSha256: '', version: 'bench' }) };
}

/** CPU time of this process (all threads, onnxruntime's included): unlike wall time, a loaded machine barely moves it. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function prompts(batch: number, vocab: number, seed: number): number[][] {
  let s = seed;
  const next = () => (s = (s * 1103515245 + 12345) % 2 ** 31) % vocab;
  return Array.from({ length: batch }, () => Array.from({ length: promptLen }, next));
}

async function timeGenerate(session: ort.InferenceSession, c: ModelConfig, batch: number, useCache: boolean) {
  const p = prompts(batch, c.vocabSize, 17 + batch);
  await generate(session, c, p, { maxNewTokens: Math.min(8, newTokens), useCache }); // warm-up
  const times: number[] = [];
  const cpuTimes: number[] = [];
  let tokens: number[][] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now(), c0 = cpuMs();
    tokens = await generate(session, c, p, { maxNewTokens: newTokens, useCache });
    times.push(performance.now() - t0);
    cpuTimes.push(cpuMs() - c0);
  }
  const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const ms = median(times), cpu = median(cpuTimes);
  return { ms, tokensPerS: (batch * newTokens) / (ms / 1000), cpuMs: cpu, tokensPerCpuS: (batch * newTokens) / (cpu / 1000), tokens };
}

/** Median time of one bare decode session.run (batch 1, past = prompt): the floor for any sampler. */
async function bareStepMs(session: ort.InferenceSession, c: ModelConfig): Promise<number> {
  const { ids, mask, positions } = leftPad(prompts(1, c.vocabSize, 3), 0);
  const pre = await runPolicy(session, c, { ids, mask, positions });
  const step = { ids: [[1]], mask: [[...mask[0], 1]], positions: [[promptLen]], past: pre.present };
  const t: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await runPolicy(session, c, step);
    t.push(performance.now() - t0);
  }
  t.sort((a, b) => a - b);
  return t[100];
}

async function main() {
  const { source, config: c, onnx } = loadModel();
  if (promptLen + newTokens > c.contextLength) throw new Error(`${promptLen} + ${newTokens} tokens exceed contextLength ${c.contextLength}`);
  console.error(`model: ${source}  config: ${JSON.stringify(c)}`);

  // 1. Thread count by measurement: KV decode, batch 1 and 8.
  const sweep: { intraOpNumThreads: number; kv_b1_tokens_per_s: number; kv_b8_tokens_per_s: number }[] = [];
  for (const threads of [1, 2]) {
    const s = await createSession(onnx, { intraOpNumThreads: threads });
    const b1 = await timeGenerate(s, c, 1, true);
    const b8 = await timeGenerate(s, c, 8, true);
    sweep.push({ intraOpNumThreads: threads, kv_b1_tokens_per_s: Math.round(b1.tokensPerS), kv_b8_tokens_per_s: Math.round(b8.tokensPerS) });
    console.error(`threads ${threads}: kv b1 ${b1.tokensPerS.toFixed(0)} tok/s, b8 ${b8.tokensPerS.toFixed(0)} tok/s`);
    await s.release();
  }
  const best = sweep.reduce((a, b) => (b.kv_b1_tokens_per_s > a.kv_b1_tokens_per_s ? b : a)).intraOpNumThreads;

  // 2. KV cache vs recompute at the chosen thread count.
  const session = await createSession(onnx, { intraOpNumThreads: best });
  const results: Record<string, unknown>[] = [];
  const tps: Record<string, number> = {};
  const matches: Record<string, boolean> = {};
  for (const batch of [1, 8]) {
    const kv = await timeGenerate(session, c, batch, true);
    const re = await timeGenerate(session, c, batch, false);
    const same = JSON.stringify(kv.tokens) === JSON.stringify(re.tokens);
    for (const [mode, r] of [['kv_cache', kv], ['recompute', re]] as const) {
      tps[`${mode}_b${batch}`] = r.tokensPerS;
      tps[`${mode}_b${batch}_cpu`] = r.tokensPerCpuS;
      results.push({ mode, batch, tokens_per_s: Math.round(r.tokensPerS), ms_per_step: +(r.ms / newTokens).toFixed(3), median_ms: Math.round(r.ms), tokens_per_cpu_s: Math.round(r.tokensPerCpuS), cpu_ms: Math.round(r.cpuMs) });
      console.error(`${mode} batch ${batch}: ${r.tokensPerS.toFixed(0)} tok/s (${(r.ms / newTokens).toFixed(3)} ms/step)`);
    }
    // Reported, not asserted: with a random near-uniform model a float-rounding tie can flip one argmax
    // (tests/onnx checks token equality on models with clear margins).
    matches[`b${batch}`] = same;
  }
  const bare = await bareStepMs(session, c);
  await session.release();

  const out = {
    benchmark: 'decode',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadavg_at_start: startLoad },
    model: { source, config: c },
    prompt_tokens: promptLen,
    new_tokens: newTokens,
    sampling: 'greedy argmax in JS',
    reps,
    session_options: { ...ORT_SESSION_DEFAULTS, intraOpNumThreads: best },
    thread_sweep: sweep,
    results,
    kv_tokens_equal_recompute: matches,
    bare_decode_step_ms_b1: +bare.toFixed(3),
    kv_speedup: +(tps.kv_cache_b1 / tps.recompute_b1).toFixed(2),
    kv_speedup_b8: +(tps.kv_cache_b8 / tps.recompute_b8).toFixed(2),
    // the same ratios from CPU time: the load-robust cross-check when the machine was busy (see loadavg)
    kv_speedup_cpu: +(tps.kv_cache_b1_cpu / tps.recompute_b1_cpu).toFixed(2),
    kv_speedup_b8_cpu: +(tps.kv_cache_b8_cpu / tps.recompute_b8_cpu).toFixed(2),
    target_kv_speedup: 5,
  };
  mkdirSync(join(args.out!, '..'), { recursive: true });
  writeFileSync(args.out!, `${JSON.stringify(out, null, 2)}\n`);
  console.error(`kv_speedup ${out.kv_speedup} (batch 8: ${out.kv_speedup_b8}); wrote ${args.out}`);
}

/** 1/5/15-minute load averages when the run began: wall-clock figures are only as good as the machine was quiet. */
const startLoad = loadavg().map((x) => +x.toFixed(2));
await main();
