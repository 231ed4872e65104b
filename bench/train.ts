// bench:train — how fast the base config trains on the selected TF.js backend, and how close that is to the
// backend's own plain-matmul speed. Writes bench/results/train.json.
//
//   1. matmul peak: plain 2-D float32 matMul at the shapes of the model's big matmuls (forward and the
//      explicitly transposed gradient shapes), best of several timed runs each; the peak is the best shape.
//   2. forward+backward (tf.variableGrads of the LM loss, gradients read back) in this thread, at the
//      pretraining's two window settings (T=64 × 32 windows and T=256 × 8 windows).
//   3. whole optimizer steps (gradients + AdamW) with the data-parallel trainer: 0 worker threads (this
//      thread) and 2 worker threads.
//   4. per-op breakdown of one forward+backward (tf.profile), grouped by kernel.
//
// GFLOP/s counts model FLOPs analytically (the formula is in the JSON), so work the implementation adds
// (the one-hot embedding gradient, transposes, masks) lowers the figure instead of raising it.
// Timings are the best and the median of `--reps` steps after a warm-up; on a loaded machine the best is
// the closer estimate of the quiet figure, and both the peak and the model are measured the same way.
//
//   npm run bench:train [-- --reps 6 --threads 2 --no-profile]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { parseModelConfig, type ModelConfig } from '../shared/model-config';
import { ensureBackend } from '../worker/backend';
import { GPT, initialValues, paramSpecs } from '../worker/model/gpt';
import { layoutOf } from '../worker/train/flat';
import { DataParallelTrainer } from '../worker/train/parallel';
import { Rng, sampleStarts } from '../worker/train/lm-data';

/** The base config when models/base/config.json does not exist yet (the pretraining defaults). */
const FALLBACK_CONFIG: ModelConfig = { vocabSize: 2048, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 };

/** The pretraining's window settings (worker/pretrain.ts defaults: --seq-len/--batch, --long-seq-len/--long-batch). */
const SETTINGS = [
  { T: 64, B: 32, note: 'short windows: the first 80% of pretraining steps' },
  { T: 256, B: 8, note: 'long windows (full context): the last 20% of pretraining steps' },
];

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '6' },
    threads: { type: 'string', default: '2' },
    model: { type: 'string', default: 'models/base' },
    out: { type: 'string', default: 'bench/results/train.json' },
    'no-profile': { type: 'boolean', default: false },
  },
});
const reps = Number(args.reps);
const log = (s: string) => process.stderr.write(`${s}\n`);
/** 1/5/15-minute load averages now: each part of the run records the load it ran under. */
const load = () => loadavg().map((x) => +x.toFixed(2));

function loadConfig(): { source: string; config: ModelConfig } {
  const f = join(args.model!, 'config.json');
  if (existsSync(f)) return { source: f, config: parseModelConfig(JSON.parse(readFileSync(f, 'utf8'))) };
  return { source: `fallback (${f} not present yet): the pretraining defaults`, config: FALLBACK_CONFIG };
}

/** Model FLOPs of one training step per token: 3 × forward (backward = 2 × forward). */
function flopsPerToken(c: ModelConfig, T: number): { total: number; dense: number; attention: number } {
  const C = c.dModel, L = c.nLayer, M = c.mlpRatio * C;
  // weights that multiply every token: c_attn (C×3C) + c_proj (C×C) + c_fc (C×M) + mlp c_proj (M×C) per layer, plus the tied LM head (C×V)
  const matmulParams = L * (3 * C * C + C * C + 2 * C * M) + c.vocabSize * C;
  const dense = 6 * matmulParams;
  // q·kᵀ and att·v, 2·C FLOPs per (query, key) pair each, over the causal pairs only: position t sees t+1 keys,
  // (T+1)/2 on average. The implementation computes the full masked T×T; the masked half is not counted.
  const attention = 3 * L * 4 * C * ((T + 1) / 2);
  return { total: dense + attention, dense, attention };
}

const FLOPS_FORMULA =
  'per token: 6·(L·(3C² + C² + 2·C·M) + V·C) + 6·L·C·(T+1); i.e. 3 × forward (backward = 2 × forward), forward = 2 FLOPs per weight of every matmul ' +
  '(c_attn, attn c_proj, mlp c_fc, mlp c_proj, tied LM head) + 2·C·(T+1) per layer for q·kᵀ and att·v over the causal (query, key) pairs only ' +
  '((T+1)/2 keys per query on average; the masked half of the computed T×T is not counted); embedding gathers, LayerNorm, GELU, softmax, ' +
  'biases and the embedding gradient are not counted. C = dModel, M = mlpRatio·C, L = nLayer, V = vocabSize, T = window length.';

/** CPU time of this process in ms (all threads). For one-thread work it barely moves when the machine is busy. */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

function stats(ms: number[]): { best: number; median: number } {
  const s = [...ms].sort((a, b) => a - b);
  return { best: s[0], median: s[Math.floor(s.length / 2)] };
}

// ---------------------------------------------------------------------------------------------------------
// 1. matmul peak

interface MatmulRow { m: number; k: number; n: number; why: string; best_ms: number; gflops_best: number; gflops_median: number; /** from CPU time (median): robust to a busy machine */ gflops_cpu_time: number }

function matmulPeak(c: ModelConfig): MatmulRow[] {
  const N = SETTINGS[0].B * SETTINGS[0].T; // rows of every activation matmul in a step (2048 for both settings)
  const C = c.dModel, M = c.mlpRatio * C, V = c.vocabSize;
  const shapes: [number, number, number, string][] = [
    [N, C, M, 'mlp c_fc forward [N,C]@[C,M]'],
    [N, M, C, 'mlp c_proj forward [N,M]@[M,C]'],
    [N, C, V, 'tied LM head forward [N,C]@[C,V]'],
    [N, V, C, 'LM head input gradient [N,V]@[V,C]'],
    [C, N, M, 'c_fc weight gradient xᵀ@dy [C,N]@[N,M]'],
    [N, C, C, 'q/k/v and attn c_proj [N,C]@[C,C]'],
  ];
  const rows: MatmulRow[] = [];
  for (const [m, k, n, why] of shapes) {
    const a = tf.randomNormal([m, k]) as tf.Tensor2D, b = tf.randomNormal([k, n]) as tf.Tensor2D;
    const flops = 2 * m * k * n;
    // enough multiplies per timed run to last ≥ ~20 ms, so timer and scheduling noise stay small
    const once = () => tf.matMul(a, b).dispose(); // the wasm backend runs kernels synchronously
    once();
    let inner = 1;
    for (let t0 = performance.now(); performance.now() - t0 < 20; inner++) once();
    const times: number[] = [], cpu: number[] = [];
    for (let r = 0; r < Math.max(5, reps); r++) {
      const t0 = performance.now(), c0 = cpuMs();
      for (let i = 0; i < inner; i++) once();
      times.push((performance.now() - t0) / inner);
      cpu.push((cpuMs() - c0) / inner);
    }
    a.dispose(), b.dispose();
    const s = stats(times), sc = stats(cpu);
    rows.push({ m, k, n, why, best_ms: +s.best.toFixed(3), gflops_best: +(flops / s.best / 1e6).toFixed(2), gflops_median: +(flops / s.median / 1e6).toFixed(2), gflops_cpu_time: +(flops / sc.median / 1e6).toFixed(2) });
    log(`matmul ${m}×${k}×${n} (${why}): ${(flops / s.best / 1e6).toFixed(1)} GFLOP/s best, ${(flops / s.median / 1e6).toFixed(1)} median`);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------------
// 2. forward + backward in this thread

function randomTokens(n: number, V: number, seed: number): Int32Array {
  const rng = new Rng(seed);
  return Int32Array.from({ length: n }, () => 4 + Math.floor(rng.next() * (V - 4))); // no BOS/specials: every target counts
}

function fwdBwd(model: GPT, vars: tf.Variable[], tokens: Int32Array, B: number): void {
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => model.lmLoss(tokens, B), vars);
    value.dataSync();
    for (const g of Object.values(grads)) g.dataSync(); // what a replica does: gradients leave the backend
  });
}

function timeFwdBwd(c: ModelConfig, T: number, B: number) {
  const model = new GPT(c, { heads: { value: false, reward: false }, seed: 1 });
  const vars = model.variables(['trunk']);
  const tokens = randomTokens(B * (T + 1), c.vocabSize, T);
  fwdBwd(model, vars, tokens, B);
  fwdBwd(model, vars, tokens, B);
  const before = tf.memory().numTensors;
  const times: number[] = [], cpu: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now(), c0 = cpuMs();
    fwdBwd(model, vars, tokens, B);
    times.push(performance.now() - t0);
    cpu.push(cpuMs() - c0);
  }
  const leaked = tf.memory().numTensors - before;
  if (leaked !== 0) throw new Error(`forward+backward leaked ${leaked} tensors over ${reps} steps`);
  model.dispose();
  return { ...stats(times), cpu: stats(cpu) };
}

async function profileStep(c: ModelConfig, T: number, B: number) {
  const model = new GPT(c, { heads: { value: false, reward: false }, seed: 1 });
  const vars = model.variables(['trunk']);
  const tokens = randomTokens(B * (T + 1), c.vocabSize, T);
  fwdBwd(model, vars, tokens, B);
  const t0 = performance.now();
  const info = await tf.profile(() => fwdBwd(model, vars, tokens, B));
  const wall = performance.now() - t0;
  const byKernel = new Map<string, { ms: number; calls: number }>();
  const byShape = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    // customGrad wrappers show up as 'unnamed scope' with the time of the kernels inside them: counted twice
    if (k.name === 'unnamed scope') continue;
    const ms = Number(await k.kernelTimeMs) || 0;
    for (const [map, key] of [[byKernel, k.name], [byShape, `${k.name} ${JSON.stringify(k.inputShapes)}`]] as const) {
      const a = map.get(key) ?? { ms: 0, calls: 0 };
      a.ms += ms, a.calls++;
      map.set(key, a);
    }
  }
  model.dispose();
  const total = [...byKernel.values()].reduce((s, a) => s + a.ms, 0);
  const top = (m: Map<string, { ms: number; calls: number }>, n: number) =>
    [...m.entries()].sort((x, y) => y[1].ms - x[1].ms).slice(0, n).map(([op, a]) => ({ op, ms: +a.ms.toFixed(2), calls: a.calls, share: +(a.ms / total).toFixed(3) }));
  return { T, B, kernel_ms_total: +total.toFixed(1), wall_ms_while_profiling: +wall.toFixed(1), by_kernel: top(byKernel, 20), top_kernel_calls_by_shape: top(byShape, 15) };
}

// ---------------------------------------------------------------------------------------------------------
// 3. whole optimizer steps with the data-parallel trainer

async function timeTrainer(c: ModelConfig, threads: number, T: number, B: number) {
  const specs = paramSpecs(c, { value: false, reward: false });
  const layout = layoutOf(specs);
  const init = new Float32Array(layout.size);
  for (const [i, s] of specs.entries()) init.set(initialValues(s, c, 1), layout.entries[i].offset);
  const stream = Uint16Array.from(randomTokens(200_000, c.vocabSize, 7));
  const trainer = await DataParallelTrainer.create({ config: c, heads: { value: false, reward: false }, tokens: stream, threads, initialParams: init });
  try {
    const rng = new Rng(3);
    const step = () => trainer.step(sampleStarts(rng, stream.length, B, T), T, 1e-4);
    await step();
    await step();
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      await step();
      times.push(performance.now() - t0);
    }
    return stats(times);
  } finally {
    await trainer.close();
  }
}

// ---------------------------------------------------------------------------------------------------------

async function main() {
  const backend = await ensureBackend({ log });
  const { source, config: c } = loadConfig();
  log(`model: ${source}  ${JSON.stringify(c)}`);
  const threads = Number(args.threads);

  const matmul = matmulPeak(c);
  const peak = matmul.reduce((a, b) => (b.gflops_best > a.gflops_best ? b : a));
  const ref = tf.tidy(() => {
    // the ENVIRONMENT.md reference shape, for comparison with other machines (not used for the ratio)
    const a = tf.randomNormal([1024, 1024]) as tf.Tensor2D;
    tf.matMul(a, a).dispose();
    const t: number[] = [];
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      tf.matMul(a, a).dispose();
      t.push(performance.now() - t0);
    }
    return +((2 * 1024 ** 3) / Math.min(...t) / 1e6).toFixed(2);
  });
  const peakCpu = Math.max(...matmul.map((r) => r.gflops_cpu_time));
  log(`matmul 1024³ reference: ${ref} GFLOP/s; peak at model shapes ${peak.gflops_best} GFLOP/s (${peak.m}×${peak.k}×${peak.n})`);

  const settings = [];
  for (const s of SETTINGS) {
    if (s.T > c.contextLength) continue;
    const f = flopsPerToken(c, s.T);
    const tokens = s.B * s.T;
    const gf = (ms: number, n = 1) => +((f.total * tokens) / ms / 1e6 / n).toFixed(2);
    const loadBefore = load();
    const fb = timeFwdBwd(c, s.T, s.B);
    log(`T=${s.T} B=${s.B} forward+backward, 1 thread: ${fb.best.toFixed(0)} ms best, ${fb.median.toFixed(0)} median → ${gf(fb.best)} GFLOP/s (${(gf(fb.best) / peak.gflops_best).toFixed(2)} of peak); CPU time ${fb.cpu.median.toFixed(0)} ms → ${(gf(fb.cpu.median) / peakCpu).toFixed(2)} of the CPU-time peak`);
    const st = await timeTrainer(c, 0, s.T, s.B);
    log(`T=${s.T} B=${s.B} optimizer step, trainer threads=0: ${st.best.toFixed(0)} ms best → ${((tokens / st.best) * 1000).toFixed(0)} tokens/s`);
    const dp = threads > 0 ? await timeTrainer(c, threads, s.T, s.B) : null;
    if (dp) log(`T=${s.T} B=${s.B} optimizer step, trainer threads=${threads}: ${dp.best.toFixed(0)} ms best → ${((tokens / dp.best) * 1000).toFixed(0)} tokens/s`);
    settings.push({
      T: s.T,
      B: s.B,
      note: s.note,
      loadavg_before_after: [loadBefore, load()],
      tokens_per_step: tokens,
      flops_per_token: f.total,
      flops_per_token_dense: f.dense,
      flops_per_token_attention: f.attention,
      forward_backward_1_thread: {
        ms_best: +fb.best.toFixed(1), ms_median: +fb.median.toFixed(1),
        tokens_per_s: Math.round((tokens / fb.best) * 1000), tokens_per_s_median: Math.round((tokens / fb.median) * 1000),
        gflops: gf(fb.best), gflops_median: gf(fb.median),
        ratio_to_matmul_peak: +(gf(fb.best) / peak.gflops_best).toFixed(3),
        cpu_ms_median: +fb.cpu.median.toFixed(1),
        gflops_cpu_time: gf(fb.cpu.median),
        ratio_to_matmul_peak_cpu_time: +(gf(fb.cpu.median) / peakCpu).toFixed(3),
      },
      train_step_1_thread: {
        what: 'DataParallelTrainer threads=0: forward+backward, gradients to JS, AdamW, weights back',
        ms_best: +st.best.toFixed(1), ms_median: +st.median.toFixed(1),
        tokens_per_s: Math.round((tokens / st.best) * 1000), tokens_per_s_median: Math.round((tokens / st.median) * 1000),
        gflops: gf(st.best), ratio_to_matmul_peak: +(gf(st.best) / peak.gflops_best).toFixed(3),
      },
      ...(dp && {
        train_step_data_parallel: {
          what: `DataParallelTrainer threads=${threads}: each worker thread its own ${backend.name} backend on B/${threads} windows; gradients averaged, AdamW in the main thread`,
          threads,
          ms_best: +dp.best.toFixed(1), ms_median: +dp.median.toFixed(1),
          tokens_per_s: Math.round((tokens / dp.best) * 1000), tokens_per_s_median: Math.round((tokens / dp.median) * 1000),
          gflops: gf(dp.best),
          ratio_to_matmul_peak: +(gf(dp.best) / (threads * peak.gflops_best)).toFixed(3),
          ratio_basis: `${threads} × the one-thread matmul peak (one backend per thread)`,
          speedup_over_1_thread: +(st.best / dp.best).toFixed(2),
        },
      }),
    });
  }
  const profileLoad = load();
  const profile = args['no-profile'] ? null : { loadavg_before: profileLoad, ...(await profileStep(c, SETTINGS[0].T, SETTINGS[0].B)) };
  if (profile) for (const k of profile.by_kernel.slice(0, 8)) log(`profile T=${profile.T}: ${k.op.padEnd(22)} ${k.ms.toFixed(1).padStart(7)} ms ${(k.share * 100).toFixed(1).padStart(5)}%  (${k.calls} calls)`);

  const head = settings[0].forward_backward_1_thread;
  const out = {
    benchmark: 'train',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadavg_at_start: startLoad, loadavg_at_end: load() },
    backend: backend.name,
    model: { source, config: c, params: layoutOf(paramSpecs(c, { value: false, reward: false })).size },
    reps,
    timing: 'best (and median) of `reps` steps after 2 warm-up steps; matmuls best of ≥5 runs of ≥20 ms',
    flops_formula: FLOPS_FORMULA,
    matmul_peak: {
      gflops: peak.gflops_best,
      shape: `${peak.m}×${peak.k}×${peak.n}`,
      why: 'plain 2-D matMul (no transpose flags, as gpt.ts calls it) at the shapes of the model\'s big matmuls with N = B·T = 2048 rows per step; the best shape is the peak a step could reach',
      shapes: matmul,
      reference_1024_cubed_gflops: ref,
    },
    // headline: the pretraining's dominant setting, one thread, forward+backward against the one-thread peak
    tokens_per_s: settings[0].train_step_1_thread.tokens_per_s,
    tokens_per_s_data_parallel: settings[0].train_step_data_parallel?.tokens_per_s ?? null,
    achieved_gflops: head.gflops,
    ratio_to_matmul_peak: head.ratio_to_matmul_peak,
    // the same ratio from CPU time (median step vs median matmul): what a busy machine cannot skew much
    ratio_to_matmul_peak_cpu_time: head.ratio_to_matmul_peak_cpu_time,
    matmul_peak_gflops_cpu_time: peakCpu,
    headline_basis: `T=${settings[0].T}, B=${settings[0].B}, forward+backward in one thread vs the one-thread matmul peak`,
    target_ratio: 0.5,
    settings,
    profile,
  };
  mkdirSync(join(args.out!, '..'), { recursive: true });
  writeFileSync(args.out!, `${JSON.stringify(out, null, 2)}\n`);
  log(`ratio_to_matmul_peak ${out.ratio_to_matmul_peak} (target 0.5); wrote ${args.out}`);
}

/** 1/5/15-minute load averages when the run began: the figures are only as quiet as the machine was. */
const startLoad = load();
await main();
