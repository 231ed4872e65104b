// `npm run bench:ingest`: the API in a child process (startServer, a fresh SQLite file), autocannon in this one,
// over loopback on the same machine (so the load generator and the server share its cores: stated in the JSON).
// Measures GET /health, single-event POST /v1/feedback and POST /v1/feedback/batch with 100 events, each after a
// short warm-up of the same route (JIT, connection set-up).
//
// `lost` is exact: every 2xx response body is read for the ids the server acknowledged (the record's id; each
// batch item with status 200/201), and after the server has closed, lost = distinct acknowledged ids minus those of
// them found in the database. Rows nobody saw acknowledged (requests still in flight when autocannon ended a phase
// and dropped the connection) are counted apart as `rows_unacknowledged`: they are not losses.
//
// Server CPU time per request (from the child's process.cpuUsage) is the cost figure that stays meaningful when
// other jobs share the cores; wall-clock rps is only meaningful on a quiet machine (loadavg is recorded).
// Throughput is each route's capacity: /health and single events run at every connection count of BENCH_CONNECTIONS
// (default 50, 100 and 200) and each route's figures are those of the count that gave it the most requests per
// second; `by_connections` keeps every level. Why a sweep: /health is CPU-bound from 50 connections on, but a single
// event waits for its group commit (api/group-commit.ts), so at 50 connections the server sat ~1/3 idle and the
// single route's req/s still rose with the connection count (2026-12-02: 13.7 k at 20, 16.9–17.4 k at 50, 19.9–21.1 k
// at 100, 20.6 k at 200, against 59–68 k for /health at each); a ratio taken at one count compared a
// latency-bound route with a CPU-bound one.
// Writes bench/results/ingest.json. Env: BENCH_DURATION_S (per route and connection count, default 15), BENCH_ROUNDS
// (every route and count runs once per round, BENCH_DURATION_S / BENCH_ROUNDS each, default 3), BENCH_CONNECTIONS
// (health and single, comma-separated, default 50,100,200), BENCH_BATCH_CONNECTIONS (default 10), BENCH_CPU_PROF=<dir>
// (one .cpuprofile per phase; the event-loop thread only), BENCH_SERVER_FLAGS (extra V8 flags for the server, below).
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@libsql/client';
import autocannon from 'autocannon';

const here = dirname(fileURLToPath(import.meta.url));
/**
 * Extra V8 flags for the server process (BENCH_SERVER_FLAGS, space-separated; none by default, as `npm start`),
 * recorded in the JSON. Tried: --max-semi-space-size=64 (a larger young generation) gave 24.5 against 25.6 µs of
 * server CPU per batched event and 111 against 109 µs per single event in back-to-back runs under load ~7: no
 * difference worth a flag.
 */
const SERVER_NODE_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(' ').filter(Boolean);
const duration = Number(process.env.BENCH_DURATION_S ?? 15);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const connectionLevels = (process.env.BENCH_CONNECTIONS ?? '50,100,200').split(',').map(Number);
const batchConnections = Number(process.env.BENCH_BATCH_CONNECTIONS ?? 10);
const warmupS = Number(process.env.BENCH_WARMUP_S ?? 2);
const profileDir = process.env.BENCH_CPU_PROF;
const BATCH = 100;
const key = `pfk_bench${'x'.repeat(32)}`;
const dir = mkdtempSync(join(os.tmpdir(), 'prefloop-bench-'));
const dbPath = join(dir, 'bench.db');
const loadavgBefore = os.loadavg();
if (profileDir) mkdirSync(profileDir, { recursive: true });

const child = fork(join(here, 'ingest-server.ts'), [], {
  execArgv: [...SERVER_NODE_FLAGS, '--import', 'tsx'],
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

/** Sends `message` and resolves with the first reply that has `field` (the whole reply). */
function askReply(message: unknown, field: string): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const on = (m: Record<string, unknown>) => {
      if (m && field in m) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
    child.send(message as string);
  });
}
const ask = async <T>(message: unknown, field: string): Promise<T> => (await askReply(message, field))[field] as T;
/** Server CPU so far: the whole process, and its event-loop thread alone (null without /proc). */
const serverCpu = async () => {
  const m = await askReply('cpu', 'cpuUs');
  return { all: m.cpuUs as number, main: m.mainThreadCpuUs as number | null };
};
const clientCpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

type Measured = autocannon.Result & { serverCpuUs: number; serverMainThreadCpuUs: number | null; clientCpuUs: number };

/** Runs one autocannon phase and measures the CPU time it cost the server and this (client) process. */
async function phase(name: string, opts: autocannon.Options): Promise<Measured> {
  if (profileDir) await ask({ profile: name }, 'profiled');
  const [s0, c0] = [await serverCpu(), clientCpuUs()];
  const res = await run(opts);
  const [s1, c1] = [await serverCpu(), clientCpuUs()];
  if (profileDir) await ask({ profile: null }, 'profiled');
  const main = s0.main === null || s1.main === null ? null : s1.main - s0.main;
  return Object.assign(res, { serverCpuUs: s1.all - s0.all, serverMainThreadCpuUs: main, clientCpuUs: c1 - c0 });
}

function run(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/**
 * Several rounds of one route as one measurement: requests and CPU summed, rps over the summed duration, latency
 * percentiles from autocannon's per-round histograms weighted by requests (an approximation: the exact merge would
 * need the raw histograms autocannon does not return).
 */
function combine(parts: Measured[]): Measured {
  const total = parts.reduce((a, p) => a + p.requests.total, 0);
  const seconds = parts.reduce((a, p) => a + p.duration, 0);
  const sum = (f: (p: Measured) => number) => parts.reduce((a, p) => a + f(p), 0);
  const weighted = (f: (p: Measured) => number) => sum((p) => f(p) * p.requests.total) / Math.max(1, total);
  const first = parts[0];
  return {
    ...first,
    duration: seconds,
    requests: { ...first.requests, total, average: total / seconds },
    latency: { ...first.latency, p50: weighted((p) => p.latency.p50), p99: Math.max(...parts.map((p) => p.latency.p99)) },
    '2xx': sum((p) => p['2xx']),
    non2xx: sum((p) => p.non2xx),
    errors: sum((p) => p.errors),
    timeouts: sum((p) => p.timeouts),
    serverCpuUs: sum((p) => p.serverCpuUs),
    serverMainThreadCpuUs: parts.some((p) => p.serverMainThreadCpuUs === null) ? null : sum((p) => p.serverMainThreadCpuUs!),
    clientCpuUs: sum((p) => p.clientCpuUs),
  };
}

/** Ids the server acknowledged with a 2xx, from the response bodies. */
const acknowledged = new Set<string>();
const readSingle = (status: number, body: string) => {
  if (status >= 200 && status < 300) acknowledged.add((JSON.parse(body) as { id: string }).id);
};
const readBatch = (status: number, body: string) => {
  if (status !== 207) return;
  for (const r of (JSON.parse(body) as { results: Array<{ status: number; id?: string }> }).results) {
    if ((r.status === 200 || r.status === 201) && r.id) acknowledged.add(r.id);
  }
};

const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
const single = JSON.stringify({ type: 'thumbs', value: 'up', prompt: 'Write a haiku about the sea', response: 'Waves fold into foam; the gulls argue with the wind; salt on every word.', user_id: 'u_42' });
const batch = JSON.stringify({
  events: Array.from({ length: BATCH }, (_, i) =>
    i % 2 === 0
      ? { type: 'thumbs', value: i % 4 === 0 ? 'up' : 'down', prompt: `Prompt ${i % 10}`, response: `Response number ${i}` }
      : { type: 'comparison', prompt: `Prompt ${i % 10}`, chosen: `Chosen ${i}`, rejected: `Rejected ${i}` },
  ),
});
const healthOpts = (d: number, connections: number): autocannon.Options => ({ url: `${url}/health`, connections, duration: d });
const singleOpts = (d: number, connections: number): autocannon.Options => ({
  url,
  connections,
  duration: d,
  requests: [{ method: 'POST', path: '/v1/feedback', headers, body: single, onResponse: readSingle }],
});
const batchOpts = (d: number): autocannon.Options => ({
  url,
  connections: batchConnections,
  duration: d,
  requests: [{ method: 'POST', path: '/v1/feedback/batch', headers, body: batch, onResponse: readBatch }],
});

const summarize = (r: Measured, perRequestEvents = 1) => ({
  rps: Math.round(r.requests.average),
  p50_ms: r.latency.p50,
  p99_ms: r.latency.p99,
  ok: r['2xx'],
  non_2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  server_cpu_us_per_request: Math.round(r.serverCpuUs / Math.max(1, r.requests.total)),
  ...(perRequestEvents > 1 ? { server_cpu_us_per_event: Number((r.serverCpuUs / Math.max(1, r.requests.total * perRequestEvents)).toFixed(2)) } : {}),
  /** Of the server CPU per request (or event), the event-loop thread's share; the rest is the insert thread, GC, libuv. */
  server_main_thread_cpu_us_per_unit:
    r.serverMainThreadCpuUs === null ? null : Number((r.serverMainThreadCpuUs / Math.max(1, r.requests.total * perRequestEvents)).toFixed(2)),
  client_cpu_us_per_request: Math.round(r.clientCpuUs / Math.max(1, r.requests.total)),
  /** Server CPU used per second of the phase (1.0 = one core busy): below 1 means the server waited on the client or the machine. */
  server_cores_busy: Number((r.serverCpuUs / (r.duration * 1e6)).toFixed(2)),
});

console.log(`server ${url}; ${duration} s per route and connection count in ${rounds} interleaved rounds; ${connectionLevels.join(', ')} connections (health, single), ${batchConnections} (batch)`);
await run(healthOpts(warmupS, connectionLevels[0]));
await run(singleOpts(warmupS, connectionLevels[0]));
// Health and single alternate in short rounds, every connection count in each, so the VM's speed drift (tens of
// percent within a minute, seen in bench:serve) falls on every figure alike instead of on whichever phase ran last.
const healthRounds: Measured[][] = connectionLevels.map(() => []);
const singleRounds: Measured[][] = connectionLevels.map(() => []);
for (let r = 0; r < rounds; r++) {
  for (const [i, c] of connectionLevels.entries()) {
    healthRounds[i].push(await phase(`health-c${c}-${r}`, healthOpts(duration / rounds, c)));
    singleRounds[i].push(await phase(`single-c${c}-${r}`, singleOpts(duration / rounds, c)));
  }
}
const healthByLevel = healthRounds.map(combine);
const singleByLevel = singleRounds.map(combine);
/** The level at which a route served the most requests per second: its capacity on this machine. */
const peak = (levels: Measured[]) => levels.reduce((best, m, i) => (m.requests.average > levels[best].requests.average ? i : best), 0);
const healthAt = peak(healthByLevel);
const singleAt = peak(singleByLevel);
const health = healthByLevel[healthAt];
console.log(`health (${connectionLevels[healthAt]} connections)`, summarize(health));
const singleRes = singleByLevel[singleAt];
console.log(`single (${connectionLevels[singleAt]} connections)`, summarize(singleRes));
await run(batchOpts(warmupS));
const batchRes = await phase('batch', batchOpts(duration));
console.log('batch', summarize(batchRes, BATCH));

child.send('stop');
await new Promise((r) => child.once('exit', r));
const loadavgAfter = os.loadavg();

// The server closed cleanly; look for every acknowledged id among the stored rows.
const client = createClient({ url: `file:${dbPath}` });
const stored = new Set((await client.execute('SELECT id FROM feedback')).rows.map((r) => String(r.id)));
client.close();
let found = 0;
for (const id of acknowledged) if (stored.has(id)) found++;

const round1 = (x: number) => Math.round(x * 10) / 10;
const result = {
  timestamp: new Date().toISOString(),
  machine: {
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    mem_gib: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadavg_before: loadavgBefore.map(round1),
    loadavg_after: loadavgAfter.map(round1),
  },
  config: {
    duration_s: duration,
    rounds,
    warmup_s_per_phase: warmupS,
    connections: connectionLevels,
    batch_connections: batchConnections,
    batch_size: BATCH,
    loopback: true,
    load_generator:
      'autocannon, one process on the same machine: it shares the cores with the server (one Node process: the event loop, plus a thread that runs the feedback INSERTs)',
    server_node_flags: SERVER_NODE_FLAGS,
  },
  health: { connections: connectionLevels[healthAt], ...summarize(health) },
  single: { connections: connectionLevels[singleAt], ...summarize(singleRes) },
  batch: { ...summarize(batchRes, BATCH), events_per_s: Math.round(batchRes.requests.average * BATCH) },
  /** Single-event req/s over /health req/s, each at its peak connection count. */
  ratio_single_to_health: Number((singleRes.requests.average / health.requests.average).toFixed(3)),
  /** Both peak levels' ratio within each round (health, then single, back to back): how much the machine drifted. */
  ratio_per_round: healthRounds[healthAt].map((h, r) => Number((singleRounds[singleAt][r].requests.average / h.requests.average).toFixed(3))),
  /** Every connection count: both routes' req/s, single's p99 and the ratio at that count. */
  by_connections: connectionLevels.map((c, i) => ({
    connections: c,
    health_rps: Math.round(healthByLevel[i].requests.average),
    single_rps: Math.round(singleByLevel[i].requests.average),
    single_p99_ms: singleByLevel[i].latency.p99,
    ratio: Number((singleByLevel[i].requests.average / healthByLevel[i].requests.average).toFixed(3)),
  })),
  /** Throughput if the server had one core to itself (1e6 / server CPU µs): an estimate, not a measurement. */
  server_bound_estimate: {
    health_rps: Math.round(1e6 / (health.serverCpuUs / health.requests.total)),
    single_rps: Math.round(1e6 / (singleRes.serverCpuUs / singleRes.requests.total)),
    batch_events_per_s: Math.round(1e6 / (batchRes.serverCpuUs / (batchRes.requests.total * BATCH))),
  },
  acknowledged_events: acknowledged.size,
  acknowledged_found: found,
  rows_found: stored.size,
  /** Stored rows whose response never reached the client (in flight when a phase ended): not losses. */
  rows_unacknowledged: stored.size - found,
  lost: acknowledged.size - found,
};
const out = join(here, 'results', 'ingest.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
rmSync(dir, { recursive: true, force: true });
console.log(
  JSON.stringify({
    health_rps: result.health.rps,
    single_rps: result.single.rps,
    at_connections: [result.health.connections, result.single.connections],
    single_p99_ms: result.single.p99_ms,
    batch_events_per_s: result.batch.events_per_s,
    ratio_single_to_health: result.ratio_single_to_health,
    lost: result.lost,
    cpu_us: [result.health.server_cpu_us_per_request, result.single.server_cpu_us_per_request, result.batch.server_cpu_us_per_event],
    loadavg: [result.machine.loadavg_before[0], result.machine.loadavg_after[0]],
  }),
);
console.log(`wrote ${out}`);
