// onnxruntime-node behind the policy runtime port. Session options come from shared/onnx-session.ts.
//
// The session runs the step variant of policy.onnx (shared/sampling/step-graph.ts): the same weights and
// inputs, but each run returns only the fed tokens' key/value instead of the whole cache, which this binding
// would otherwise copy into fresh JS buffers on every decode step (the cost that made batching slower than
// no batching). A graph without the exporter's cache pattern is served as it is.
//
// Two cores: onnxruntime-node runs a session synchronously on the JS thread, so the only way a run uses the
// second core is intra-op threads. They cost more than they give on small runs (a batch-1 decode step) and
// pay off on big ones, so big runs (many rows, or a prefill) go to a second session over the same bytes with
// `wideThreads` threads, spinning off, so the idle pool thread does not burn the core the HTTP side needs.
import * as ort from 'onnxruntime-node';
import { POLICY_INPUTS } from '../../shared/policy-io';
import { ortSessionOptions, type OrtSessionDefaults } from '../../shared/onnx-session';
import { deriveStepGraph } from '../../shared/sampling/step-graph';
import type { LoadedSession, OnnxRuntimePort } from '../policy/onnx-runtime';

export interface NodeOnnxRuntimeOptions {
  /** Serve the step variant of the graph when it can be derived (default true). */
  stepGraph?: boolean;
  /**
   * Intra-op threads of the session used for big runs; 1 = a single session. Default
   * PREFLOOP_ORT_WIDE_THREADS or 1 (bench:serve measures both).
   */
  wideThreads?: number;
  /** A run with at least this many tokens (rows × sequence length) goes to the wide session. Default 8. */
  wideFromTokens?: number;
}

export function nodeOnnxRuntime(overrides: Partial<OrtSessionDefaults> = {}, o: NodeOnnxRuntimeOptions = {}): OnnxRuntimePort {
  const options = ortSessionOptions(overrides);
  const wideThreads = o.wideThreads ?? (Number(process.env.PREFLOOP_ORT_WIDE_THREADS) || 1);
  const wideFrom = o.wideFromTokens ?? 8;
  return {
    async createSession(onnx: Uint8Array): Promise<LoadedSession> {
      const bytes = (o.stepGraph ?? true) ? (deriveStepGraph(onnx) ?? onnx) : onnx;
      const narrow = await ort.InferenceSession.create(bytes, options);
      const wide =
        wideThreads > 1 && wideThreads !== options.intraOpNumThreads
          ? await ort.InferenceSession.create(bytes, {
              ...options,
              intraOpNumThreads: wideThreads,
              extra: { session: { intra_op: { allow_spinning: '0' } } },
            })
          : null;
      const pick = (feeds: ort.InferenceSession.FeedsType) => {
        if (!wide) return narrow;
        const dims = feeds[POLICY_INPUTS.inputIds]?.dims;
        return dims && dims[0] * dims[1] >= wideFrom ? wide : narrow;
      };
      return {
        outputNames: narrow.outputNames,
        run: (feeds, fetches) => {
          const s = pick(feeds);
          return fetches ? s.run(feeds, fetches) : s.run(feeds);
        },
        release: async () => {
          await narrow.release();
          await wide?.release();
        },
      };
    },
  };
}
