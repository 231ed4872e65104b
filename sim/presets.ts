// The simulation's settings: the default (issue 6's targets are stated for it) and the quick preset (a tiny
// base model, fewer events; it runs in the test suite). Presets list only what changes.
import { QUICK_PRESET, type TrainingOverrides } from '../shared/training-config';
import type { SimConfig } from './loop';
import { defaultPopulation } from './population';

export type SimSettings = Omit<SimConfig, 'preference' | 'baseModelDir' | 'log' | 'dataDir' | 'keepData'>;

export const DEFAULT_SETTINGS: SimSettings = {
  maxEvents: 2000,
  eventsPerRun: 250,
  maxWallS: 20 * 60,
  runTimeoutS: 15 * 60,
  evalPrompts: 400,
  population: defaultPopulation,
  eval: { maxTokens: defaultPopulation.maxTokens, temperature: defaultPopulation.temperature, concurrency: 16 },
  // The worker's defaults (shared/training-config.ts) with PPO's response length matched to what users get.
  training: { ppo: { responseLength: defaultPopulation.maxTokens } },
  seed: 1,
};

const quickTraining: TrainingOverrides = {
  ...QUICK_PRESET,
  ppo: { ...QUICK_PRESET.ppo, responseLength: 16 },
};

export const QUICK_SETTINGS: SimSettings = {
  ...DEFAULT_SETTINGS,
  maxEvents: 600,
  eventsPerRun: 150,
  maxWallS: 4 * 60,
  runTimeoutS: 4 * 60,
  evalPrompts: 300,
  population: { ...defaultPopulation, maxTokens: 16 },
  eval: { ...DEFAULT_SETTINGS.eval, maxTokens: 16 },
  training: quickTraining,
};
