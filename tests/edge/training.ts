// Training at the edge: the cron trigger's scheduled() handler (the production entry's) runs the scheduler tick
// on D1 and queues a due run; with SQS configured, POST /v1/training-runs sends the job from inside workerd
// through the SQS producer (@aws-sdk/client-sqs under nodejs_compat) to an SQS emulator on 127.0.0.1.
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { eq } from 'drizzle-orm';
import { type FauxqsServer, startFauxqs } from 'fauxqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedback, jobs, projects, trainingRuns } from '../../shared/schema';
import { startEdgeTestServer, type EdgeRuntime } from './harness';

export function trainingSuite(edgeRuntime: () => EdgeRuntime): void {
  describe('training at the edge', () => {
    it('the cron trigger runs the scheduler tick on D1 and queues the due run once', async () => {
      const { db, mf } = edgeRuntime();
      const t = Date.now();
      await db.insert(projects).values({ id: 'proj_cron', name: 'cron', config: { schedule: { minNewFeedback: 2 } }, createdAt: t - 1 });
      await db.insert(projects).values({ id: 'proj_quiet', name: 'quiet', config: { schedule: { minNewFeedback: 5 } }, createdAt: t - 1 });
      for (const [i, p] of ['proj_cron', 'proj_cron', 'proj_quiet'].entries()) {
        await db.insert(feedback).values({ id: `fb_cron_${i}`, projectId: p, type: 'thumbs', prompt: 'p', response: 'r', value: 1, bodyHash: `h${i}`, createdAt: t });
      }
      const worker = (await mf.getWorker()) as unknown as { scheduled(o: { cron: string; scheduledTime: Date }): Promise<unknown> };
      await worker.scheduled({ cron: '*/5 * * * *', scheduledTime: new Date(t) });
      const runs = await db.select().from(trainingRuns);
      expect(runs.map((r) => [r.projectId, r.trigger, r.status])).toEqual([['proj_cron', 'threshold', 'queued']]);
      const queued = await db.select().from(jobs).where(eq(jobs.dedupeKey, runs[0].id));
      expect(queued).toHaveLength(1);
      expect(runs[0].jobId).toBe(queued[0].id); // the enqueue was confirmed on the run
      await worker.scheduled({ cron: '*/5 * * * *', scheduledTime: new Date(t + 300_000) }); // active run: nothing new
      expect(await db.select().from(trainingRuns)).toHaveLength(1);
    });

    describe('with the SQS producer', () => {
      let server: FauxqsServer;
      let sqs: SQSClient;
      let queueUrl: string;
      let dlqUrl: string;
      beforeAll(async () => {
        server = await startFauxqs({ port: 0, logger: false });
        sqs = new SQSClient({ endpoint: `http://127.0.0.1:${server.port}`, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
        const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'edge-jobs-dlq.fifo', Attributes: { FifoQueue: 'true' } }));
        dlqUrl = dlq.QueueUrl!;
        const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn;
        const q = await sqs.send(
          new CreateQueueCommand({
            QueueName: 'edge-jobs.fifo',
            Attributes: { FifoQueue: 'true', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: arn, maxReceiveCount: 5 }) },
          }),
        );
        queueUrl = q.QueueUrl!;
      });
      afterAll(async () => {
        sqs?.destroy();
        await server?.stop();
      });

      it('POST /v1/training-runs sends the job to SQS from workerd and binds it to the run', async () => {
        const s = await startEdgeTestServer(edgeRuntime(), {
          vars: {
            SQS_QUEUE_URL: queueUrl,
            SQS_DLQ_URL: dlqUrl,
            SQS_MAX_ATTEMPTS: '5',
            SQS_ENDPOINT: `http://127.0.0.1:${server.port}`,
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test-secret',
          },
        });
        const res = await s.call('/v1/training-runs', { method: 'POST', json: {} });
        expect(res.status).toBe(201);
        const { run } = await res.json();
        const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
        expect(got.Messages?.map((m) => JSON.parse(m.Body!))).toEqual([{ runId: run.id, projectId: s.defaultProjectId }]);
        const [row] = await s.db.select().from(trainingRuns).where(eq(trainingRuns.id, run.id));
        expect(row.jobId).toBe(got.Messages![0].MessageId);
        expect(await s.count('jobs')).toBe(0); // nothing went to the D1 queue
        // Idempotent: a second POST returns the active run and sends nothing.
        expect((await s.call('/v1/training-runs', { method: 'POST', json: {} })).status).toBe(200);
      });
    });
  });
}
