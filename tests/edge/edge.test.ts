// prefloop on workerd: the production edge app (api/edge/worker.ts through tests/edge/test-worker.ts), bundled
// by wrangler from wrangler.toml and run by Miniflare on a migrated local D1 and an R2 bucket. One workerd for
// the whole file (bundling + starting it is most of the cost). What runs here:
//   - the Node runtime's API contract tests (tests/api: feedback, batch, idempotency, export, stats, auth, every
//     error status, rate limit, tenant isolation), unchanged: tests/api/helpers' startTestServer is swapped for
//     one that creates a fresh instance of the edge app on a wiped D1;
//   - generation with onnxruntime-web inside workerd, and the policy routes (tests/edge/generation.ts);
//   - the training-run routes' tests (tests/worker/training-runs-api.test.ts), the cron trigger's scheduler tick
//     and the SQS producer (tests/edge/training.ts).
import { join } from 'node:path';
import { afterAll, beforeAll, vi } from 'vitest';
import { generationSuite } from './generation';
import { type EdgeRuntime, root, startEdge, startEdgeTestServer } from './harness';
import { trainingSuite } from './training';

let edge: EdgeRuntime | undefined;
export const edgeRuntime = (): EdgeRuntime => {
  if (!edge) throw new Error('edge runtime not started');
  return edge;
};

vi.mock('../api/helpers', async (importOriginal) => {
  const original = await importOriginal<typeof import('../api/helpers')>();
  return {
    ...original,
    startTestServer: (opts: Parameters<typeof original.startTestServer>[0]) => startEdgeTestServer(edgeRuntime(), opts),
  };
});

beforeAll(async () => {
  edge = await startEdge(join(root, 'tests/edge/test-worker.ts'));
}, 240_000);
afterAll(async () => {
  await edge?.dispose();
}, 30_000);

await import('../api/feedback.test');
await import('../api/datasets-stats.test');
await import('../api/auth-errors.test');
await import('../worker/training-runs-api.test');

generationSuite(edgeRuntime);
trainingSuite(edgeRuntime);
