import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { type BackendLoaders, selectBackend } from './backend';

/** Loaders that pretend only `present` packages are installed and record what was tried. */
function fakeLoaders(present: string[], failingBackends: string[] = []) {
  const tried: string[] = [];
  const loaders: BackendLoaders = {
    importModule: async (s) => {
      tried.push(s);
      if (!present.includes(s)) throw Object.assign(new Error(`Cannot find module '${s}'`), { code: 'MODULE_NOT_FOUND' });
      return {};
    },
    setBackend: async (n) => !failingBackends.includes(n),
  };
  return { loaders, tried };
}

describe('backend selection', () => {
  it('prefers node-gpu, then node, then wasm, then cpu, and logs the choice', async () => {
    const cases: [string[], string[], string][] = [
      [['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm'], [], 'node-gpu'],
      [['@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm'], [], 'node'],
      [['@tensorflow/tfjs-backend-wasm'], [], 'wasm'],
      [[], [], 'cpu'],
      [['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-backend-wasm'], ['tensorflow'], 'wasm'], // installed but no CUDA
    ];
    for (const [present, failing, expected] of cases) {
      const { loaders, tried } = fakeLoaders(present, failing);
      const logs: string[] = [];
      const choice = await selectBackend({ loaders, log: (l) => logs.push(l) });
      expect(choice.name).toBe(expected);
      expect(logs).toHaveLength(1);
      expect(logs[0]).toContain(`using ${expected}`);
      const order = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node', '@tensorflow/tfjs-backend-wasm'];
      expect(tried).toEqual(order.slice(0, Math.min(order.length, choice.skipped.length + 1)));
    }
  });

  it('fails with every reason when nothing initialises', async () => {
    const { loaders } = fakeLoaders([], ['cpu']);
    await expect(selectBackend({ loaders, log: () => {} })).rejects.toThrow(/node-gpu: Cannot find module.*cpu:/);
  });

  it('really selects wasm on this machine (tfjs-node is absent here)', async () => {
    const choice = await selectBackend({ log: () => {} });
    expect(['node-gpu', 'node', 'wasm']).toContain(choice.name);
    expect(tf.getBackend()).toBe(choice.tfBackend);
    expect(tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0]).toBe(11);
  });
});
