// `npm run worker`: one training worker process. Configuration from the environment (worker/run/env.ts);
// SIGTERM/SIGINT stop it gracefully (the run in progress finishes; ECS allows 120 s, the lease covers a
// longer run: the job is delivered again to another worker and resumes from what was published).
import { parseWorkerEnv } from './run/env';
import { startWorker } from './run/start';

let env;
try {
  env = parseWorkerEnv();
} catch (e) {
  console.error((e as Error).message);
  process.exit(2);
}
const worker = await startWorker(env);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void worker.stop().then(() => process.exit(0));
  });
}
await worker.done;
