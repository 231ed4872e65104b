// The quick simulation's base model: a tiny GPT (2 layers, width 64, 512-token BPE, ~140 k parameters) trained
// by the real pretraining entry (worker/pretrain.ts) for a fixed number of steps on the Brown training files,
// so it writes English-looking words. It is committed as models/tiny (1.2 MB; `npm run pretrain --
// ${TINY_BASE_ARGS} --out models/tiny` rebuilds it: ~8 minutes on one core, too long to repeat in every clean
// test run). Without it, the same arguments build it once into data/sim/ (gitignored), keyed by the arguments.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '..');

export const TINY_BASE_ARGS: readonly string[] = [
  '--seed', '1337', '--vocab', '512', '--layers', '2', '--heads', '2', '--d-model', '64', '--context', '128',
  '--seq-len', '64', '--long-seq-len', '128', '--long-frac', '0.1', '--batch', '32', '--long-batch', '16',
  '--steps', '2400', '--lr', '3e-3', '--min-lr', '3e-4', '--warmup', '100', '--eval-every', '400', '--eval-tokens', '4096',
  '--ckpt-every', '400', '--threads', '1',
];

/** The committed tiny base (see the header). */
export const COMMITTED_TINY_BASE = join(repoRoot, 'models', 'tiny');

/** models/tiny, else the cached tiny base directory, trained first if missing (~8 minutes on a quiet core). */
export async function ensureTinyBase(cacheRoot = join(repoRoot, 'data', 'sim'), log: (l: string) => void = console.log): Promise<string> {
  if (existsSync(join(COMMITTED_TINY_BASE, 'policy.onnx')) && existsSync(join(COMMITTED_TINY_BASE, 'model.safetensors'))) return COMMITTED_TINY_BASE;
  const key = createHash('sha256').update(TINY_BASE_ARGS.join(' ')).digest('hex').slice(0, 12);
  const dir = join(cacheRoot, `tiny-base-${key}`);
  if (existsSync(join(dir, 'policy.onnx')) && existsSync(join(dir, 'model.safetensors'))) return dir;
  const tmp = `${dir}.tmp-${process.pid}`;
  log(`[sim] training the tiny base model once (cached in ${dir})`);
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/pretrain.ts', ...TINY_BASE_ARGS, '--ckpt-dir', join(tmp, 'ckpt'), '--out', join(tmp, 'model')], {
    cwd: repoRoot,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((r) => child.once('exit', r));
  if (code !== 0) throw new Error(`tiny base pretraining failed (${code}): ${err}`);
  await rm(dir, { recursive: true, force: true });
  await rename(join(tmp, 'model'), dir);
  await rm(tmp, { recursive: true, force: true });
  log(`[sim] tiny base model ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return dir;
}
