// The GPU path of backend selection (worker/backend.ts) with the real TF.js engine, not fakes:
//   - @tensorflow/tfjs-node-gpu absent (this machine: its install script cannot download libtensorflow, so the
//     optional dependency is dropped): the real import fails, node-gpu and node are skipped with their reason,
//     and the log line says so;
//   - a stand-in module in its place that does what tfjs-node-gpu does on import — register a backend named
//     'tensorflow' (here: the cpu kernels under that name) — is chosen, activated and computes; the choice is
//     logged as node-gpu;
//   - a stand-in whose backend cannot initialise (a GPU host without a working CUDA driver) falls through.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type BackendLoaders, defaultLoaders, selectBackend } from './backend';

const GPU = '@tensorflow/tfjs-node-gpu';
const require = createRequire(import.meta.url);
const installed = (() => {
  try {
    require.resolve(GPU);
    return true;
  } catch {
    return false;
  }
})();

// Under node_modules so the stand-in resolves '@tensorflow/tfjs' to the very instance backend.ts uses.
const dir = join(import.meta.dirname, '..', 'node_modules', '.cache', `prefloop-gpu-standin-${process.pid}`);

/** Writes a module that registers a 'tensorflow' backend on import, as tfjs-node-gpu does. */
function standIn(name: string, works: boolean): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.mjs`);
  writeFileSync(
    file,
    `import * as tf from '@tensorflow/tfjs';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
globalThis.__standInImports = (globalThis.__standInImports ?? 0) + 1;
tf.registerBackend('tensorflow', () => {
  ${works ? '' : "throw new Error('CUDA driver version is insufficient for CUDA runtime version');"}
  return new MathBackendCPU();
}, 3);
for (const k of tf.getKernelsForBackend('cpu')) {
  if (!tf.getKernel(k.kernelName, 'tensorflow')) tf.registerKernel({ ...k, backendName: 'tensorflow' });
}
`,
  );
  return pathToFileURL(file).href;
}

/** The real loaders, with tfjs-node-gpu's import redirected to a stand-in module. */
function withStandIn(url: string): BackendLoaders {
  return { ...defaultLoaders, importModule: (s) => (s === GPU ? import(/* @vite-ignore */ url) : defaultLoaders.importModule(s)) };
}

afterEach(async () => {
  try {
    tf.removeBackend('tensorflow'); // findBackend would initialise it first (and log a failing one's error again)
  } catch {
    // not registered
  }
  for (const k of tf.getKernelsForBackend('tensorflow')) tf.unregisterKernel(k.kernelName, 'tensorflow');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tfjs-node-gpu backend selection', () => {
  it.skipIf(installed)('package absent: the real import fails, node-gpu and node are skipped, and the log says why', async () => {
    const logs: string[] = [];
    const choice = await selectBackend({ log: (l) => logs.push(l) });
    expect(choice.name).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(choice.skipped.map((s) => s.name)).toEqual(['node-gpu', 'node']);
    expect(choice.skipped[0].reason).toMatch(/Cannot find (module|package) '@tensorflow\/tfjs-node-gpu'/);
    expect(logs).toEqual(['[backend] using wasm (TF.js backend "wasm"); skipped node-gpu, node']);
  });

  it('a stand-in that registers a "tensorflow" backend on import is chosen as node-gpu, logged, and computes', async () => {
    const logs: string[] = [];
    const choice = await selectBackend({ loaders: withStandIn(standIn('working', true)), log: (l) => logs.push(l) });
    expect(choice).toEqual({ name: 'node-gpu', tfBackend: 'tensorflow', skipped: [] });
    expect(tf.getBackend()).toBe('tensorflow');
    expect(logs).toEqual(['[backend] using node-gpu (TF.js backend "tensorflow")']);
    expect((globalThis as { __standInImports?: number }).__standInImports).toBeGreaterThanOrEqual(1);
    const y = tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]]));
    expect(tf.engine().backendName).toBe('tensorflow');
    expect(y.dataSync()[0]).toBe(11);
  });

  it('a stand-in whose backend cannot initialise (no CUDA driver) falls through to the next working backend', async () => {
    const logs: string[] = [];
    const choice = await selectBackend({ loaders: withStandIn(standIn('no-cuda', false)), log: (l) => logs.push(l) });
    expect(choice.skipped[0]).toEqual({ name: 'node-gpu', reason: "tf.setBackend('tensorflow') returned false" });
    // tfjs-node (CPU libtensorflow) is absent here too; a host that has it would pick it next.
    expect(choice.name).toBe(installed ? choice.name : 'wasm');
    expect(tf.getBackend()).toBe(choice.tfBackend);
    expect(logs).toHaveLength(1);
    expect(logs[0]).toMatch(new RegExp(`^\\[backend\\] using ${choice.name} .*; skipped node-gpu`));
  });
});
