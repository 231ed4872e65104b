// `npm start`: parse the environment, start the API on the embedded database, say how to call it.
import { loadEnv } from './env';
import { nodeServingPorts } from './adapters/node-serving';
import { startServer } from './server';
import { startWorkerProcess, type WorkerProcess } from './worker-process';

const env = loadEnv();
const server = await startServer({
  dbPath: env.PREFLOOP_DB,
  host: env.HOST,
  port: env.PORT,
  apiKey: env.PREFLOOP_API_KEY,
  generateKeyOnFirstStart: true,
  // Policies: artifacts under PREFLOOP_ARTIFACTS (./data/artifacts), base model in PREFLOOP_BASE_MODEL_DIR
  // (./models/base), live version re-read every PREFLOOP_POLICY_POLL_MS (2000).
  ports: nodeServingPorts(),
  settings: {
    bodyLimitBytes: env.PREFLOOP_BODY_LIMIT_BYTES,
    rateLimit: { requestsPerSecond: env.PREFLOOP_RATE_LIMIT_RPS, burst: env.PREFLOOP_RATE_LIMIT_BURST },
    authCacheTtlMs: env.PREFLOOP_AUTH_CACHE_TTL_MS,
  },
});

const key = env.PREFLOOP_API_KEY ?? server.generatedKey;
if (server.generatedKey) {
  console.log(`Generated an admin API key for the "default" project (shown once, stored only as a hash):\n\n  ${server.generatedKey}\n`);
  console.log('Keep it: start with PREFLOOP_API_KEY=<that key> next time, or create keys with `npm run cli -- keys create --project default`.\n');
}
console.log(`prefloop API ready on ${server.url} (database ${env.PREFLOOP_DB}); docs at ${server.url}/docs`);
console.log(
  `Try:\n  curl -s ${server.url}/v1/feedback -H 'Authorization: Bearer ${key ?? '<your key>'}' -H 'Content-Type: application/json' \\\n` +
    `    -d '{"type":"thumbs","value":"up","prompt":"Say hi","response":"Hi!"}'`,
);
if (!key) console.log('(No key given: set PREFLOOP_API_KEY, or create one with `npm run cli -- keys create --project default --scopes admin`.)');

// One training worker beside the API (a child process: the API never loads TF.js); PREFLOOP_WORKER=0 turns it off
// (e.g. when workers run elsewhere, on SQS). It uses the same database file.
let worker: WorkerProcess | null = null;
if (process.env.PREFLOOP_WORKER !== '0') {
  worker = startWorkerProcess({ PREFLOOP_DB: env.PREFLOOP_DB });
  console.log('training worker started (set PREFLOOP_WORKER=0 to run the API alone)');
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.all([server.close(), worker?.stop()]).then(() => process.exit(0));
  });
}
