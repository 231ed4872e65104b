// The worker process's environment, parsed and validated once (zod), then passed down as a typed object.
// Names follow the deployment contract in infra/worker-env.ts.
import { z } from 'zod';

const int = (min: number) => z.coerce.number().int().min(min);

export const WorkerEnvSchema = z.object({
  /** SQLite file the API also uses (WAL: the worker reads while the API writes). */
  PREFLOOP_DB: z.string().min(1).default('./data/prefloop.db'),
  /** A libsql URL instead of a file (e.g. `libsql://...`); wins over PREFLOOP_DB. Migrations are the API's job. */
  PREFLOOP_DATABASE_URL: z.string().min(1).optional(),
  /** Queue adapter: `sql` (the embedded queue, default) or `sqs` (default when PREFLOOP_SQS_QUEUE_URL is set). */
  PREFLOOP_QUEUE: z.enum(['sql', 'sqs']).optional(),
  /** The FIFO training-jobs queue; its redrive policy gives the DLQ and the attempt count. */
  PREFLOOP_SQS_QUEUE_URL: z.string().url().optional(),
  /** Where new artifacts are written: `file://` (under PREFLOOP_ARTIFACTS, ./data/artifacts) or `s3://bucket/prefix/`. */
  PREFLOOP_ARTIFACT_ROOT: z.string().regex(/^[a-z][a-z0-9+.-]*:\/\//i, 'must be an artifact URI such as file:// or s3://bucket/prefix/').default('file://'),
  /** The base model every lineage starts from (the artifact store maps base:// to PREFLOOP_BASE_MODEL_DIR). */
  PREFLOOP_BASE_URI: z.string().min(1).default('base://'),
  /** Ceiling on any run's wall time in seconds (a project's run.maxWallS may be lower). */
  PREFLOOP_MAX_RUN_SECONDS: z.coerce.number().positive().optional(),
  /** Lease per claim; a crashed worker's job comes back after at most this long. */
  PREFLOOP_WORKER_LEASE_MS: int(1000).default(60_000),
  /** Wait between claims on an empty SQL queue. */
  PREFLOOP_WORKER_POLL_MS: int(10).default(1_000),
  /** Scheduler tick period (threshold/cron triggers, recovery); 0 disables the timer. */
  PREFLOOP_SCHEDULER_TICK_MS: int(0).default(60_000),
  /** Id recorded as the lease holder (default host:pid). */
  PREFLOOP_WORKER_ID: z.string().min(1).optional(),
  /** First TF.js backend to try (node-gpu, node, wasm, cpu). */
  PREFLOOP_TF_BACKEND: z.enum(['node-gpu', 'node', 'wasm', 'cpu']).optional(),
});
export type WorkerEnv = z.infer<typeof WorkerEnvSchema>;

export function parseWorkerEnv(source: Record<string, string | undefined> = process.env): WorkerEnv {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = WorkerEnvSchema.safeParse(cleaned);
  if (!parsed.success) throw new Error(parsed.error.issues.map((i) => `invalid environment: ${i.path.join('.')}: ${i.message}`).join('\n'));
  return parsed.data;
}
