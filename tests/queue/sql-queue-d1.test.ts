// The same SQL queue code on Cloudflare D1 through drizzle's d1 driver, inside workerd (miniflare, the engine
// `wrangler dev --local` runs; it comes with wrangler). Proves the adapter uses nothing libsql-only: the whole
// contract suite runs here too, and so do the run/job protocol and croner (the scheduler's cron parser).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { drizzle, type DrizzleD1Database } from 'drizzle-orm/d1';
import { migrate } from 'drizzle-orm/d1/migrator';
import { Miniflare } from 'miniflare';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqlJobQueue } from '../../shared/queue/sql-queue';
import { schedulerTick } from '../../shared/scheduler';
import { feedback, projects } from '../../shared/schema';
import { enqueueTrainingRun, TRAINING_QUEUE, type TrainingJobPayload } from '../../shared/training-queue';
import { queueContract, type TestPayload } from './contract';

const root = join(import.meta.dirname, '..', '..');
let mf: Miniflare;
let db: DrizzleD1Database;
let queues = 0;

beforeAll(async () => {
  mf = new Miniflare({
    modules: [
      {
        type: 'ESModule',
        path: 'worker.mjs',
        // croner evaluated by workerd itself: the scheduler's cron math must hold on the edge.
        contents: `import { Cron } from './croner.js';
export default { async fetch(req) {
  const u = new URL(req.url);
  const c = new Cron(u.searchParams.get('cron'), { paused: true, timezone: u.searchParams.get('tz') });
  return Response.json({ next: c.nextRun(new Date(Number(u.searchParams.get('from')))).toISOString() });
} }`,
      },
      { type: 'ESModule', path: 'croner.js', contents: readFileSync(join(root, 'node_modules/croner/dist/croner.js'), 'utf8') },
    ],
    compatibilityDate: '2025-01-01',
    d1Databases: ['DB'],
  });
  const d1 = await mf.getD1Database('DB');
  db = drizzle(d1 as never);
  await migrate(db, { migrationsFolder: join(root, 'migrations') });
}, 60_000);
afterAll(async () => {
  await mf?.dispose();
});

queueContract('sql (Cloudflare D1 via drizzle d1, workerd)', async (opts) => {
  let offset = 0;
  const now = () => Date.now() + offset;
  const cfg = { queue: `q${++queues}`, maxAttempts: opts.maxAttempts, backoff: opts.backoff, random: opts.random, now };
  return {
    queue: new SqlJobQueue<TestPayload>(db, cfg),
    other: new SqlJobQueue<TestPayload>(db, cfg),
    advance: async (ms) => {
      offset += Math.max(0, ms);
    },
    now,
    recordsLastError: true,
    granularityMs: 1,
  };
});

describe('on D1', () => {
  it('the run/job protocol and the scheduler tick work unchanged', async () => {
    const t = Date.UTC(2026, 10, 25, 9, 30);
    const queue = new SqlJobQueue<TrainingJobPayload>(db, { queue: TRAINING_QUEUE, now: () => t });
    const deps = { db, queue, now: () => t };
    await db.insert(projects).values({ id: 'proj_d1', name: 'd1', config: { schedule: { minNewFeedback: 2 } }, createdAt: t - 1 });
    for (let i = 0; i < 2; i++) {
      await db.insert(feedback).values({ id: `fb_${i}`, projectId: 'proj_d1', type: 'thumbs', prompt: 'p', response: 'r', value: 1, bodyHash: `h${i}`, createdAt: t });
    }
    const report = await schedulerTick(deps);
    expect(report.enqueued.map((e) => [e.projectId, e.trigger])).toEqual([['proj_d1', 'threshold']]);
    const again = await Promise.all([1, 2, 3].map(() => enqueueTrainingRun(deps, { projectId: 'proj_d1', trigger: 'manual' })));
    expect(again.every((r) => !r.created && r.run.id === report.enqueued[0].runId)).toBe(true);
    const lease = await queue.claim({ workerId: 'edge', leaseMs: 1_000 });
    expect(lease?.payload).toEqual({ runId: report.enqueued[0].runId, projectId: 'proj_d1' });
  });

  it('croner computes the same next tick inside workerd as on Node', async () => {
    const from = Date.UTC(2026, 10, 25, 8, 0);
    const res = await mf.dispatchFetch(`http://127.0.0.1/?cron=${encodeURIComponent('0 10 * * *')}&tz=Europe/Berlin&from=${from}`);
    expect(await res.json()).toEqual({ next: '2026-11-25T09:00:00.000Z' });
  });
});
