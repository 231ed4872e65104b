// onnxruntime-node behind the policy runtime port. Session options come from shared/onnx-session.ts.
//
// The session runs the step variant of policy.onnx (shared/sampling/step-graph.ts): the same weights and
// inputs, but each run returns only the fed tokens' key/value instead of the whole cache, which this binding
// would otherwise copy into fresh JS buffers on every decode step (the cost that made batching slower than
// no batching). A graph without the exporter's cache pattern is served as it is.
//
// Two cores: onnxruntime-node runs a session synchronously on the JS thread (its run promise only defers the
// call), so a run blocks sampling and HTTP. Two ways to use the second core: a session in a worker thread
// (`workerLanes`, worker-lane.ts), which the engine uses as a second decode lane so one lane's run overlaps the
// other's sampling; and intra-op threads, which cost more than they give on small runs (a batch-1 decode step)
// and pay off on big ones, so big runs (many rows, or a prefill) on this thread go to a second session over the
// same bytes with `wideThreads` threads, spinning off, so the idle pool thread does not burn the core the HTTP
// side needs. bench:serve measures the combinations.
import * as ort from 'onnxruntime-node';
import { POLICY_INPUTS, stepKeyName } from '../../shared/policy-io';
import { ortSessionOptions, type OrtSessionDefaults } from '../../shared/onnx-session';
import { deriveStepGraph } from '../../shared/sampling/step-graph';
import type { LoadedSession, OnnxRuntimePort } from '../policy/onnx-runtime';
import { WorkerLane } from './worker-lane';

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
  /**
   * Sessions in worker threads offered to the engine as extra decode lanes; 0 = decode on this thread only.
   * Default PREFLOOP_ORT_WORKER_LANES or 2: under load the engine leaves this thread to serve (engine.ts), so one
   * lane per core runs the graph (bench:serve measures 0 to 3).
   */
  workerLanes?: number;
  /** Rows a worker lane takes per row of the main-thread lane (DecodeLane.share). Default PREFLOOP_ORT_WORKER_LANE_SHARE or 1. */
  workerLaneShare?: number;
}

export function nodeOnnxRuntime(overrides: Partial<OrtSessionDefaults> = {}, o: NodeOnnxRuntimeOptions = {}): OnnxRuntimePort {
  const options = ortSessionOptions(overrides);
  const wideThreads = o.wideThreads ?? (Number(process.env.PREFLOOP_ORT_WIDE_THREADS) || 1);
  const wideFrom = o.wideFromTokens ?? 8;
  const envLanes = process.env.PREFLOOP_ORT_WORKER_LANES;
  const workerLanes = o.workerLanes ?? (envLanes !== undefined && envLanes !== '' ? Number(envLanes) : 2);
  const laneShare = o.workerLaneShare ?? (Number(process.env.PREFLOOP_ORT_WORKER_LANE_SHARE) || 1);
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
      const usesStep = narrow.outputNames.includes(stepKeyName(0));
      let lanes: WorkerLane[] = [];
      try {
        lanes = await Promise.all(Array.from({ length: workerLanes }, () => WorkerLane.start({ onnx: bytes, options }, usesStep, laneShare)));
      } catch (e) {
        await Promise.all(lanes.map((l) => l.terminate()));
        await narrow.release();
        await wide?.release();
        throw e;
      }
      let lent = false;
      return {
        outputNames: narrow.outputNames,
        // One engine per session (api/policy/loader.ts): the lanes hold one batch's cache each, so lend them once.
        offThreadLanes: lanes.length
          ? (shape) => {
              if (lent) return [];
              lent = true;
              return lanes.map((l) => l.configure(shape));
            }
          : undefined,
        run: (feeds, fetches) => {
          const s = pick(feeds);
          return fetches ? s.run(feeds, fetches) : s.run(feeds);
        },
        release: async () => {
          await Promise.all(lanes.map((l) => l.terminate()));
          await narrow.release();
          await wide?.release();
        },
      };
    },
  };
}
