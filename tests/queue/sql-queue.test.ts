// The SQL adapter on a real libsql database file: the shared contract suite, plus what only SQL can promise
// (per-job attempts, last_error, dedupe for as long as the job is unfinished).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LibSQLDatabase } from 'drizzle-orm/libsql';
import { SqlJobQueue } from '../../shared/queue/sql-queue';
import { queueContract, type TestPayload } from './contract';
import { makeTestDb, type TestDb } from './helpers';

let db: TestDb;
let connA: LibSQLDatabase;
let connB: LibSQLDatabase;
let queues = 0;

beforeAll(async () => {
  db = await makeTestDb();
  connA = await db.connect();
  connB = await db.connect();
});
afterAll(() => db?.close());

queueContract('sql (libsql file, two connections)', async (opts) => {
  // Real time plus an offset the test moves: the runner's timers run in real time, and `advance` jumps
  // leases and backoffs forward without sleeping.
  let offset = 0;
  const now = () => Date.now() + offset;
  const queue = `q${++queues}`;
  const cfg = { queue, maxAttempts: opts.maxAttempts, backoff: opts.backoff, random: opts.random, now };
  return {
    queue: new SqlJobQueue<TestPayload>(connA, cfg),
    other: new SqlJobQueue<TestPayload>(connB, cfg),
    advance: async (ms) => {
      offset += Math.max(0, ms);
    },
    now,
    recordsLastError: true,
    granularityMs: 1,
  };
});

describe('SqlJobQueue specifics', () => {
  it('dedupes for as long as the job is unfinished, and accepts the key again once it is done', async () => {
    const q = new SqlJobQueue<TestPayload>(connA, { queue: `q${++queues}` });
    const a = await q.enqueue({ n: 1 }, { dedupeKey: 'k' });
    expect(a.created).toBe(true);
    expect(await q.enqueue({ n: 1 }, { dedupeKey: 'k' })).toEqual({ id: a.id, created: false });
    const l = (await q.claim({ workerId: 'w', leaseMs: 60_000 }))!;
    expect(await q.enqueue({ n: 1 }, { dedupeKey: 'k' })).toEqual({ id: a.id, created: false });
    await q.complete(l);
    const b = await q.enqueue({ n: 2 }, { dedupeKey: 'k' });
    expect(b.created).toBe(true);
    expect(b.id).not.toBe(a.id);
  });

  it('records attempts, last_error and the lease holder on the row', async () => {
    let t = 1_000_000;
    const q = new SqlJobQueue<TestPayload>(connA, { queue: `q${++queues}`, now: () => t, backoff: { baseMs: 100, maxMs: 1_000, jitter: 0 } });
    const { id } = await q.enqueue({ n: 1 }, { maxAttempts: 4 });
    const l = (await q.claim({ workerId: 'host-1', leaseMs: 500 }))!;
    let row = (await q.get(id))!;
    expect(row).toMatchObject({ status: 'leased', attempts: 1, maxAttempts: 4, lockedUntil: t + 500 });
    expect(row.lockedBy).toMatch(/^host-1#/);
    t += 10;
    expect(await q.fail(l, 'disk full')).toEqual({ status: 'retry', runAt: t + 100 });
    row = (await q.get(id))!;
    expect(row).toMatchObject({ status: 'ready', lastError: 'disk full', lockedBy: null, lockedUntil: null, runAt: t + 100 });
  });

  it('a claim race between many consumers on separate connections hands each job to exactly one', async () => {
    const name = `q${++queues}`;
    const conns = [connA, connB, await db.connect(), await db.connect()];
    const qs = conns.map((c) => new SqlJobQueue<TestPayload>(c, { queue: name }));
    for (let n = 0; n < 40; n++) await qs[0].enqueue({ n });
    const claimed: number[] = [];
    await Promise.all(
      qs.map(async (q, i) => {
        for (;;) {
          const l = await q.claim({ workerId: `w${i}`, leaseMs: 60_000 });
          if (!l) return;
          claimed.push(l.payload.n);
        }
      }),
    );
    expect(claimed.sort((a, b) => a - b)).toEqual([...Array(40).keys()]);
  });
});
