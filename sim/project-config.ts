// Project settings the simulation needs, set over the admin API: the scheduler threshold (a run every N new
// feedback events) and the training overrides (e.g. the quick preset).
import type { TrainingOverrides } from '../shared/training-config';
import type { PrefloopClient } from './client';

export interface ProjectSettings {
  minNewFeedback: number;
  training: TrainingOverrides;
}

export async function configureProject(client: PrefloopClient, s: ProjectSettings): Promise<void> {
  await client.request('PUT', '/v1/training-config', { schedule: { minNewFeedback: s.minNewFeedback }, training: s.training });
}
