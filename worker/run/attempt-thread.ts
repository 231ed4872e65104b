// One training attempt in its own thread. TF.js (wasm) and the ONNX exports run long synchronous stretches;
// in the runner's thread they would starve its timers, so the lease heartbeat would not fire and a run longer
// than the lease would lose it (seen: a 60 s lease lost during the RM stage). Here the runner's thread stays
// free for heartbeats, SIGTERM and long polls; this thread gets the payload, an abort message when the lease
// is lost, and reports logs and the outcome.
import { parentPort, workerData } from 'node:worker_threads';
import { createNodeArtifactStore } from '../../api/adapters/artifact-stores';
import { openDatabase } from '../../api/database';
import { ensureBackend } from '../backend';
import type { JobHelpers, Logger } from '../queue-runner';
import type { WorkerEnv } from './env';
import type { BatchDb } from './publish';
import { type TrainingJob, trainingRunHandler } from './training-run';

export interface AttemptInit {
  env: WorkerEnv;
  payload: TrainingJob;
  job: JobHelpers['job'];
}
export type AttemptMessage =
  | { kind: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { kind: 'done'; error: string | null };

const init = workerData as AttemptInit;
const port = parentPort!;
const post = (m: AttemptMessage) => port.postMessage(m);
const log: Logger = (level, msg, fields) => post({ kind: 'log', level, msg, fields });
const abort = new AbortController();
port.on('message', (m: { kind: 'abort' }) => {
  if (m.kind === 'abort') abort.abort();
});

let error: string | null = null;
let close = () => {};
try {
  await ensureBackend({ prefer: init.env.PREFLOOP_TF_BACKEND, log: () => undefined });
  const opened = await openDatabase(init.env.PREFLOOP_DB, { migrate: false });
  close = opened.close;
  const handler = trainingRunHandler({
    db: opened.db as unknown as BatchDb,
    artifacts: createNodeArtifactStore(),
    now: Date.now,
    artifactRoot: init.env.PREFLOOP_ARTIFACT_ROOT,
    baseUri: init.env.PREFLOOP_BASE_URI,
    maxRunSeconds: init.env.PREFLOOP_MAX_RUN_SECONDS,
  });
  await handler(init.payload, { job: init.job, signal: abort.signal, log });
} catch (e) {
  error = e instanceof Error ? (e.stack ?? e.message) : String(e);
} finally {
  close();
}
post({ kind: 'done', error });
port.close();
