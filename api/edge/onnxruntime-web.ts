// onnxruntime-web (wasm, CPU) behind the policy runtime port, made to run inside workerd. Plain use fails there
// (measured, ../shared/ENVIRONMENT.md): ORT cannot find its script URL, workerd forbids compiling wasm at run
// time ("Wasm code generation disallowed by embedder"), and `wasmPaths` needs a dynamic import. So: the CPU-only
// build (`onnxruntime-web/wasm`; the default entry pulls a 28 MB WebGPU wasm), its .wasm imported as a module
// (wrangler compiles it at deploy time into a WebAssembly.Module), WebAssembly.instantiate redirected to that
// module when ORT hands it bytes, one thread, no proxy worker, and a placeholder wasmBinary so ORT skips its fetch.
import * as ort from 'onnxruntime-web/wasm';
import { ortSessionOptions, type OrtSessionDefaults } from '../../shared/onnx-session';
import type { LoadedSession, OnnxRuntimePort } from '../policy/onnx-runtime';

let installed: WebAssembly.Module | null = null;
/** ORT's wasm linear memory (exported, or imported as the threaded build does). */
function findMemory(instance: WebAssembly.Instance, imports: WebAssembly.Imports | undefined): WebAssembly.Memory | null {
  const candidates = [...Object.values(instance.exports), ...Object.values(imports ?? {}).flatMap((m) => Object.values(m))];
  return (candidates.find((v) => v instanceof WebAssembly.Memory) as WebAssembly.Memory | undefined) ?? null;
}

/** Points ORT at the precompiled module; idempotent (one ORT instance per isolate). */
function install(wasm: WebAssembly.Module): void {
  if (installed) return;
  installed = wasm;
  const original = WebAssembly.instantiate.bind(WebAssembly) as (...a: unknown[]) => Promise<unknown>;
  (WebAssembly as { instantiate: unknown }).instantiate = (source: unknown, imports?: WebAssembly.Imports) => {
    if (source instanceof WebAssembly.Module) return original(source, imports);
    // ORT passes its placeholder bytes: instantiate the precompiled module instead, in the {module, instance}
    // shape a bytes call returns.
    return original(wasm, imports).then((instance) => {
      // Left where bench/edge.ts reads it over the inspector: the isolate's memory limit counts it.
      (globalThis as { __prefloopOrtMemory?: WebAssembly.Memory | null }).__prefloopOrtMemory = findMemory(instance as WebAssembly.Instance, imports);
      return { module: wasm, instance };
    });
  };
  ort.env.wasm.numThreads = 1; // workerd has no SharedArrayBuffer workers
  ort.env.wasm.proxy = false;
  ort.env.wasm.wasmBinary = new Uint8Array([0]);
}

/** An OnnxRuntimePort over onnxruntime-web; `wasm` is `ort-wasm-simd-threaded.wasm` imported as a module. */
export function webOnnxRuntime(wasm: WebAssembly.Module, overrides: Partial<OrtSessionDefaults> = {}): OnnxRuntimePort {
  install(wasm);
  const { graphOptimizationLevel, executionMode } = ortSessionOptions(overrides);
  return {
    async createSession(onnx: Uint8Array): Promise<LoadedSession> {
      const session = await ort.InferenceSession.create(onnx, { executionProviders: ['wasm'], graphOptimizationLevel, executionMode });
      return {
        run: (feeds) => session.run(feeds as never) as never,
        release: () => session.release(),
      };
    },
  };
}
