// The SQS adapter on the fauxqs emulator (in-process, traffic only to 127.0.0.1): the same contract suite as
// the SQL adapter. Each test gets its own FIFO queue and FIFO dead-letter queue with a redrive policy, and the
// adapter is built from that policy (SqsJobQueue.connect). SQS keeps real time, so `advance` really waits;
// leases are 1 s, the smallest visibility timeout.
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eq } from 'drizzle-orm';
import { SqsJobQueue } from '../../shared/queue/sqs-queue';
import { projects, trainingRuns } from '../../shared/schema';
import { beginRunAttempt, enqueueTrainingRun, recoverUnconfirmedRuns, type TrainingJobPayload } from '../../shared/training-queue';
import { queueContract, type TestPayload } from './contract';
import { makeTestDb } from './helpers';

let server: FauxqsServer;
let sqsA: SQSClient;
let sqsB: SQSClient;
let queues = 0;

/** Every host a request was sent to: must be 127.0.0.1 only (fauxqs listens on all interfaces). */
const hosts = new Set<string>();

function client(port: number): SQSClient {
  const c = new SQSClient({
    endpoint: `http://127.0.0.1:${port}`,
    // fauxqs names queues `http://sqs.<region>.localhost:<port>/...`; the URL is only an identifier here, the
    // traffic goes to the endpoint above.
    useQueueUrlAsEndpoint: false,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  c.middlewareStack.add(
    (next) => async (args) => {
      hosts.add(String((args.request as { hostname?: string }).hostname));
      return next(args);
    },
    { step: 'finalizeRequest', name: 'recordHost' },
  );
  return c;
}

beforeAll(async () => {
  server = await startFauxqs({ port: 0, logger: false });
  sqsA = client(server.port);
  sqsB = client(server.port);
});
afterAll(async () => {
  expect([...hosts]).toEqual(['127.0.0.1']);
  sqsA?.destroy();
  sqsB?.destroy();
  await server?.stop();
});

/** A FIFO queue whose redrive policy dead-letters after `maxReceiveCount` receives. */
async function createQueuePair(maxReceiveCount: number): Promise<string> {
  const name = `jobs-${++queues}`;
  const dlq = await sqsA.send(new CreateQueueCommand({ QueueName: `${name}-dlq.fifo`, Attributes: { FifoQueue: 'true' } }));
  const dlqAttrs = await sqsA.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }));
  const q = await sqsA.send(
    new CreateQueueCommand({
      QueueName: `${name}.fifo`,
      Attributes: {
        FifoQueue: 'true',
        VisibilityTimeout: '30',
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqAttrs.Attributes!.QueueArn, maxReceiveCount }),
      },
    }),
  );
  return q.QueueUrl!;
}

queueContract('sqs (fauxqs FIFO + DLQ redrive)', async (opts) => {
  const url = await createQueuePair(opts.maxAttempts);
  const cfg = { backoff: opts.backoff, random: opts.random };
  return {
    queue: await SqsJobQueue.connect<TestPayload>(sqsA, url, cfg),
    other: await SqsJobQueue.connect<TestPayload>(sqsB, url, cfg),
    advance: (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms))),
    now: () => Date.now(),
    recordsLastError: false,
    granularityMs: 1_000,
  };
});

describe('SqsJobQueue specifics', () => {
  it('reads maxAttempts and the DLQ from the redrive policy, and refuses a queue without one', async () => {
    const url = await createQueuePair(4);
    const q = await SqsJobQueue.connect(sqsA, url);
    expect(q.cfg.maxAttempts).toBe(4);
    expect(q.cfg.dlqUrl).toMatch(/-dlq\.fifo$/);
    await expect(q.enqueue({ n: 1 }, { maxAttempts: 9 })).rejects.toThrow(/redrive policy/);
    const bare = await sqsA.send(new CreateQueueCommand({ QueueName: `bare-${++queues}.fifo`, Attributes: { FifoQueue: 'true' } }));
    await expect(SqsJobQueue.connect(sqsA, bare.QueueUrl!)).rejects.toThrow(/no redrive policy/);
    expect(() => new SqsJobQueue(sqsA, { queueUrl: 'http://127.0.0.1:1/000000000000/std', dlqUrl: 'x', maxAttempts: 3 })).toThrow(/FIFO/);
  });

  it('a long poll returns as soon as a job arrives, and stop() can abort it', async () => {
    const q = await SqsJobQueue.connect<TestPayload>(sqsA, await createQueuePair(3));
    const t0 = Date.now();
    const pending = q.claim({ workerId: 'a', leaseMs: 1_000, waitMs: 10_000 });
    setTimeout(() => void q.enqueue({ n: 42 }), 200);
    const lease = await pending;
    expect(lease?.payload).toEqual({ n: 42 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    await q.complete(lease!);
    const ac = new AbortController();
    const t1 = Date.now();
    const idle = q.claim({ workerId: 'a', leaseMs: 1_000, waitMs: 10_000, signal: ac.signal });
    setTimeout(() => ac.abort(), 200);
    await expect(idle).rejects.toThrow();
    expect(Date.now() - t1).toBeLessThan(2_000);
  });
});

describe('training runs with the database + SQS (no shared transaction)', () => {
  it('concurrent triggers queue one message; a re-send after a lost confirmation is deduplicated by SQS', async () => {
    const tdb = await makeTestDb();
    try {
      const db = await tdb.connect();
      const queue = await SqsJobQueue.connect<TrainingJobPayload>(sqsA, await createQueuePair(3));
      let t = Date.now();
      const deps = { db, queue, now: () => t };
      await db.insert(projects).values({ id: 'proj_s', name: 's', createdAt: t });
      const results = await Promise.all([1, 2, 3, 4].map(() => enqueueTrainingRun(deps, { projectId: 'proj_s', trigger: 'manual' })));
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const run = results.find((r) => r.created)!.run;
      expect(run.jobId).toBeTruthy();
      // Pretend the confirmation (step 3) was lost: the tick re-sends with the same dedupe key (the run id).
      await db.update(trainingRuns).set({ jobId: null }).where(eq(trainingRuns.id, run.id));
      t += 31_000;
      expect((await recoverUnconfirmedRuns(deps)).requeued).toEqual([run.id]);
      const [after] = await db.select().from(trainingRuns).where(eq(trainingRuns.id, run.id));
      expect(after.jobId).toBe(run.jobId); // SQS answered with the original MessageId
      // Exactly one message is deliverable, and the gate binds the run to it.
      const lease = (await queue.claim({ workerId: 'a', leaseMs: 5_000 }))!;
      expect(lease.payload).toEqual({ runId: run.id, projectId: 'proj_s' });
      expect(await queue.claim({ workerId: 'b', leaseMs: 5_000 })).toBeNull();
      expect((await beginRunAttempt(db, lease.jobId, lease.payload, t)).proceed).toBe(true);
      await queue.complete(lease);
    } finally {
      tdb.close();
    }
  });
});
