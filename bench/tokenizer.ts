// Tokenizer choice, measured: plain bytes vs byte-level BPE, the same GPT trained on Brown for the same CPU
// time, then held-out bits per byte on the same held-out text. Writes bench/results/tokenizer.json; the
// README's Model section quotes it.
//
// "Equal compute" is CPU time of this process (process.cpuUsage), not wall time, so a loaded machine slows
// both runs without biasing the comparison. Training runs in this one thread (the data-parallel trainer with
// threads = 0), windows of T tokens, B windows per step, AdamW with warmup and a linear decay over the budget.
// Held-out evaluation is not charged to the budget.
//
//   npx tsx bench/tokenizer.ts [-- --cpu-seconds 150 --vocab 2048 --eval-files 8]
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseModelConfig } from '../shared/model-config';
import { Tokenizer } from '../shared/tokenizer';
import { ensureBackend } from '../worker/backend';
import { loadBrown } from '../worker/data/brown';
import { initialValues, paramSpecs } from '../worker/model/gpt';
import { trainBpe } from '../worker/train/bpe';
import { layoutOf } from '../worker/train/flat';
import { buildStream, Rng, sampleStarts } from '../worker/train/lm-data';
import { DataParallelTrainer } from '../worker/train/parallel';

const { values: args } = parseArgs({
  options: {
    'cpu-seconds': { type: 'string', default: '150' },
    vocab: { type: 'string', default: '2048' },
    'seq-len': { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    lr: { type: 'string', default: '2e-3' },
    'eval-files': { type: 'string', default: '8' },
    seed: { type: 'string', default: '1337' },
    out: { type: 'string', default: 'bench/results/tokenizer.json' },
  },
});
const budgetS = Number(args['cpu-seconds']), T = Number(args['seq-len']), B = Number(args.batch), maxLr = Number(args.lr), seed = Number(args.seed);
const log = (s: string) => process.stderr.write(`${s}\n`);
const cpuS = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

async function run(name: string, tok: Tokenizer, brown: ReturnType<typeof loadBrown>, evalDocs: { text: string }[]) {
  const t0 = performance.now();
  const train = buildStream(brown.train, tok);
  const heldOut = buildStream(evalDocs, tok);
  const config = parseModelConfig({ vocabSize: tok.vocabSize, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 });
  const heads = { value: false, reward: false };
  const specs = paramSpecs(config, heads);
  const layout = layoutOf(specs);
  const init = new Float32Array(layout.size);
  for (const [i, s] of specs.entries()) init.set(initialValues(s, config, seed), layout.entries[i].offset);
  const trainer = await DataParallelTrainer.create({ config, heads, tokens: train.tokens, threads: 0, initialParams: init });
  const rng = new Rng(seed);
  const warmup = 30;
  const c0 = cpuS(), w0 = performance.now();
  let step = 0, ema = NaN;
  for (;;) {
    const used = (cpuS() - c0) / budgetS;
    if (used >= 1) break;
    const lr = maxLr * Math.min(1, (step + 1) / warmup) * (1 - 0.9 * used);
    const { loss } = await trainer.step(sampleStarts(rng, train.tokens.length, B, T), T, lr);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    step++;
    if (step % 25 === 0) log(`[${name}] step ${step} loss ${ema.toFixed(3)} cpu ${(used * budgetS).toFixed(0)}/${budgetS} s`);
  }
  const cpuUsed = cpuS() - c0, wallUsed = (performance.now() - w0) / 1000;
  const tokens = step * B * T;
  const e = await trainer.evalNats(heldOut.tokens, T);
  await trainer.close();
  const r = {
    tokenizer: name,
    vocab_size: tok.vocabSize,
    params: layout.size,
    tokens_per_byte_train: +(train.tokens.length / train.bytes).toFixed(4),
    tokens_per_byte_held_out: +(heldOut.tokens.length / heldOut.bytes).toFixed(4),
    steps: step,
    training_tokens: tokens,
    training_bytes_equivalent: Math.round(tokens / (train.tokens.length / train.bytes)),
    cpu_seconds: +cpuUsed.toFixed(1),
    wall_seconds: +wallUsed.toFixed(1),
    training_tokens_per_cpu_s: Math.round(tokens / cpuUsed),
    training_tokens_per_wall_s: Math.round(tokens / wallUsed),
    training_bytes_per_cpu_s: Math.round(tokens / (train.tokens.length / train.bytes) / cpuUsed),
    final_train_loss_ema_nats_per_token: +ema.toFixed(4),
    held_out_bits_per_byte: +(e.nats / Math.LN2 / heldOut.bytes).toFixed(4),
    held_out_tokens: e.count,
    held_out_bytes: heldOut.bytes,
    total_wall_seconds: +((performance.now() - t0) / 1000).toFixed(1),
  };
  log(`[${name}] ${JSON.stringify(r)}`);
  return r;
}

async function main() {
  const backend = await ensureBackend({ log });
  const brown = loadBrown();
  const evalDocs = brown.heldOut.slice(0, Number(args['eval-files']));
  const bpeStart = performance.now();
  const bpe = trainBpe(brown.train.map((d) => d.text), Number(args.vocab));
  const bpeTrainS = (performance.now() - bpeStart) / 1000;
  const load = loadavg().map((x) => +x.toFixed(2));
  const results = [await run('bytes', Tokenizer.byteLevel(), brown, evalDocs), await run(`bpe-${bpe.vocabSize}`, bpe, brown, evalDocs)];
  const [bytes, sub] = results;
  const out = {
    benchmark: 'tokenizer-choice',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, loadavg_at_start: load },
    backend: backend.name,
    method:
      `Same GPT (4 layers, 4 heads, d 128; only the vocabulary differs), trained from the same seed in one thread for ${budgetS} CPU-seconds each ` +
      `(process CPU time, so machine load does not bias it), windows of ${T} tokens × ${B}, AdamW peak lr ${maxLr}, 30 warmup steps, linear decay to 10% over the budget. ` +
      `Held-out: the first ${evalDocs.length} held-out Brown files (${sub.held_out_bytes} bytes, the same text for both), every token predicted once, windows of ${T} sliding by ${T / 2}; ` +
      'bits per byte = total nats / ln 2 / UTF-8 bytes.',
    bpe_training_seconds: +bpeTrainS.toFixed(1),
    results,
    bpe_vs_bytes: {
      bytes_of_text_per_cpu_s_ratio: +(sub.training_bytes_per_cpu_s / bytes.training_bytes_per_cpu_s).toFixed(2),
      held_out_bits_per_byte_difference: +(sub.held_out_bits_per_byte - bytes.held_out_bits_per_byte).toFixed(4),
    },
  };
  mkdirSync(join(args.out!, '..'), { recursive: true });
  writeFileSync(args.out!, `${JSON.stringify(out, null, 2)}\n`);
  log(`wrote ${args.out}: bytes ${bytes.held_out_bits_per_byte} bits/byte, ${sub.tokenizer} ${sub.held_out_bits_per_byte} bits/byte after ${budgetS} CPU-s each`);
}

await main();
