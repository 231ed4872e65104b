// onnxruntime session options every prefloop runtime uses for the policy and reward graphs (the API's sampler
// on onnxruntime-node, onnxruntime-web in workerd, the worker's rollouts and the decode benchmark), kept in
// one runtime-neutral place. The shape matches onnxruntime-common's InferenceSession.SessionOptions subset.

export interface OrtSessionDefaults {
  /** Full graph optimisation: fuses LayerNorm, GELU and MatMul+Add in the hand-built graphs. */
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
  /**
   * Threads inside one operator. Measured by `npm run bench:decode` (bench/results/decode.json,
   * `thread_sweep`): on this 2-core machine one thread beats two for small GPTs, because a decode step's
   * matmuls are too small to repay the hand-off between threads.
   */
  intraOpNumThreads: number;
  /** Threads across independent operators; the GPT graph is one chain, so more than one only adds overhead. */
  interOpNumThreads: number;
  /** 'sequential' matches one chain of operators. */
  executionMode: 'sequential' | 'parallel';
}

export const ORT_SESSION_DEFAULTS: OrtSessionDefaults = {
  graphOptimizationLevel: 'all',
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
};

/** The defaults with overrides (e.g. a thread count from configuration); unknown keys are refused by the type. */
export function ortSessionOptions(overrides: Partial<OrtSessionDefaults> = {}): OrtSessionDefaults {
  return { ...ORT_SESSION_DEFAULTS, ...overrides };
}
