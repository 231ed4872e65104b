// onnxruntime-node behind the policy runtime port. Session options come from shared/onnx-session.ts.
//
// The session runs the step variant of policy.onnx (shared/sampling/step-graph.ts): the same weights and
// inputs, but each run returns only the fed tokens' key/value instead of the whole cache, which this binding
// would otherwise copy into fresh JS buffers on every decode step (the cost that made batching slower than
// no batching). A graph without the exporter's cache pattern is served as it is.
import * as ort from 'onnxruntime-node';
import { ortSessionOptions, type OrtSessionDefaults } from '../../shared/onnx-session';
import { deriveStepGraph } from '../../shared/sampling/step-graph';
import type { LoadedSession, OnnxRuntimePort } from '../policy/onnx-runtime';

export interface NodeOnnxRuntimeOptions {
  /** Serve the step variant of the graph when it can be derived (default true). */
  stepGraph?: boolean;
}

export function nodeOnnxRuntime(overrides: Partial<OrtSessionDefaults> = {}, o: NodeOnnxRuntimeOptions = {}): OnnxRuntimePort {
  const options = ortSessionOptions(overrides);
  return {
    async createSession(onnx: Uint8Array): Promise<LoadedSession> {
      const bytes = (o.stepGraph ?? true) ? (deriveStepGraph(onnx) ?? onnx) : onnx;
      const session = await ort.InferenceSession.create(bytes, options);
      return {
        outputNames: session.outputNames,
        run: (feeds, fetches) => (fetches ? session.run(feeds, fetches) : session.run(feeds)),
        release: () => session.release(),
      };
    },
  };
}
