// onnxruntime-node behind the policy runtime port. Session options come from shared/onnx-session.ts (one
// intra-op thread: measured faster than two for these small GPTs on 2 cores; bench:serve re-measures).
import * as ort from 'onnxruntime-node';
import { ortSessionOptions, type OrtSessionDefaults } from '../../shared/onnx-session';
import type { LoadedSession, OnnxRuntimePort } from '../policy/onnx-runtime';

export function nodeOnnxRuntime(overrides: Partial<OrtSessionDefaults> = {}): OnnxRuntimePort {
  const options = ortSessionOptions(overrides);
  return {
    async createSession(onnx: Uint8Array): Promise<LoadedSession> {
      const session = await ort.InferenceSession.create(onnx, options);
      return {
        run: (feeds) => session.run(feeds),
        release: () => session.release(),
      };
    },
  };
}
