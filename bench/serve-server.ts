// Child process of bench/serve.ts: the real API (startServer + the Node serving ports) on a fresh database,
// serving the model in BENCH_MODEL_DIR as the base policy, rate limit off. Prints one JSON line {url} when
// ready; stops on the message 'stop', reports its CPU time on 'cpu'. BENCH_MAX_BATCH_ROWS=1 turns cross-request
// batching off (comparison); PREFLOOP_ORT_WORKER_LANES and PREFLOOP_ORT_WIDE_THREADS reach the onnxruntime adapter.
import { nodeServingPorts } from '../api/adapters/node-serving';
import { performance } from 'node:perf_hooks';
import { startServer } from '../api/server';

const server = await startServer({
  dbPath: process.env.BENCH_DB!,
  port: 0,
  apiKey: process.env.BENCH_KEY!,
  settings: { rateLimit: { requestsPerSecond: 0, burst: 1 } },
  ports: nodeServingPorts({
    baseModelDir: process.env.BENCH_MODEL_DIR!,
    artifactsDir: process.env.BENCH_ARTIFACTS!,
    maxBatchRows: Number(process.env.BENCH_MAX_BATCH_ROWS) || 64,
    log: () => undefined,
  }),
});
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
process.on('message', (m) => {
  if (m === 'stop') void server.close().then(() => process.exit(0));
  // CPU of the whole process (every thread, the decode-lane worker included), for CPU per token.
  // And the event loop's busy time (a synchronous session.run on this thread counts as busy): when it nears the
  // elapsed time, this thread is the bottleneck.
  if (m === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ cpu: u.user + u.system, loopActive: performance.eventLoopUtilization().active * 1000 });
  }
});
