// `npm run bench:ingest`: the API in a child process (startServer, a fresh SQLite file), autocannon in this one,
// over loopback. Measures GET /health, single-event POST /v1/feedback and POST /v1/feedback/batch with 100 events,
// then counts the rows in the database: `lost` = events acknowledged with 2xx minus rows found.
// Writes bench/results/ingest.json. Env: BENCH_DURATION_S (per phase, default 10), BENCH_CONNECTIONS (default 50).
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@libsql/client';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
const duration = Number(process.env.BENCH_DURATION_S ?? 10);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const BATCH = 100;
const key = `pfk_bench${'x'.repeat(32)}`;
const dir = mkdtempSync(join(os.tmpdir(), 'prefloop-bench-'));
const dbPath = join(dir, 'bench.db');

const child = fork(join(here, 'ingest-server.ts'), [], {
  execArgv: ['--import', 'tsx'],
  env: { ...process.env, BENCH_DB: dbPath, BENCH_KEY: key },
  stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
});
const url = await new Promise<string>((resolve, reject) => {
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const line = buf.split('\n').find((l) => l.startsWith('{"url"'));
    if (line) resolve(JSON.parse(line).url);
  });
  child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
});

function serverCpuUs(): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (m: { cpuUs: number }) => resolve(m.cpuUs));
    child.send('cpu');
  });
}

/** Runs one autocannon phase and the server CPU it cost (µs per request). */
async function phase(opts: autocannon.Options): Promise<autocannon.Result & { serverCpuUsPerRequest: number }> {
  const before = await serverCpuUs();
  const res = await run(opts);
  const used = (await serverCpuUs()) - before;
  return Object.assign(res, { serverCpuUsPerRequest: Math.round(used / Math.max(1, res.requests.total)) });
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
const single = JSON.stringify({ type: 'thumbs', value: 'up', prompt: 'Write a haiku about the sea', response: 'Waves fold into foam; the gulls argue with the wind; salt on every word.', user_id: 'u_42' });
const batch = JSON.stringify({
  events: Array.from({ length: BATCH }, (_, i) =>
    i % 2 === 0
      ? { type: 'thumbs', value: i % 4 === 0 ? 'up' : 'down', prompt: `Prompt ${i % 10}`, response: `Response number ${i}` }
      : { type: 'comparison', prompt: `Prompt ${i % 10}`, chosen: `Chosen ${i}`, rejected: `Rejected ${i}` },
  ),
});

const summarize = (r: autocannon.Result & { serverCpuUsPerRequest?: number }) => ({
  server_cpu_us_per_request: r.serverCpuUsPerRequest,
  rps: Math.round(r.requests.average),
  p50_ms: r.latency.p50,
  p99_ms: r.latency.p99,
  ok: r['2xx'],
  non_2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
});

console.log(`server ${url}; ${duration} s per phase, ${connections} connections`);
await run({ url: `${url}/health`, connections, duration: 2 }); // warm-up (JIT, connection setup)
const health = await phase({ url: `${url}/health`, connections, duration });
console.log('health', summarize(health));
const singleRes = await phase({ url: `${url}/v1/feedback`, method: 'POST', headers, body: single, connections, duration });
console.log('single', summarize(singleRes));
const batchConnections = Math.max(1, Math.round(connections / 5));
const batchRes = await phase({ url: `${url}/v1/feedback/batch`, method: 'POST', headers, body: batch, connections: batchConnections, duration });
console.log('batch', summarize(batchRes));

child.send('stop');
await new Promise((r) => child.once('exit', r));

// The server closed cleanly; count what it stored. Every 2xx single is one row; every 207 carried BATCH valid events.
const client = createClient({ url: `file:${dbPath}` });
const rows = Number((await client.execute('SELECT count(*) AS n FROM feedback')).rows[0].n);
client.close();
const acknowledged = singleRes['2xx'] + batchRes['2xx'] * BATCH;

const result = {
  timestamp: new Date().toISOString(),
  machine: { cpus: os.cpus().length, cpu_model: os.cpus()[0]?.model, mem_gib: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.release()}`, loadavg_before: os.loadavg() },
  config: { duration_s: duration, connections, batch_connections: batchConnections, batch_size: BATCH },
  health: summarize(health),
  single: summarize(singleRes),
  batch: { ...summarize(batchRes), events_per_s: Math.round(batchRes.requests.average * BATCH) },
  ratio_single_to_health: Number((singleRes.requests.average / health.requests.average).toFixed(3)),
  acknowledged_events: acknowledged,
  rows_found: rows,
  lost: acknowledged - rows,
};
const out = join(here, 'results', 'ingest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ health_rps: result.health.rps, single_rps: result.single.rps, single_p99_ms: result.single.p99_ms, batch_events_per_s: result.batch.events_per_s, ratio_single_to_health: result.ratio_single_to_health, lost: result.lost }));
console.log(`wrote ${out}`);
