// Wires one worker process: database, queue adapter (SQL by default, SQS when configured), artifact store,
// TF.js backend, the training-run handler under the queue runner, and the scheduler tick timer. `stop()` is
// graceful: no new claims, the scheduler timer stops, an in-flight run finishes and records its outcome.
import { hostname } from 'node:os';
import { Worker } from 'node:worker_threads';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createClient } from '@libsql/client';
import { drizzle } from 'drizzle-orm/libsql';
import { createNodeArtifactStore } from '../../api/adapters/artifact-stores';
import { openDatabase } from '../../api/database';
import type { ArtifactStore } from '../../shared/artifact-store';
import type { JobQueue } from '../../shared/queue/contract';
import { SqlJobQueue } from '../../shared/queue/sql-queue';
import { SqsJobQueue } from '../../shared/queue/sqs-queue';
import { schedulerTick } from '../../shared/scheduler';
import * as schema from '../../shared/schema';
import { onTrainingJobFailed, TRAINING_QUEUE, type TrainingQueueDeps } from '../../shared/training-queue';
import { ensureBackend } from '../backend';
import { consoleLogger, type JobHandler, type Logger, runQueue } from '../queue-runner';
import type { AttemptInit, AttemptMessage } from './attempt-thread';
import type { WorkerEnv } from './env';
import type { BatchDb } from './publish';
import { type TrainingJob, trainingRunHandler, type TrainingWorkerDeps } from './training-run';

export interface StartedWorker {
  stop(): Promise<void>;
  readonly done: Promise<void>;
}

export async function startWorker(
  env: WorkerEnv,
  o: {
    log?: Logger;
    artifacts?: ArtifactStore;
    overrides?: Partial<TrainingWorkerDeps>;
    /** Run each attempt in this thread instead of a worker thread (only for runs short enough not to starve
     *  the heartbeat; see attempt-thread.ts). Default false. */
    inProcess?: boolean;
  } = {},
): Promise<StartedWorker> {
  const log = o.log ?? consoleLogger;
  const backend = await ensureBackend({ prefer: env.PREFLOOP_TF_BACKEND, log: (l) => log('info', l) });
  let closeDb = () => {};
  let db: BatchDb;
  if (env.PREFLOOP_DATABASE_URL) {
    const client = createClient({ url: env.PREFLOOP_DATABASE_URL });
    db = drizzle(client, { schema }) as unknown as BatchDb;
    closeDb = () => client.close();
  } else {
    const opened = await openDatabase(env.PREFLOOP_DB);
    db = opened.db as unknown as BatchDb;
    closeDb = opened.close;
  }

  const useSqs = (env.PREFLOOP_QUEUE ?? (env.PREFLOOP_SQS_QUEUE_URL ? 'sqs' : 'sql')) === 'sqs';
  let queue: JobQueue<TrainingJob>;
  if (useSqs) {
    if (!env.PREFLOOP_SQS_QUEUE_URL) throw new Error('PREFLOOP_QUEUE=sqs needs PREFLOOP_SQS_QUEUE_URL');
    queue = await SqsJobQueue.connect<TrainingJob>(new SQSClient({}), env.PREFLOOP_SQS_QUEUE_URL);
  } else {
    queue = new SqlJobQueue<TrainingJob>(db, { queue: TRAINING_QUEUE });
  }
  const queueDeps: TrainingQueueDeps = { db, queue: queue as JobQueue<never>, now: Date.now };

  let ticking: Promise<unknown> | null = null;
  const tick = async () => {
    if (ticking) return; // one tick at a time per process; concurrent ticks elsewhere are safe anyway
    ticking = schedulerTick(queueDeps)
      .then((r) => {
        if (r.enqueued.length || r.recovery.requeued.length || r.recovery.abandoned.length || r.recovery.deadRunsFailed.length) log('info', 'scheduler tick', { ...r });
      })
      .catch((e) => log('error', 'scheduler tick failed', { error: String(e) }))
      .finally(() => (ticking = null));
    await ticking;
  };

  const deps: TrainingWorkerDeps = {
    db,
    artifacts: o.artifacts ?? createNodeArtifactStore(),
    now: Date.now,
    artifactRoot: env.PREFLOOP_ARTIFACT_ROOT,
    baseUri: env.PREFLOOP_BASE_URI,
    maxRunSeconds: env.PREFLOOP_MAX_RUN_SECONDS,
    ...o.overrides,
  };
  const workerId = env.PREFLOOP_WORKER_ID ?? `${hostname()}:${process.pid}`;
  const inProcess = trainingRunHandler(deps, tick);
  const handler: JobHandler<TrainingJob> = async (payload, helpers) => {
    if (o.inProcess || 'kind' in payload) return inProcess(payload, helpers);
    return runInThread(env, payload, helpers);
  };
  const runner = runQueue<TrainingJob>(queue, handler, {
    workerId,
    concurrency: 1,
    leaseMs: env.PREFLOOP_WORKER_LEASE_MS,
    pollMs: env.PREFLOOP_WORKER_POLL_MS,
    waitMs: useSqs ? 20_000 : 0,
    onFailed: onTrainingJobFailed(queueDeps) as never,
    log,
  });
  const timer = env.PREFLOOP_SCHEDULER_TICK_MS > 0 ? setInterval(() => void tick(), env.PREFLOOP_SCHEDULER_TICK_MS) : null;
  timer?.unref?.();
  log('info', 'worker started', { workerId, queue: useSqs ? 'sqs' : 'sql', backend: backend.name, artifactRoot: env.PREFLOOP_ARTIFACT_ROOT });

  let stopping: Promise<void> | null = null;
  const stop = () =>
    (stopping ??= (async () => {
      if (timer) clearInterval(timer);
      await runner.stop();
      await ticking;
      closeDb();
      log('info', 'worker stopped', { workerId });
    })());
  return { stop, done: runner.done };
}

/** One attempt in a worker thread (attempt-thread.ts): resolves or rejects as the handler there did. */
function runInThread(env: WorkerEnv, payload: TrainingJob, helpers: Parameters<JobHandler<TrainingJob>>[1]): Promise<void> {
  const init: AttemptInit = { env, payload, job: helpers.job };
  const w = new Worker(new URL('./attempt-thread-boot.mjs', import.meta.url), { workerData: init });
  const onAbort = () => w.postMessage({ kind: 'abort' });
  helpers.signal.addEventListener('abort', onAbort, { once: true });
  return new Promise<void>((resolve, reject) => {
    let outcome: string | null | undefined;
    w.on('message', (m: AttemptMessage) => {
      if (m.kind === 'log') helpers.log(m.level, m.msg, m.fields);
      else outcome = m.error;
    });
    w.once('error', (e) => {
      outcome ??= e instanceof Error ? (e.stack ?? e.message) : String(e);
    });
    w.once('exit', (code) => {
      helpers.signal.removeEventListener('abort', onAbort);
      if (outcome === null) resolve();
      else reject(new Error(outcome ?? `training thread exited with code ${code} before reporting`));
    });
  });
}
