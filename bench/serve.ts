// bench:serve — generation serving over real HTTP: 64-token generations (POST /v1/generations, ignore_eos so
// every request makes exactly 64 tokens) at concurrency 1, 8 and 32 from a loopback node:http client in this
// process, against the API in a child process. Reports req/s, tokens/s, p50/p99 latency per level, and
// http_over_floor = (per-token time through HTTP at concurrency 1) / (bare onnxruntime decode-step time at
// batch 1, measured in this run on the graph the server runs: the step graph, shared/sampling/step-graph.ts,
// with the server's session options; only session.run is timed). Also, to show what each buys: the bare step
// with 1 and 2 intra-op threads at batch 1 and 32, concurrency 32 with the other wide-session setting (a second
// session with 2 intra-op threads for big runs, or none),
// with the other counts of worker-thread decode lanes among 0–3 (api/adapters/worker-lane.ts), and without
// cross-request batching (maxBatchRows 1). Each level records the load average, the CPU per token of server and
// client and the server main thread's busy share: other work on this machine distorts the figures, and the
// client shares the server's two cores.
// Writes bench/results/serve.json.
// Model: models/base when it holds policy.onnx + config.json + tokenizer.json, else a random-weight model of
// FALLBACK_CONFIG (speed does not depend on the weights' values; the JSON says which).
//
//   npm run bench:serve [-- --seconds 8 --rounds 4 --tokens 64 --wide-threads 1 --worker-lanes 2]
// --wide-threads and --worker-lanes default to what `npm start` runs (api/adapters/onnxruntime-node.ts).
import { fork } from 'node:child_process';
import http from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { parseModelConfig, headDim, type ModelConfig } from '../shared/model-config';
import { ORT_SESSION_DEFAULTS, ortSessionOptions } from '../shared/onnx-session';
import { ARTIFACT_FILES, POLICY_INPUTS, POLICY_OUTPUTS, pastKeyName, pastValueName, stepKeyName, stepValueName } from '../shared/policy-io';
import { KvCache } from '../shared/sampling/kv-cache';
import { deriveStepGraph } from '../shared/sampling/step-graph';
import { Tokenizer } from '../shared/tokenizer';
import { writeRandomPolicy } from './random-policy';

/** models/base's config (4 layers, d 128, vocabulary 2048, context 256), for the random-weight fallback. */
const FALLBACK_CONFIG: ModelConfig = { vocabSize: 2048, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 };
const PROMPT = 'The old man walked slowly down the road toward the village, thinking about';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '4' },
    tokens: { type: 'string', default: '64' },
    model: { type: 'string', default: 'models/base' },
    out: { type: 'string', default: 'bench/results/serve.json' },
    'wide-threads': { type: 'string', default: '1' },
    'worker-lanes': { type: 'string', default: '2' },
  },
});
const seconds = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const maxTokens = Number(args.tokens);
const wideThreads = Number(args['wide-threads']);
const workerLanes = Number(args['worker-lanes']);
const KEY = 'pfk_bench_serve_key_0123456789abcdef';

const work = mkdtempSync(join(tmpdir(), 'prefloop-bench-serve-'));
let modelDir = args.model!;
let source = modelDir;
if (![ARTIFACT_FILES.policyOnnx, ARTIFACT_FILES.config, ARTIFACT_FILES.tokenizer].every((f) => existsSync(join(modelDir, f)))) {
  modelDir = join(work, 'model');
  await writeRandomPolicy(modelDir, 1, FALLBACK_CONFIG);
  source = `random weights, fallback config (${args.model} had no complete policy artifact)`;
}
const config = parseModelConfig(JSON.parse(readFileSync(join(modelDir, ARTIFACT_FILES.config), 'utf8')));
const tokenizer = Tokenizer.fromJSON(readFileSync(join(modelDir, ARTIFACT_FILES.tokenizer), 'utf8'));
const promptIds = [tokenizer.bosId, ...tokenizer.encode(PROMPT)];
if (promptIds.length + maxTokens > config.contextLength + 1) throw new Error(`prompt ${promptIds.length} + ${maxTokens} tokens exceed the context ${config.contextLength}`);

// ---- The floor: bare decode steps on onnxruntime, batch B, past growing from the prompt as in serving, on the
// step graph the server runs with the cache kept in place as the engine keeps it; only session.run is timed.
interface BareDecode {
  /** One prompt prefill and maxTokens - 1 decode steps; the mean step and the prefill time in ms. */
  run(): Promise<{ prefill: number; step: number }>;
  release(): Promise<void>;
}

async function openBareDecode(threads: number, batch: number): Promise<BareDecode> {
  const bytes = readFileSync(join(modelDir, ARTIFACT_FILES.policyOnnx));
  // The forward pass alone: the served graph also computes softmax(logits) for the sampler (step-graph.ts), which
  // counts as serving overhead here.
  const graph = deriveStepGraph(bytes, { probs: false });
  if (!graph) throw new Error('policy.onnx has no step variant');
  const session = await ort.InferenceSession.create(graph, {
    ...ortSessionOptions({ intraOpNumThreads: threads }),
    ...(threads > 1 ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
  });
  const c = config;
  const L = promptIds.length;
  const int64 = (v: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), dims);
  const cache = new KvCache(c.nLayer, c.nHead, headDim(c), c.contextLength);
  const run = async () => {
    const feeds: Record<string, ort.Tensor> = {
      [POLICY_INPUTS.inputIds]: int64(Array.from({ length: batch }, () => promptIds).flat(), [batch, L]),
      [POLICY_INPUTS.attentionMask]: int64(new Array(batch * L).fill(1), [batch, L]),
      [POLICY_INPUTS.positionIds]: int64(Array.from({ length: batch }, () => promptIds.map((_, i) => i)).flat(), [batch, L]),
    };
    for (let l = 0; l < c.nLayer; l++) {
      feeds[pastKeyName(l)] = new ort.Tensor('float32', new Float32Array(0), [batch, c.nHead, 0, headDim(c)]);
      feeds[pastValueName(l)] = new ort.Tensor('float32', new Float32Array(0), [batch, c.nHead, 0, headDim(c)]);
    }
    const t0 = performance.now();
    let out = await session.run(feeds);
    const prefill = performance.now() - t0;
    cache.clear();
    cache.reserve(batch, L, []);
    for (let l = 0; l < c.nLayer; l++) {
      for (let b = 0; b < batch; b++) cache.write(l, out[stepKeyName(l)].data as Float32Array, out[stepValueName(l)].data as Float32Array, b, L, 0, L, b, 0);
    }
    let inRun = 0;
    for (let s = 0; s < maxTokens - 1; s++) {
      const S = out[POLICY_OUTPUTS.logits].dims[1]; // positions per row (the step graph returns the last only)
      const len = L + s; // tokens in each row's cache
      const logits = out[POLICY_OUTPUTS.logits].data as Float32Array;
      const next: number[] = [];
      for (let b = 0; b < batch; b++) {
        let best = 0;
        const o = (b * S + S - 1) * c.vocabSize;
        for (let v = 1; v < c.vocabSize; v++) if (logits[o + v] > logits[o + best]) best = v;
        next.push(best);
      }
      cache.reserve(batch, len, new Array(batch).fill(len));
      const P = cache.cols;
      const mask = new BigInt64Array(batch * (P + 1));
      for (let b = 0; b < batch; b++) {
        mask.fill(1n, b * (P + 1), b * (P + 1) + len);
        mask[b * (P + 1) + P] = 1n;
      }
      const past = cache.past(batch);
      const f: Record<string, ort.Tensor> = {
        [POLICY_INPUTS.inputIds]: int64(next, [batch, 1]),
        [POLICY_INPUTS.attentionMask]: new ort.Tensor('int64', mask, [batch, P + 1]),
        [POLICY_INPUTS.positionIds]: int64(new Array(batch).fill(len), [batch, 1]),
      };
      for (let l = 0; l < c.nLayer; l++) {
        f[pastKeyName(l)] = past.keys[l];
        f[pastValueName(l)] = past.values[l];
      }
      const t1 = performance.now();
      out = await session.run(f);
      inRun += performance.now() - t1;
      for (let l = 0; l < c.nLayer; l++) {
        for (let b = 0; b < batch; b++) cache.write(l, out[stepKeyName(l)].data as Float32Array, out[stepValueName(l)].data as Float32Array, b, 1, 0, 1, b, len);
      }
    }
    return { prefill, step: inRun / (maxTokens - 1) };
  };
  await run(); // warm-up
  return { run, release: () => session.release() };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bareDecode(threads: number, batch: number): Promise<{ step_ms: number; prefill_ms: number }> {
  const bare = await openBareDecode(threads, batch);
  const runs = [];
  for (let r = 0; r < 9; r++) runs.push(await bare.run());
  await bare.release();
  return { step_ms: median(runs.map((r) => r.step)), prefill_ms: median(runs.map((r) => r.prefill)) };
}

// ---- The server in a child process, and a loopback load generator here.
interface Child {
  url: string;
  /** The server process's CPU time so far (all its threads, the decode-lane worker included) and its event loop's busy time, in µs. */
  usage: () => Promise<{ cpu: number; loopActive: number }>;
  stop: () => Promise<void>;
}

async function startChild(maxBatchRows: number, wide: number, lanes: number): Promise<Child> {
  const dir = mkdtempSync(join(work, 'srv-'));
  const child = fork(join(import.meta.dirname, 'serve-server.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, BENCH_DB: join(dir, 'bench.db'), BENCH_KEY: KEY, BENCH_MODEL_DIR: modelDir, BENCH_ARTIFACTS: join(dir, 'artifacts'), BENCH_MAX_BATCH_ROWS: String(maxBatchRows), PREFLOOP_ORT_WIDE_THREADS: String(wide), PREFLOOP_ORT_WORKER_LANES: String(lanes) },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      const line = buf.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line).url);
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  return {
    url,
    usage: () =>
      new Promise<{ cpu: number; loopActive: number }>((r) => {
        child.once('message', (m: { cpu: number; loopActive: number }) => r(m));
        child.send('cpu');
      }),
    stop: () =>
      new Promise<void>((r) => {
        child.once('exit', () => r());
        child.send('stop');
      }),
  };
}

interface Level {
  concurrency: number;
  requests: number;
  failed: number;
  seconds: number;
  req_per_s: number;
  tokens_per_s: number;
  tokens_per_request: number;
  p50_ms: number;
  p99_ms: number;
  /** 1-minute load average when the level ended (other work on the machine distorts the figures). */
  load_1m: number;
  /** CPU per generated token: the server process (all threads) and this load generator, in µs. */
  server_cpu_us_per_token: number;
  client_cpu_us_per_token: number;
  /** Share of the level's time the server's event loop (its main thread) was busy. */
  server_main_thread_busy: number;
}

// The load generator: node:http with keep-alive connections, one per concurrent caller. It shares the server's
// two cores, so its own CPU is taken from the server: measured here, fetch (undici) spent ~1.5 ms of CPU per
// request and node:http ~0.6 ms (bench figures per level record it as client_cpu_us_per_token).
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

function post(url: string, path: string, body: string): Promise<{ status: number; json: unknown }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: u.hostname, port: u.port, path, method: 'POST', agent, headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
          } catch (e) {
            reject(e);
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** What one stretch of load measured, raw, so stretches of one level taken at different moments can be pooled. */
interface Stretch {
  concurrency: number;
  lat: number[];
  tokens: number;
  failed: number;
  elapsed: number;
  serverCpu: number;
  clientCpu: number;
  loopActive: number;
  /** 1-minute load average when the stretch ended. */
  load1m: number;
}

async function stretch(server: Child, concurrency: number, durationS: number, warmUp: boolean): Promise<Stretch> {
  const url = server.url;
  const lat: number[] = [];
  let tokens = 0;
  let failed = 0;
  let seq = 0;
  const call = async () => {
    const t0 = performance.now();
    const res = await post(url, '/v1/generations', JSON.stringify({ prompt: PROMPT, max_tokens: maxTokens, temperature: 1, seed: seq++, ignore_eos: true }));
    const body = res.json as { generations?: { completion_tokens: number }[] };
    const ms = performance.now() - t0;
    if (res.status !== 200 || !body.generations) {
      failed++;
      return;
    }
    lat.push(ms);
    tokens += body.generations[0].completion_tokens;
  };
  if (warmUp) for (let i = 0; i < Math.max(2, concurrency); i++) await call(); // sessions, JIT, connections
  lat.length = 0;
  tokens = 0;
  const usage0 = await server.usage();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) await call();
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const usage1 = await server.usage();
  return { concurrency, lat, tokens, failed, elapsed, serverCpu: usage1.cpu - usage0.cpu, clientCpu: cpu.user + cpu.system, loopActive: usage1.loopActive - usage0.loopActive, load1m: loadavg()[0] };
}

/** One level from its stretches: requests, tokens and CPU summed, rates over the summed time, percentiles over all requests. */
function level(parts: Stretch[]): Level {
  const lat = parts.flatMap((p) => p.lat).sort((a, b) => a - b);
  const sum = (f: (p: Stretch) => number) => parts.reduce((a, p) => a + f(p), 0);
  const tokens = sum((p) => p.tokens);
  const elapsed = sum((p) => p.elapsed);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return {
    concurrency: parts[0].concurrency,
    requests: lat.length,
    failed: sum((p) => p.failed),
    seconds: +elapsed.toFixed(2),
    req_per_s: +(lat.length / elapsed).toFixed(2),
    tokens_per_s: +(tokens / elapsed).toFixed(1),
    tokens_per_request: lat.length ? +(tokens / lat.length).toFixed(1) : 0,
    p50_ms: +q(0.5).toFixed(2),
    p99_ms: +q(0.99).toFixed(2),
    load_1m: +parts[parts.length - 1].load1m.toFixed(2),
    server_cpu_us_per_token: Math.round(sum((p) => p.serverCpu) / tokens),
    client_cpu_us_per_token: Math.round(sum((p) => p.clientCpu) / tokens),
    server_main_thread_busy: +(sum((p) => p.loopActive) / (elapsed * 1e6)).toFixed(3),
  };
}

const load = async (server: Child, concurrency: number, durationS: number): Promise<Level> => level([await stretch(server, concurrency, durationS, true)]);

const loadStart = loadavg().map((x) => +x.toFixed(2));
const threadSweep = [];
for (const threads of [1, 2]) {
  const b1 = await bareDecode(threads, 1);
  const b32 = await bareDecode(threads, 32);
  threadSweep.push({ intraOpNumThreads: threads, batch1_step_ms: +b1.step_ms.toFixed(4), batch32_step_ms: +b32.step_ms.toFixed(4) });
  console.log(`bare decode step, ${threads} intra-op thread(s): batch 1 ${b1.step_ms.toFixed(3)} ms, batch 32 ${b32.step_ms.toFixed(3)} ms`);
}

const server = await startChild(64, wideThreads, workerLanes);
// This machine's speed drifts by tens of percent within a minute, and on some days within a second (measured: the
// bare step 0.42 ms and 0.54 ms in two measurements 4 s apart). So the three levels are measured in ROUNDS
// interleaved rounds (c1, c8, c32, each for seconds / ROUNDS), and http_over_floor from PAIRS taken back to back in
// each round: one bare floor run (prefill + maxTokens - 1 timed steps, in this process, the server idle), then one
// concurrency-1 request through HTTP (this process idle but for the client), repeated for seconds / ROUNDS. The
// two halves of a pair are taken ~0.1 s apart, so they see the same machine.
interface Pair {
  floorStepMs: number;
  requestMs: number;
}
async function pairs(server: Child, bare: BareDecode, durationS: number): Promise<Pair[]> {
  const out: Pair[] = [];
  const end = performance.now() + durationS * 1000;
  let seed = 1_000_000;
  while (performance.now() < end) {
    const floorStepMs = (await bare.run()).step;
    const t0 = performance.now();
    const res = await post(server.url, '/v1/generations', JSON.stringify({ prompt: PROMPT, max_tokens: maxTokens, temperature: 1, seed: seed++, ignore_eos: true }));
    if (res.status !== 200) throw new Error(`paired request failed: ${res.status}`);
    out.push({ floorStepMs, requestMs: performance.now() - t0 });
  }
  return out;
}
const ratioOf = (ps: Pair[]) => median(ps.map((p) => p.requestMs)) / maxTokens / median(ps.map((p) => p.floorStepMs));

const bare = await openBareDecode(ORT_SESSION_DEFAULTS.intraOpNumThreads, 1);
const pairRounds: Pair[][] = [];
const stretches: Stretch[][] = [[], [], []];
for (const [i, c] of [1, 8, 32].entries()) stretches[i].push(await stretch(server, c, 0.5, true)); // warm-up, not counted
for (let r = 0; r < ROUNDS; r++) {
  pairRounds.push(await pairs(server, bare, seconds / ROUNDS));
  for (const [i, c] of [1, 8, 32].entries()) stretches[i].push(await stretch(server, c, seconds / ROUNDS, false));
}
await bare.release();
const allPairs = pairRounds.flat();
const levels: Level[] = stretches.map((parts) => level(parts.slice(1)));
for (const r of levels) console.log(`concurrency ${r.concurrency}: ${r.req_per_s} req/s, ${r.tokens_per_s} tokens/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms, failed ${r.failed}`);
await server.stop();

const unbatched = await startChild(1, wideThreads, workerLanes);
const noBatch = await load(unbatched, 32, seconds);
console.log(`concurrency 32 without cross-request batching: ${noBatch.tokens_per_s} tokens/s`);
await unbatched.stop();

const otherWide = wideThreads > 1 ? 1 : 2;
const otherWideServer = await startChild(64, otherWide, workerLanes);
const otherWideC32 = { wide_session_threads: otherWide, ...(await load(otherWideServer, 32, seconds)) };
console.log(`concurrency 32 with wide session threads ${otherWide}: ${otherWideC32.tokens_per_s} tokens/s`);
await otherWideServer.stop();

// Other worker-lane counts at concurrency 32 (0 = decoding on the server's main thread only, as before lanes; 3 =
// more lanes than cores, so one lane's thread can fill a core while another waits for its step's turnaround).
const laneSweep: Array<Level & { worker_lanes: number }> = [];
for (const lanes of [0, 1, 2, 3].filter((n) => n !== workerLanes)) {
  const other = await startChild(64, wideThreads, lanes);
  laneSweep.push({ worker_lanes: lanes, ...(await load(other, 32, seconds)) });
  await other.stop();
  console.log(`concurrency 32 with ${lanes} worker lane(s): ${laneSweep.at(-1)!.tokens_per_s} tokens/s`);
}
const singleLane = laneSweep.find((l) => l.worker_lanes === 0)!;

/** Per round: the pairs' median c1 request time per token over their median floor step. */
const roundRatios = pairRounds.map((ps) => +ratioOf(ps).toFixed(3));
const msPerTokenC1 = median(allPairs.map((p) => p.requestMs)) / maxTokens;
const result = {
  benchmark: 'serve',
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version },
  model: { source, config },
  prompt_tokens: promptIds.length,
  max_tokens: maxTokens,
  seconds_per_level: seconds,
  session_options: { ...ORT_SESSION_DEFAULTS, graph: 'step variant of policy.onnx (shared/sampling/step-graph.ts)', wide_session_threads: wideThreads, wide_session_from_tokens: 8, worker_lanes: workerLanes },
  load_average: { start: loadStart, end: loadavg().map((x) => +x.toFixed(2)) },
  thread_sweep: threadSweep,
  floor: {
    bare_decode_step_ms: +median(allPairs.map((p) => p.floorStepMs)).toFixed(4),
    batch: 1,
    pairs: allPairs.length,
    step_ms_per_round: pairRounds.map((ps) => +median(ps.map((p) => p.floorStepMs)).toFixed(4)),
    paired_request_ms_per_round: pairRounds.map((ps) => +median(ps.map((p) => p.requestMs)).toFixed(2)),
  },
  levels,
  no_cross_request_batching_c32: noBatch,
  other_wide_session_c32: otherWideC32,
  worker_lane_sweep_c32: laneSweep,
  http_ms_per_token_c1: +msPerTokenC1.toFixed(4),
  http_over_floor: +ratioOf(allPairs).toFixed(3),
  http_over_floor_per_round: roundRatios,
  tokens_per_s_c32_over_c1: +(levels[2].tokens_per_s / levels[0].tokens_per_s).toFixed(2),
  batching_gain_c32: +(levels[2].tokens_per_s / noBatch.tokens_per_s).toFixed(2),
  worker_lane_gain_c32: +(levels[2].tokens_per_s / singleLane.tokens_per_s).toFixed(2),
  targets: { http_over_floor: '<= 1.25', tokens_per_s_c32_over_c1: '>= 4' },
  notes:
    'http_over_floor = (median concurrency-1 request latency / max_tokens) / median bare batch-1 decode step, over pairs ' +
    '(one bare run of max_tokens - 1 steps, then one request) taken back to back in every round; the request ' +
    'time includes the prompt prefill, JS sampling, detokenisation, the SQLite insert and HTTP. Client and server ' +
    'run in separate processes on the same machine; the client is node:http with keep-alive. The floor is the step graph\'s session.run ' +
    'alone at batch 1 on a session of this process, the server idle meanwhile. worker_lanes: sessions in worker threads ' +
    'that decode while the server\'s main thread serves; load_1m per level: other work on the machine distorts the figures.',
};
mkdirSync(join(args.out!, '..'), { recursive: true });
writeFileSync(args.out!, `${JSON.stringify(result, null, 2)}\n`);
console.log(`http_over_floor ${result.http_over_floor}, tokens/s c32/c1 ${result.tokens_per_s_c32_over_c1}, batching gain at c32 ${result.batching_gain_c32}x → ${args.out}`);
agent.destroy();
rmSync(work, { recursive: true, force: true });
