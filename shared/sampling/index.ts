// The sampling loop shared by the API (serving) and the worker (PPO rollouts). See engine.ts.
export { GenerationEngine } from './engine';
export type {
  EngineOptions,
  EngineStats,
  FinishReason,
  GenerateRequest,
  GenerateResult,
  PolicySession,
  SamplingTokenizer,
  SequenceResult,
} from './engine';
export { SessionLane, type DecodeLane, type LaneOutput, type LaneShape, type StepDraws, type StepOutput } from './lane';
export { Xoshiro128, randomSeed, type Rng } from './rng';
export { sampleToken, topKIndices, type SampledToken, type SamplingParams } from './sample';
export { StopMatcher } from './stop';
export { IncrementalDecoder } from './detokenize';
