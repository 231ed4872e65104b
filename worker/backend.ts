// Picks the fastest TF.js backend this machine can run, once, at start: tfjs-node-gpu (CUDA), tfjs-node
// (libtensorflow, all cores), then wasm (SIMD, one thread under Node: 45× faster than cpu here), then the
// pure-JS cpu backend. tfjs-node and -node-gpu are optionalDependencies: where their native download fails
// they are absent and import() throws, so each step falls through. The choice is logged.
import * as tf from '@tensorflow/tfjs';
import { installWasmKernelFixes } from './backend-wasm-fixes';

export type BackendName = 'node-gpu' | 'node' | 'wasm' | 'cpu';

/** How each candidate is loaded; tests inject fakes to simulate absent or present packages. */
export interface BackendLoaders {
  /** Imports a package for its side effect of registering a backend. */
  importModule: (specifier: string) => Promise<unknown>;
  /** Activates a registered TF.js backend; resolves false if it cannot initialise. */
  setBackend: (name: string) => Promise<boolean>;
}

export interface BackendChoice {
  name: BackendName;
  /** The TF.js backend name now active (tensorflow, wasm, cpu). */
  tfBackend: string;
  /** Why the faster candidates were skipped. */
  skipped: { name: BackendName; reason: string }[];
}

const CANDIDATES: { name: BackendName; module: string | null; tfBackend: string }[] = [
  { name: 'node-gpu', module: '@tensorflow/tfjs-node-gpu', tfBackend: 'tensorflow' },
  { name: 'node', module: '@tensorflow/tfjs-node', tfBackend: 'tensorflow' },
  { name: 'wasm', module: '@tensorflow/tfjs-backend-wasm', tfBackend: 'wasm' },
  { name: 'cpu', module: null, tfBackend: 'cpu' },
];

export const defaultLoaders: BackendLoaders = {
  importModule: (s) => import(/* @vite-ignore */ s),
  setBackend: (n) => tf.setBackend(n),
};

export interface SelectOptions {
  loaders?: BackendLoaders;
  /** Skip candidates faster than this one (e.g. 'wasm' to pin a benchmark). */
  prefer?: BackendName;
  log?: (line: string) => void;
}

let selected: Promise<BackendChoice> | null = null;

/** Selects and activates a backend; later calls return the first choice (the process has one engine). */
export function ensureBackend(opts: SelectOptions = {}): Promise<BackendChoice> {
  selected ??= selectBackend(opts);
  return selected;
}

export async function selectBackend(opts: SelectOptions = {}): Promise<BackendChoice> {
  const loaders = opts.loaders ?? defaultLoaders;
  const log = opts.log ?? ((l: string) => console.error(l));
  const skipped: BackendChoice['skipped'] = [];
  const start = opts.prefer ? CANDIDATES.findIndex((c) => c.name === opts.prefer) : 0;
  for (const c of CANDIDATES.slice(Math.max(0, start))) {
    try {
      if (c.module) await loaders.importModule(c.module);
      if (!(await loaders.setBackend(c.tfBackend))) throw new Error(`tf.setBackend('${c.tfBackend}') returned false`);
      // the stock wasm Slice copies its whole input per call (see backend-wasm-fixes.ts)
      if (c.tfBackend === 'wasm' && loaders === defaultLoaders) installWasmKernelFixes();
      log(`[backend] using ${c.name} (TF.js backend "${c.tfBackend}")${skipped.length ? `; skipped ${skipped.map((s) => s.name).join(', ')}` : ''}`);
      return { name: c.name, tfBackend: c.tfBackend, skipped };
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      skipped.push({ name: c.name, reason });
    }
  }
  throw new Error(`no TF.js backend could be initialised: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}
