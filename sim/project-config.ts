// Project settings the simulation needs: the training overrides (e.g. the quick preset) over the admin API
// (PUT /v1/config/training), and the scheduler threshold (a run every N new feedback events).
//
// The schedule (projects.config.schedule, shared/scheduler.ts) has no HTTP route yet, so it is written the way
// the admin CLI writes projects: straight into the service's database file, before any feedback arrives. This
// is operator set-up, like creating the project; the simulated users themselves only ever use the REST API.
import { createClient } from '@libsql/client';
import type { TrainingOverrides } from '../shared/training-config';
import type { PrefloopClient } from './client';

export interface ProjectSettings {
  minNewFeedback: number;
  training: TrainingOverrides;
}

export async function configureProject(client: PrefloopClient, dbPath: string, projectId: string, s: ProjectSettings): Promise<void> {
  await client.request('PUT', '/v1/config/training', s.training);
  const db = createClient({ url: `file:${dbPath}` });
  try {
    const r = await db.execute({
      sql: `UPDATE projects SET config = json_set(coalesce(config, '{}'), '$.schedule', json(?)) WHERE id = ?`,
      args: [JSON.stringify({ minNewFeedback: s.minNewFeedback }), projectId],
    });
    if (r.rowsAffected !== 1) throw new Error(`no project ${projectId} to configure`);
  } finally {
    db.close();
  }
}
