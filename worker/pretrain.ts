// `npm run pretrain`: trains prefloop's base policy on the Brown corpus and writes models/base/.
//
//   1. corpus: Brown, tags stripped, every 20th file held out (worker/data/brown.ts)
//   2. tokenizer: byte-level BPE trained on the training files (deterministic)
//   3. model: GPT from the flags, initialised from --seed
//   4. train: data-parallel AdamW over worker threads, cosine LR with warmup; most steps on short windows,
//      the last --long-frac of steps on --long-seq-len windows so every position up to the context is trained
//   5. checkpoint every --ckpt-every steps (weights + AdamW state + data RNG) to --ckpt-dir; --resume continues
//   6. stop at --steps or when the --budget-minutes wall clock is spent (a checkpoint is written either way)
//   7. held-out bits per byte (every held-out token predicted once), samples, artifacts, report.md
//
// Bits per byte = (total nats of the held-out text, each document's tokens predicted from BOS + its own prefix)
// / ln 2 / (UTF-8 bytes of that text). BOS is given, never predicted; nothing else is excluded.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import cliProgress from 'cli-progress';
import { parseModelConfig, type ModelConfig } from '../shared/model-config';
import { Tokenizer } from '../shared/tokenizer';
import { ensureBackend } from './backend';
import { loadBrown } from './data/brown';
import { GPT, initialValues, paramSpecs } from './model/gpt';
import { generate } from './model/generate';
import { trainBpe } from './train/bpe';
import { layoutOf, toNamed, writeParams } from './train/flat';
import { buildStream, Rng, sampleStarts } from './train/lm-data';
import { cosineLr } from './train/optimizer';
import { DataParallelTrainer } from './train/parallel';
import { readSafetensors, writeSafetensors } from './safetensors';

export interface PretrainArgs {
  seed: number;
  vocab: number;
  layers: number;
  heads: number;
  dModel: number;
  context: number;
  seqLen: number;
  longSeqLen: number;
  longFrac: number;
  batch: number;
  longBatch: number;
  steps: number;
  lr: number;
  minLr: number;
  warmup: number;
  weightDecay: number;
  threads: number;
  budgetMinutes: number;
  evalEvery: number;
  evalTokens: number;
  ckptEvery: number;
  ckptDir: string;
  out: string;
  resume: boolean;
}

interface CurveRow {
  step: number;
  tokens: number;
  elapsedS: number;
  lr: number;
  trainLoss: number;
  /** Held-out nats per token on a prefix of the held-out stream, at the current window length. */
  heldOutLoss: number;
  /** The same, as bits per byte (prefix tokens per byte taken as the stream's). */
  heldOutBpb: number;
}

function parseArgs(argv: string[]): PretrainArgs {
  const p = new Command()
    .name('pretrain')
    .description('Train the base policy on the Brown corpus and write models/base/')
    .option('--seed <n>', 'seed for init, tokenizer ties and data order', '1337')
    .option('--vocab <n>', 'BPE vocabulary size (3 specials + 256 bytes + merges)', '2048')
    .option('--layers <n>', 'transformer blocks', '4')
    .option('--heads <n>', 'attention heads', '4')
    .option('--d-model <n>', 'width', '128')
    .option('--context <n>', 'contextLength (learned positions)', '256')
    .option('--seq-len <n>', 'window length for most steps', '64')
    .option('--long-seq-len <n>', 'window length for the final steps', '256')
    .option('--long-frac <x>', 'fraction of steps on long windows', '0.2')
    .option('--batch <n>', 'windows per step (short windows)', '32')
    .option('--long-batch <n>', 'windows per step (long windows)', '8')
    .option('--steps <n>', "optimizer steps (the cosine schedule spans them); 'auto' = fit the budget, measured over the first steps", 'auto')
    .option('--lr <x>', 'peak learning rate', '3e-3')
    .option('--min-lr <x>', 'final learning rate', '3e-4')
    .option('--warmup <n>', 'warmup steps', '100')
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', '0.1')
    .option('--threads <n>', 'worker threads (0 = this thread)', '2')
    .option('--budget-minutes <x>', 'stop after this much wall-clock training time', '65')
    .option('--eval-every <n>', 'steps between quick held-out evaluations', '100')
    .option('--eval-tokens <n>', 'held-out tokens in a quick evaluation', '8192')
    .option('--ckpt-every <n>', 'steps between checkpoints', '50')
    .option('--ckpt-dir <dir>', 'checkpoint directory (gitignored)', '.checkpoints/pretrain')
    .option('--out <dir>', 'artifact directory', 'models/base')
    .option('--resume', 'continue from the checkpoint in --ckpt-dir', false)
    .allowUnknownOption(false)
    .parse(argv, { from: 'user' });
  const o = p.opts();
  const num = (k: string) => {
    const v = Number(o[k]);
    if (!Number.isFinite(v)) throw new Error(`--${k} must be a number`);
    return v;
  };
  return {
    seed: num('seed'), vocab: num('vocab'), layers: num('layers'), heads: num('heads'), dModel: num('dModel'), context: num('context'),
    seqLen: num('seqLen'), longSeqLen: num('longSeqLen'), longFrac: num('longFrac'), batch: num('batch'), longBatch: num('longBatch'),
    steps: o.steps === 'auto' ? 0 : num('steps'), lr: num('lr'), minLr: num('minLr'), warmup: num('warmup'), weightDecay: num('weightDecay'), threads: num('threads'),
    budgetMinutes: num('budgetMinutes'), evalEvery: num('evalEvery'), evalTokens: num('evalTokens'), ckptEvery: num('ckptEvery'),
    ckptDir: String(o.ckptDir), out: String(o.out), resume: Boolean(o.resume),
  };
}

/** Arguments that must match for --resume to continue a run (the rest may change, e.g. the budget). */
const RUN_IDENTITY: (keyof PretrainArgs)[] = ['seed', 'vocab', 'layers', 'heads', 'dModel', 'context', 'seqLen', 'longSeqLen', 'batch', 'longBatch'];

const log = (s: string) => process.stderr.write(`${s}\n`);

export async function pretrain(a: PretrainArgs): Promise<void> {
  const t0 = Date.now();
  // 1–2. corpus and tokenizer
  const brown = loadBrown();
  const tok = trainBpe(brown.train.map((d) => d.text), a.vocab);
  const train = buildStream(brown.train, tok);
  const heldOut = buildStream(brown.heldOut, tok);
  log(`[pretrain] Brown: ${brown.train.length} train / ${brown.heldOut.length} held-out files; ${train.tokens.length} train tokens (${(train.tokens.length / train.bytes).toFixed(3)} tokens/byte), ${heldOut.tokens.length} held-out tokens, ${heldOut.bytes} held-out bytes`);

  // 3. model
  const config: ModelConfig = parseModelConfig({ vocabSize: tok.vocabSize, contextLength: a.context, nLayer: a.layers, nHead: a.heads, dModel: a.dModel, mlpRatio: 4, layerNormEps: 1e-5 });
  if (a.longSeqLen > config.contextLength || a.seqLen > config.contextLength) throw new Error('window length exceeds --context');
  const heads = { value: false, reward: false }; // the base is a plain LM; PPO and the RM add their heads
  const specs = paramSpecs(config, heads);
  const layout = layoutOf(specs);
  const init = new Float32Array(layout.size);
  for (const [i, s] of specs.entries()) init.set(initialValues(s, config, a.seed), layout.entries[i].offset);
  log(`[pretrain] model ${JSON.stringify(config)}: ${layout.size.toLocaleString()} parameters`);

  const trainer = await DataParallelTrainer.create({ config, heads, tokens: train.tokens, threads: a.threads, initialParams: init, adamw: { weightDecay: a.weightDecay } });
  const rng = new Rng(a.seed ^ 0x5eed);
  let step = 0, tokensSeen = 0, elapsedBefore = 0;
  let curve: CurveRow[] = [];
  let scheduleNotes: string[] = [];
  const ckptPath = join(a.ckptDir, 'ckpt.safetensors');

  // 5. resume
  if (a.resume) {
    if (!existsSync(ckptPath)) throw new Error(`--resume: no checkpoint at ${ckptPath}`);
    const f = readSafetensors(new Uint8Array(readFileSync(ckptPath)));
    const saved = JSON.parse(f.metadata['prefloop.pretrain']) as { args: PretrainArgs; step: number; tokensSeen: number; elapsedMs: number; rng: number; curve: CurveRow[]; optStep: number; scheduleNotes?: string[] };
    for (const k of RUN_IDENTITY) if (saved.args[k] !== a[k]) throw new Error(`--resume: --${k} was ${saved.args[k]} in the checkpoint, ${a[k]} now`);
    trainer.restore(f.tensors.params.data, { step: saved.optStep, m: f.tensors['adam.m'].data, v: f.tensors['adam.v'].data });
    ({ step, tokensSeen, curve } = saved);
    if (a.steps === 0) a.steps = saved.args.steps; // keep the schedule the run was started with
    scheduleNotes = saved.scheduleNotes ?? [];
    if (a.steps !== saved.args.steps) {
      // A shortened (or lengthened) schedule: the cosine continues from here towards the new end. Recorded so the
      // report says exactly how the weights were made.
      scheduleNotes.push(`resumed at step ${saved.step} with --steps ${a.steps} (was ${saved.args.steps})`);
      log(`[pretrain] schedule changed: ${scheduleNotes.at(-1)}`);
    }
    elapsedBefore = saved.elapsedMs;
    rng.state = saved.rng;
    log(`[pretrain] resumed at step ${step} (${tokensSeen.toLocaleString()} tokens, ${(elapsedBefore / 60000).toFixed(1)} min trained)`);
  }

  const saveCheckpoint = (elapsedMs: number) => {
    mkdirSync(a.ckptDir, { recursive: true });
    const meta = { args: a, step, tokensSeen, elapsedMs, rng: rng.state, curve, optStep: trainer.opt.step, scheduleNotes };
    const bytes = writeSafetensors(
      { params: { dtype: 'F32', shape: [layout.size], data: trainer.params }, 'adam.m': { dtype: 'F32', shape: [layout.size], data: trainer.opt.m }, 'adam.v': { dtype: 'F32', shape: [layout.size], data: trainer.opt.v } },
      { 'prefloop.pretrain': JSON.stringify(meta), 'prefloop.config': JSON.stringify(config) },
    );
    writeFileSync(ckptPath + '.tmp', bytes);
    renameSync(ckptPath + '.tmp', ckptPath);
    writeFileSync(join(a.ckptDir, 'tokenizer.json'), JSON.stringify(tok.toJSON()));
  };

  // 4. train
  const budgetMs = a.budgetMinutes * 60_000;
  const runStart = Date.now();
  // --steps auto: time CALIBRATE short steps (warmup is step-based, so nothing depends on the total yet), then
  // fix the total so that short + long steps fill the budget. The resolved count goes into the checkpoint
  // and report.md, and `--steps <that>` reproduces the run exactly.
  const CALIBRATE = 12;
  const autoSteps = a.steps === 0;
  if (autoSteps) a.steps = 1_000_000;
  let calibStart = 0;
  let longFrom = Math.round(a.steps * (1 - a.longFrac));
  const schedule = { maxLr: a.lr, minLr: a.minLr, warmupSteps: a.warmup, totalSteps: a.steps };
  const bar = new cliProgress.SingleBar(
    { format: 'pretrain |{bar}| {value}/{total} steps | {tokps} tok/s | loss {loss} | held-out {bpb} bpb | ETA {eta_formatted}', etaBuffer: 50, noTTYOutput: true, notTTYSchedule: 30_000, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(a.steps, step, { tokps: '-', loss: '-', bpb: curve.at(-1)?.heldOutBpb.toFixed(3) ?? '-' });
  let emaLoss = NaN, windowTokens = 0, windowStart = Date.now();
  const quickEval = async (T: number) => {
    const e = await trainer.evalNats(heldOut.tokens, T, a.evalTokens);
    const perToken = e.nats / e.count;
    return { loss: perToken, bpb: (perToken * (heldOut.tokens.length / heldOut.bytes)) / Math.LN2 };
  };
  let stoppedBy: 'steps' | 'budget' = 'steps';
  while (step < a.steps) {
    if (Date.now() - runStart >= budgetMs) {
      stoppedBy = 'budget';
      break;
    }
    const long = step >= longFrom;
    const T = long ? a.longSeqLen : a.seqLen, B = long ? a.longBatch : a.batch;
    const lr = cosineLr(step, schedule);
    const { loss } = await trainer.step(sampleStarts(rng, train.tokens.length, B, T), T, lr);
    if (!Number.isFinite(loss)) throw new Error(`loss became ${loss} at step ${step}`);
    step++;
    if (autoSteps && step === 2) calibStart = Date.now();
    if (autoSteps && step === 2 + CALIBRATE) {
      const shortMs = (Date.now() - calibStart) / CALIBRATE;
      // long steps: same tokens per step scaled, ×1.8 for attention over 4× longer windows (measured on wasm)
      const longMs = shortMs * ((a.longBatch * a.longSeqLen) / (a.batch * a.seqLen)) * 1.8;
      const left = budgetMs * 0.92 - (Date.now() - runStart); // ~8% for the periodic evaluations and checkpoints
      a.steps = step + Math.max(1, Math.floor(left / ((1 - a.longFrac) * shortMs + a.longFrac * longMs)));
      schedule.totalSteps = a.steps;
      longFrom = Math.round(a.steps * (1 - a.longFrac));
      bar.setTotal(a.steps);
      log(`\n[pretrain] --steps auto: ${shortMs.toFixed(0)} ms per short step → ${a.steps} steps (long windows from step ${longFrom})`);
    }
    tokensSeen += B * T;
    windowTokens += B * T;
    emaLoss = Number.isNaN(emaLoss) ? loss : 0.95 * emaLoss + 0.05 * loss;
    const tokps = (windowTokens / (Date.now() - windowStart)) * 1000;
    if (windowTokens > 200_000) (windowTokens = 0), (windowStart = Date.now());
    if (step % a.evalEvery === 0 || step === a.steps) {
      const e = await quickEval(T);
      curve.push({ step, tokens: tokensSeen, elapsedS: Math.round((elapsedBefore + Date.now() - runStart) / 1000), lr, trainLoss: emaLoss, heldOutLoss: e.loss, heldOutBpb: e.bpb });
      log(`\n[pretrain] step ${step} tokens ${tokensSeen} T=${T} lr ${lr.toExponential(2)} train ${emaLoss.toFixed(3)} held-out ${e.loss.toFixed(3)} nats/token ≈ ${e.bpb.toFixed(3)} bits/byte`);
    }
    if (step % a.ckptEvery === 0) saveCheckpoint(elapsedBefore + Date.now() - runStart);
    bar.update(step, { tokps: tokps.toFixed(0), loss: emaLoss.toFixed(3), bpb: curve.at(-1)?.heldOutBpb.toFixed(3) ?? '-' });
  }
  bar.stop();
  const trainMs = elapsedBefore + Date.now() - runStart;
  saveCheckpoint(trainMs);
  log(`[pretrain] stopped by ${stoppedBy} at step ${step}/${a.steps} after ${(trainMs / 60000).toFixed(1)} min of training`);

  // 7. final held-out bits per byte over the whole held-out stream, at the long and the short window length
  const evalStart = Date.now();
  const full = async (T: number) => {
    const e = await trainer.evalNats(heldOut.tokens, T);
    return { T, nats: e.nats, tokens: e.count, bitsPerByte: e.nats / Math.LN2 / heldOut.bytes };
  };
  const finalLong = await full(a.longSeqLen);
  // The short-window figure is for comparison only: a prefix, bits/byte via the stream's tokens per byte.
  const prefix = await trainer.evalNats(heldOut.tokens, a.seqLen, 32_768);
  const finalShort = { T: a.seqLen, nats: prefix.nats, tokens: prefix.count, bitsPerByte: (prefix.nats / prefix.count) * (heldOut.tokens.length / heldOut.bytes) / Math.LN2 };
  log(`[pretrain] held-out: ${finalLong.bitsPerByte.toFixed(4)} bits/byte at T=${a.longSeqLen}, ${finalShort.bitsPerByte.toFixed(4)} at T=${a.seqLen} (${((Date.now() - evalStart) / 1000).toFixed(0)} s)`);
  const params = new Float32Array(trainer.params);
  await trainer.close();

  // samples from the main thread's own model
  await ensureBackend({ log });
  const model = new GPT(config, { heads });
  writeParams(model, layout, params);
  const prompts = ['The', 'In the morning', 'He said that', 'The committee will', 'She looked at'];
  const samples = prompts.map((p, i) => {
    const out = generate(model, [tok.bosId, ...tok.encode(p)], { maxNewTokens: 80, temperature: 0.8, topK: 40, seed: a.seed + i });
    return { prompt: p, continuation: tok.decode(out) };
  });
  for (const s of samples) log(`[sample] ${s.prompt}|${s.continuation.replace(/\n/g, ' ⏎ ')}`);

  // artifacts: via the exporter (config, tokenizer, safetensors, ONNX) when present, else the first three here
  mkdirSync(a.out, { recursive: true });
  const weights = toNamed(layout, params);
  const tokJson = JSON.stringify(tok.toJSON());
  let exported: string;
  try {
    const { exportArtifacts } = await import('./export');
    const r = await exportArtifacts(weights, config, tokJson, a.out);
    exported = `exportArtifacts: ${Object.keys(r.files).join(', ')} (version ${r.version})`;
  } catch (err) {
    writeFileSync(join(a.out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
    writeFileSync(join(a.out, 'tokenizer.json'), tokJson);
    writeFileSync(join(a.out, 'model.safetensors'), writeSafetensors(weights, { format: 'pt', 'prefloop.config': JSON.stringify(config) }));
    exported = `config.json, tokenizer.json, model.safetensors only (ONNX export failed: ${err instanceof Error ? err.message : String(err)})`;
  }
  log(`[pretrain] wrote ${resolve(a.out)}: ${exported}`);
  writeFileSync(join(a.out, 'report.md'), report({ a, config, nParams: layout.size, train, heldOut, step, stoppedBy, tokensSeen, trainMs, totalMs: Date.now() - t0, curve, finalLong, finalShort, samples, exported, threads: a.threads, scheduleNotes }));
  model.dispose();
}

interface ReportInput {
  a: PretrainArgs;
  config: ModelConfig;
  nParams: number;
  train: { tokens: Uint16Array; bytes: number };
  heldOut: { tokens: Uint16Array; bytes: number };
  step: number;
  stoppedBy: string;
  tokensSeen: number;
  trainMs: number;
  totalMs: number;
  curve: CurveRow[];
  finalLong: { T: number; nats: number; tokens: number; bitsPerByte: number };
  finalShort: { T: number; nats: number; tokens: number; bitsPerByte: number };
  samples: { prompt: string; continuation: string }[];
  exported: string;
  threads: number;
  scheduleNotes: string[];
}

function report(r: ReportInput): string {
  const flags = Object.entries(r.a)
    .filter(([k]) => k !== 'resume')
    .map(([k, v]) => `--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} ${v}`)
    .join(' ');
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ⏎ ');
  return `# Base model: pretraining report

Written by \`npm run pretrain\` (worker/pretrain.ts). Reproduce with:

\`\`\`sh
npm run pretrain -- ${flags}
\`\`\`
${r.scheduleNotes.length ? `\nThis run was interrupted and resumed (\`--resume\`) with a changed schedule: ${r.scheduleNotes.join('; ')}. The command above runs the final schedule from step 0, so it reproduces a run of the same length and recipe, not these exact weights.\n` : ''}
## Result
- Held-out bits per byte: **${r.finalLong.bitsPerByte.toFixed(4)}** with windows of ${r.finalLong.T} tokens (≈ ${r.finalShort.bitsPerByte.toFixed(3)} with windows of ${r.finalShort.T}, on the first ${r.finalShort.tokens} held-out tokens).
  (Total nats over the held-out text / ln 2 / its UTF-8 bytes: ${r.finalLong.nats.toFixed(0)} nats over ${r.finalLong.tokens} tokens, ${r.heldOut.bytes} bytes; every held-out token predicted once, each document from BOS, windows sliding by half their length.)
- Stopped by ${r.stoppedBy} at step ${r.step} of ${r.a.steps}; ${r.tokensSeen.toLocaleString()} training tokens seen (${(r.tokensSeen / r.train.tokens.length).toFixed(2)} epochs of ${r.train.tokens.length.toLocaleString()} tokens).
- Training wall time ${(r.trainMs / 60000).toFixed(1)} min on ${r.threads} worker thread(s); whole run ${(r.totalMs / 60000).toFixed(1)} min; ${(r.tokensSeen / (r.trainMs / 1000)).toFixed(0)} tokens/s on average (including periodic evaluations).
- Model: ${JSON.stringify(r.config)} (${r.nParams.toLocaleString()} parameters). Tokenizer: byte-level BPE, ${r.config.vocabSize} ids, ${(r.train.tokens.length / r.train.bytes).toFixed(3)} tokens per byte on the training text.
- Artifacts: ${r.exported}.

## Loss curve
Held-out figures here are quick estimates on the first ${r.a.evalTokens} held-out tokens at the window length of that step (bits/byte from the stream's mean tokens per byte).

| step | tokens | minutes | lr | train loss (nats/token, EMA) | held-out nats/token | held-out bits/byte (est.) |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${r.curve.map((c) => `| ${c.step} | ${c.tokens.toLocaleString()} | ${(c.elapsedS / 60).toFixed(1)} | ${c.lr.toExponential(2)} | ${c.trainLoss.toFixed(3)} | ${c.heldOutLoss.toFixed(3)} | ${c.heldOutBpb.toFixed(3)} |`).join('\n')}

## Samples
Temperature 0.8, top-k 40, 80 new tokens, after BOS + prompt.

| prompt | continuation |
| --- | --- |
${r.samples.map((s) => `| ${esc(s.prompt)} | ${esc(s.continuation)} |`).join('\n')}
`;
}

if (import.meta.url === `file://${process.argv[1]}` || process.argv[1]?.endsWith('pretrain.ts')) {
  pretrain(parseArgs(process.argv.slice(2))).then(
    () => process.exit(0),
    (err) => {
      log(`[pretrain] failed: ${err instanceof Error ? err.stack : String(err)}`);
      process.exit(1);
    },
  );
}
