// The workerd entry (wrangler.toml `main`): the same portable app (api/app.ts) on Cloudflare Workers, with
// edge adapters — D1 through drizzle's d1 driver, the training queue on SQS (or D1), R2 as the artifact store,
// onnxruntime-web for generation (or a forward to the Node deployment) — plus the cron trigger running the
// scheduler tick. One app per isolate, built on its first request (bindings are only known then).
import { drizzle } from 'drizzle-orm/d1';
// wrangler's default module rules turn a .wasm import into a precompiled WebAssembly.Module (see onnxruntime-web.ts).
import ortWasm from 'onnxruntime-web/ort-wasm-simd-threaded.wasm';
import { schedulerTick } from '../../shared/scheduler';
import * as schema from '../../shared/schema';
import { createApp } from '../app';
import type { AppSettings, Database } from '../deps';
import { DEFAULT_PROJECT, addKey, ensureProject } from '../keys';
import { PolicyRegistry } from '../policy/registry';
import type { ExecutionContextLike, ScheduledControllerLike } from './cloudflare';
import { type EdgeEnv, edgeSettings, generationMode } from './env';
import { forwardsToOrigin, forwardToOrigin } from './generation-origin';
import { webOnnxRuntime } from './onnxruntime-web';
import { edgeTrainingQueue } from './queue';
import { R2ArtifactStore } from './r2-artifact-store';

export interface Built {
  app: ReturnType<typeof createApp>;
  db: Database;
  mode: 'edge' | 'origin';
  policies?: PolicyRegistry;
  pollMs: number;
  lastPoll: number;
}

let built: Promise<Built> | null = null;

export function edgeDatabase(env: EdgeEnv): Database {
  return drizzle(env.DB as never, { schema }) as unknown as Database;
}

export interface EdgeAppOptions {
  /** Epoch ms (default Date.now; tests drive it). */
  clock?: () => number;
  /** Settings over the ones read from the environment (tests). */
  settings?: Partial<AppSettings>;
}

/** The app with every edge adapter, as the entry serves it. Exported for tests, which only swap clock/settings. */
export async function buildEdgeApp(env: EdgeEnv, opts: EdgeAppOptions = {}): Promise<Built> {
  const db = edgeDatabase(env);
  const clock = opts.clock ?? Date.now;
  if (env.PREFLOOP_API_KEY) {
    const { project } = await ensureProject(db, DEFAULT_PROJECT, clock());
    await addKey(db, { projectId: project.id, name: 'PREFLOOP_API_KEY', scopes: ['admin'], key: env.PREFLOOP_API_KEY, now: clock() });
  }
  const mode = generationMode(env);
  const artifacts = env.ARTIFACTS ? new R2ArtifactStore({ bucket: env.ARTIFACTS, bucketName: env.ARTIFACTS_BUCKET ?? 'prefloop-artifacts' }) : undefined;
  const policies =
    mode === 'edge' && artifacts
      ? new PolicyRegistry({ db, artifacts, runtime: webOnnxRuntime(ortWasm), clock, maxBatchRows: 8 })
      : undefined;
  const base = edgeSettings(env);
  const settings: AppSettings = { ...base, ...opts.settings, rateLimit: { ...base.rateLimit, ...opts.settings?.rateLimit } };
  const app = createApp({ db, clock, settings, queue: edgeTrainingQueue(env, db), artifacts, policies, groupCommit: false });
  return { app, db, mode, policies, pollMs: Number(env.PREFLOOP_POLICY_POLL_MS ?? 2000), lastPoll: clock() };
}

/** Serves one request the way the production entry does (origin forward, policy poll, the app). */
export function serveEdge(b: Built, request: Request, env: EdgeEnv, ctx: ExecutionContextLike): Response | Promise<Response> {
  if (b.mode === 'origin' && forwardsToOrigin(new URL(request.url).pathname)) return forwardToOrigin(request, env.GENERATION_ORIGIN!);
  // No background timers in an isolate between requests: re-read live policy versions from a request instead.
  if (b.policies && Date.now() - b.lastPoll >= b.pollMs) {
    b.lastPoll = Date.now();
    ctx.waitUntil(b.policies.poll());
  }
  return b.app.fetch(request, env, ctx as never);
}

function appFor(env: EdgeEnv): Promise<Built> {
  built ??= buildEdgeApp(env).catch((e) => {
    built = null; // a failed start (D1 hiccup) is retried by the next request
    throw e;
  });
  return built;
}

export default {
  async fetch(request: Request, env: EdgeEnv, ctx: ExecutionContextLike): Promise<Response> {
    return serveEdge(await appFor(env), request, env, ctx);
  },

  /** The cron trigger (wrangler.toml [triggers]): queue the training runs that are due. */
  async scheduled(controller: ScheduledControllerLike, env: EdgeEnv, ctx: ExecutionContextLike): Promise<void> {
    const db = edgeDatabase(env);
    const queue = edgeTrainingQueue(env, db);
    const tick = schedulerTick({ db, queue, now: Date.now }).then((report) => {
      console.log(JSON.stringify({ event: 'scheduler_tick', cron: controller.cron, enqueued: report.enqueued.length, report }));
    });
    ctx.waitUntil(tick);
    await tick;
  },
};
