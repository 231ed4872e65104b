// The workerd entry the edge tests run: the production edge app (buildEdgeApp: D1, queue, R2, onnxruntime-web
// — the same code the real entry serves) in several instances, one per test server, so one workerd process
// serves a whole test file. Only what a test must control differs from production:
//   POST /__test/instances {id, binding, settings, vars}   builds a fresh app (own rate limiter, auth cache) on the
//                                           D1 binding named (each test server has a database of its own);
//   /__i/<id>/<path>                        is <path> on that app;
//   x-test-now: <ms>                        sets that app's clock (the Node tests move time by hand).
// The production entry's scheduled() handler is re-exported unchanged for the cron test.
import production, { type Built, buildEdgeApp, serveEdge } from '../../api/edge/worker';
import type { ExecutionContextLike } from '../../api/edge/cloudflare';
import type { EdgeEnv } from '../../api/edge/env';

interface Instance {
  built: Built;
  now: number;
}

const instances = new Map<string, Instance>();

export default {
  async fetch(request: Request, env: EdgeEnv, ctx: ExecutionContextLike): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/__test/instances' && request.method === 'POST') {
      const { id, binding, settings, now, vars } = (await request.json()) as {
        id: string;
        binding: string;
        settings?: Record<string, unknown>;
        now: number;
        /** Variables over the runtime's (e.g. SQS_QUEUE_URL + credentials for the SQS producer test). */
        vars?: Record<string, string>;
      };
      const db = (env as unknown as Record<string, EdgeEnv['DB']>)[binding];
      if (!db) return Response.json({ error: { code: 'no_binding', message: binding } }, { status: 500 });
      const inst: Instance = { built: undefined as never, now };
      inst.built = await buildEdgeApp({ ...env, ...vars, DB: db }, { clock: () => inst.now, settings });
      instances.set(id, inst);
      return Response.json({ ok: true });
    }
    const m = /^\/__i\/([^/]+)(\/.*)?$/.exec(url.pathname);
    if (!m) return production.fetch(request, env, ctx);
    const inst = instances.get(m[1]);
    if (!inst) return Response.json({ error: { code: 'no_test_instance', message: m[1] } }, { status: 500 });
    const now = request.headers.get('x-test-now');
    if (now) inst.now = Number(now);
    const inner = new Request(new URL((m[2] ?? '/') + url.search, url.origin), request);
    return serveEdge(inst.built, inner, env, ctx);
  },
  scheduled: production.scheduled,
};
