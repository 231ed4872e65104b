// Child process of bench/ingest.ts: the real API (startServer) on a fresh database, rate limit off, so the load
// generator in the parent and the server each get a core. Prints one JSON line {url} when ready.
import { startServer } from '../api/server';

const server = await startServer({
  dbPath: process.env.BENCH_DB!,
  port: 0,
  apiKey: process.env.BENCH_KEY!,
  settings: { rateLimit: { requestsPerSecond: 0, burst: 1 } },
});
process.stdout.write(`${JSON.stringify({ url: server.url })}\n`);
process.on('message', (m) => {
  if (m === 'stop') void server.close().then(() => process.exit(0));
  // CPU time used so far (user + system, µs): the parent divides per-phase differences by requests served, a cost
  // figure that stays meaningful when other processes share the cores.
  if (m === 'cpu') {
    const u = process.cpuUsage();
    process.send!({ cpuUs: u.user + u.system });
  }
});
