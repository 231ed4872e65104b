// `npm run bench:edge`: does generation fit Cloudflare Workers? Bundles the production entry with wrangler
// (api/edge/worker.ts: the app + onnxruntime-web), runs it in workerd (Miniflare, what `wrangler dev --local`
// runs) with the policy in R2, and measures what the Workers limits bound: upload size (gzip) against 3 MiB
// (free) / 10 MiB (paid), the workerd process's resident memory against 128 MB per isolate, and wall time per
// generated token at batch 1 (single-threaded, so ≈ CPU time) against 10 ms CPU per request (free) / 30 s
// default (paid). The same model on the Node deployment (onnxruntime-node) is measured alongside.
// Model: models/base when it holds a policy, else random weights of its config. Writes bench/results/edge.json.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import WebSocket from 'ws';
import { nodeServingPorts } from '../api/adapters/node-serving';
import { startServer } from '../api/server';
import { ARTIFACT_FILES } from '../shared/policy-io';
import type { ModelConfig } from '../shared/model-config';
import { ADMIN_KEY, root, startEdge, uploadDir } from '../tests/edge/harness';
import { writeRandomPolicy } from './random-policy';

/** models/base's config (bench/serve.ts), for the random-weight fallback. */
const FALLBACK_CONFIG: ModelConfig = { vocabSize: 2048, contextLength: 256, nLayer: 4, nHead: 4, dModel: 128, mlpRatio: 4, layerNormEps: 1e-5 };
const MiB = 1024 * 1024;
const REPS = 5;

function workerdRssMiB(): number {
  // Miniflare spawns workerd as a child of this process.
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (!/^Name:\s+workerd/m.test(status) || !new RegExp(`^PPid:\\s+${process.pid}$`, 'm').test(status)) continue;
      total += Number(/^VmRSS:\s+(\d+)/m.exec(status)![1]) / 1024;
    } catch {
      // process went away
    }
  }
  return Math.round(total * 10) / 10;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * The user worker's isolate memory from V8 itself, over workerd's inspector (Runtime.getHeapUsage): JS heap used and
 * allocated, and the ArrayBuffer backing stores outside the heap (ORT's wasm linear memory among them). This is
 * what the 128 MB per-isolate limit bounds; the process RSS above also holds workerd, its code and other workers.
 */
async function isolateMemory(inspectorPort: number): Promise<{ heap_used_mib: number; heap_total_mib: number; backing_store_mib: number; ort_wasm_memory_mib: number; total_mib: number }> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as { id: string; webSocketDebuggerUrl: string }[];
  const user = targets.find((t) => t.id === 'core:user:');
  if (!user) throw new Error(`no user worker among the inspector targets: ${targets.map((t) => t.id).join(', ')}`);
  const ws = new WebSocket(user.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  // One dispatcher: replies by id, and the execution contexts Runtime.enable announces.
  const waiting = new Map<number, { resolve: (r: never) => void; reject: (e: Error) => void }>();
  const contexts: number[] = [];
  ws.on('message', (m) => {
    const d = JSON.parse(String(m)) as { id?: number; result?: never; error?: { message: string }; method?: string; params?: { context?: { id: number } } };
    if (d.method === 'Runtime.executionContextCreated' && d.params?.context) contexts.push(d.params.context.id);
    const w = d.id === undefined ? undefined : waiting.get(d.id);
    if (w) (d.result ? w.resolve(d.result) : w.reject(new Error(d.error?.message)));
  });
  let id = 0;
  const call = <T>(method: string, params: object = {}) =>
    new Promise<T>((resolve, reject) => {
      waiting.set(++id, { resolve: resolve as (r: never) => void, reject });
      ws.send(JSON.stringify({ id, method, params }));
    });
  const usage = await call<{ usedSize: number; totalSize: number; backingStorageSize: number }>('Runtime.getHeapUsage');
  // ORT's wasm memory, which api/edge/onnxruntime-web.ts leaves on globalThis once ORT has started.
  await call('Runtime.enable');
  const wasm = await call<{ result: { value?: number } }>('Runtime.evaluate', {
    expression: 'globalThis.__prefloopOrtMemory?.buffer.byteLength ?? 0',
    returnByValue: true,
    ...(contexts.length ? { contextId: contexts[0] } : {}),
  });
  ws.close();
  const wasmBytes = wasm.result.value ?? 0;
  const mib = (b: number) => Math.round((b / MiB) * 10) / 10;
  return {
    heap_used_mib: mib(usage.usedSize),
    heap_total_mib: mib(usage.totalSize),
    backing_store_mib: mib(usage.backingStorageSize),
    ort_wasm_memory_mib: mib(wasmBytes),
    // Whether V8 already counts the wasm memory among the backing stores is not documented: count it apart, at worst twice.
    total_mib: mib(usage.totalSize + usage.backingStorageSize + wasmBytes),
  };
}

/** A port nothing listens on now (the OS picks it), for workerd's inspector. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function main() {
  const work = mkdtempSync(join(tmpdir(), 'prefloop-bench-edge-'));
  const base = join(root, 'models/base');
  const trained = ['policyOnnx', 'config', 'tokenizer'].every((f) => existsSync(join(base, ARTIFACT_FILES[f as keyof typeof ARTIFACT_FILES])));
  const modelDir = trained ? base : (await writeRandomPolicy(join(work, 'model'), 1, FALLBACK_CONFIG)).dir;
  const config = JSON.parse(readFileSync(join(modelDir, ARTIFACT_FILES.config), 'utf8')) as ModelConfig;
  const onnxBytes = readFileSync(join(modelDir, ARTIFACT_FILES.policyOnnx));

  const inspectorPort = await freePort();
  const edge = await startEdge(join(root, 'api/edge/worker.ts'), { PREFLOOP_API_KEY: ADMIN_KEY }, { inspectorPort });
  const files = Object.fromEntries(readdirSync(edge.bundle.dir).filter((f) => !f.endsWith('.map') && !f.endsWith('.md')).map((f) => [f, statSync(join(edge.bundle.dir, f)).size]));
  const rssIdle = workerdRssMiB();
  await uploadDir(edge, modelDir, 'base/');

  const node = await startServer({ dbPath: join(work, 'node.db'), port: 0, apiKey: ADMIN_KEY, ports: nodeServingPorts({ artifactsDir: join(work, 'artifacts'), baseModelDir: modelDir, poll: false, log: () => undefined }) });
  const gen = async (url: string, maxTokens: number) => {
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'The old man said that', max_tokens: maxTokens, temperature: 0 }),
    });
    const body = (await res.json()) as { generations: { completion_tokens: number }[] };
    if (res.status !== 200) throw new Error(`${url}: ${res.status} ${JSON.stringify(body)}`);
    return { ms: performance.now() - t0, tokens: body.generations[0].completion_tokens };
  };
  await fetch(`${edge.url}/health`);
  const rssAfterHealth = workerdRssMiB();
  const isoIdle = await isolateMemory(inspectorPort);
  const cold = await gen(edge.url, 1); // ORT init + session + base bootstrap
  const rssModel = workerdRssMiB();
  const isoModel = await isolateMemory(inspectorPort);
  const perToken = async (url: string) => {
    const long = 64;
    const one: number[] = [];
    const many: number[] = [];
    let tokens = 0;
    await gen(url, long); // warm
    for (let i = 0; i < REPS; i++) {
      one.push((await gen(url, 1)).ms);
      const m = await gen(url, long);
      many.push(m.ms);
      tokens = m.tokens;
    }
    return { request_1_token_ms: Math.round(median(one) * 10) / 10, request_ms: Math.round(median(many) * 10) / 10, tokens, ms_per_token: Math.round(((median(many) - median(one)) / Math.max(1, tokens - 1)) * 1000) / 1000 };
  };
  const edgeTiming = await perToken(edge.url);
  const rssAfter = workerdRssMiB();
  const isoAfter = await isolateMemory(inspectorPort);
  const nodeTiming = await perToken(node.url);
  await node.close();
  await edge.dispose();
  rmSync(work, { recursive: true, force: true });

  const gzipMiB = edge.bundle.gzipKiB / 1024;
  const modelGzipMiB = gzipSync(onnxBytes).length / MiB;
  const result = {
    benchmark: 'edge',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version, loadavg: loadavg().map((l) => Math.round(l * 10) / 10) },
    model: { source: trained ? 'models/base' : 'random weights of models/base config (models/base not ready)', config, policy_onnx_mib: Math.round((onnxBytes.length / MiB) * 100) / 100, policy_onnx_gzip_mib: Math.round(modelGzipMiB * 100) / 100 },
    bundle: { upload_kib: edge.bundle.totalKiB, gzip_kib: edge.bundle.gzipKiB, files_bytes: files, limits_gzip_mib: { free: 3, paid: 10 } },
    memory_mib: {
      isolate: { after_first_request: isoIdle, after_model_loaded: isoModel, after_generations: isoAfter },
      workerd_rss: { idle: rssIdle, after_first_request: rssAfterHealth, after_model_loaded: rssModel, after_generations: rssAfter },
      limit_per_isolate: 128,
      note: 'isolate = V8 heap (allocated) + ArrayBuffer backing stores of the user worker, from Runtime.getHeapUsage over the inspector: what the per-isolate limit counts. workerd_rss = the whole process (runtime, compiled code, Miniflare\'s own workers), an upper bound.',
    },
    latency: { cold_first_generation_ms: Math.round(cold.ms), edge: edgeTiming, node: nodeTiming },
    verdict: {
      fits_free_bundle: gzipMiB <= 3,
      fits_paid_bundle_model_from_r2: gzipMiB <= 10,
      fits_paid_bundle_model_bundled: gzipMiB + modelGzipMiB <= 10,
      /** The isolate's memory after serving (V8 heap + backing stores + ORT wasm memory) against 128 MB. */
      fits_memory: isoAfter.total_mib < 128,
      tokens_per_10ms_cpu_free_plan: Math.floor(10 / Math.max(edgeTiming.ms_per_token, 1e-3)),
    },
  };
  writeFileSync(join(root, 'bench/results/edge.json'), `${JSON.stringify(result, null, 2)}\n`);
  console.log(JSON.stringify(result, null, 2));
}

await main();
