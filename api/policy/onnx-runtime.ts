// The policy runtime port: how the portable API gets an ONNX session without importing a runtime. The Node
// entry injects onnxruntime-node (api/adapters/onnxruntime-node.ts); a workerd entry injects onnxruntime-web.
import type { PolicySession } from '../../shared/sampling';

export interface LoadedSession extends PolicySession {
  /** Frees the native session; called once no request uses it any more. */
  release(): Promise<void>;
}

export interface OnnxRuntimePort {
  /** A session over the given policy.onnx bytes; rejects for a file the runtime cannot load. */
  createSession(onnx: Uint8Array): Promise<LoadedSession>;
}
