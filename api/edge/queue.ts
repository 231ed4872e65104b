// The training-job queue at the edge: the SQS producer (the same SqsJobQueue adapter the Node side uses, on
// @aws-sdk/client-sqs under workerd's nodejs_compat) when SQS_QUEUE_URL is set; otherwise the SQL queue in D1,
// which only a worker that can reach D1 would drain (development, tests).
import { SQSClient } from '@aws-sdk/client-sqs';
import { SqlJobQueue, type QueueDb } from '../../shared/queue/sql-queue';
import { SqsJobQueue } from '../../shared/queue/sqs-queue';
import type { JobQueue } from '../../shared/queue/contract';
import { TRAINING_QUEUE, type TrainingJobPayload } from '../../shared/training-queue';
import type { EdgeEnv } from './env';

export function edgeTrainingQueue(env: EdgeEnv, db: QueueDb): JobQueue<TrainingJobPayload> {
  if (!env.SQS_QUEUE_URL) return new SqlJobQueue<TrainingJobPayload>(db, { queue: TRAINING_QUEUE });
  if (!env.SQS_DLQ_URL) throw new Error('SQS_QUEUE_URL needs SQS_DLQ_URL (the redrive target)');
  if (!env.AWS_ACCESS_KEY_ID || !env.AWS_SECRET_ACCESS_KEY) throw new Error('SQS needs the AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY secrets');
  const sqs = new SQSClient({
    region: env.AWS_REGION ?? 'us-east-1',
    endpoint: env.SQS_ENDPOINT || undefined,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  return new SqsJobQueue<TrainingJobPayload>(sqs, { queueUrl: env.SQS_QUEUE_URL, dlqUrl: env.SQS_DLQ_URL, maxAttempts: Number(env.SQS_MAX_ATTEMPTS ?? 5) });
}
