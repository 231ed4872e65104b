// The SQS adapter of the job queue contract (contract.ts), on @aws-sdk/client-sqs.
//
// Mapping: lease = visibility timeout (ReceiveMessage VisibilityTimeout, extended by ChangeMessageVisibility
// as the heartbeat); lease token = receipt handle; attempts = ApproximateReceiveCount; complete =
// DeleteMessage; retry backoff = ChangeMessageVisibility(delay) on the failed message; dead-letter = the
// queue's redrive policy (maxReceiveCount + DLQ). The adapter never moves messages to the DLQ itself: on the
// final failure it makes the message visible at once and SQS moves it on its next receive.
//
// Why a FIFO queue (the adapter refuses a standard one): idempotent enqueue needs a deduplication key, and
// FIFO's MessageDeduplicationId gives one with no extra store. Its window is 5 minutes, which covers what the
// queue-level key is for — a retried send after a timeout or crash — while "one active training run per
// project" is a longer-lived guarantee that lives in the database (training_runs_one_active_uq), the same
// for both adapters. A DB-side dedupe table would have meant a second store for the edge producer (D1) and a
// second failure mode (table written, send lost). Costs of FIFO: no per-message DelaySeconds (backoff uses
// the visibility timeout instead, which works on FIFO) and 300 sends/s per queue without batching (a training
// queue sees a few per hour). Each message gets its own MessageGroupId, so FIFO ordering never makes one
// slow job block another.
//
// Lease safety: SQS accepts DeleteMessage with a stale receipt handle without error (and may or may not
// delete), so the adapter also refuses locally once its lease has run out (minus `safetyMs`). The local
// deadline is computed from a clock read taken BEFORE the receive request, so it is never later than the
// server's.
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import {
  type BackoffConfig,
  backoffDelayMs,
  type ClaimOptions,
  type Clock,
  type DeadJob,
  defaultBackoff,
  type EnqueueOptions,
  type EnqueueResult,
  type FailResult,
  type JobQueue,
  type Lease,
  LeaseLostError,
  systemClock,
} from './contract';

export interface SqsQueueConfig {
  /** The FIFO queue's URL (ends in `.fifo`). */
  queueUrl: string;
  /** Its dead-letter queue's URL (from the redrive policy when built by `SqsJobQueue.connect`). */
  dlqUrl: string;
  /** The redrive policy's maxReceiveCount: attempts before SQS dead-letters a message. */
  maxAttempts: number;
  /** Retry backoff after a failure; rounded up to whole seconds (visibility timeouts are in seconds). */
  backoff: BackoffConfig;
  /** Refuse complete/fail/heartbeat when less than this remains of the lease (ms): covers request latency. */
  safetyMs: number;
  now: Clock;
  random: () => number;
  newId: () => string;
}

const defaults = {
  backoff: defaultBackoff,
  safetyMs: 250,
  now: systemClock,
  random: Math.random,
  newId: () => crypto.randomUUID(),
};

/** SQS error names that mean "this receipt handle no longer holds the message". */
const LOST = new Set(['MessageNotInflight', 'ReceiptHandleIsInvalid', 'InvalidReceiptHandle']);

export class SqsJobQueue<P = unknown> implements JobQueue<P> {
  readonly cfg: SqsQueueConfig;

  constructor(
    private readonly sqs: SQSClient,
    cfg: Partial<SqsQueueConfig> & Pick<SqsQueueConfig, 'queueUrl' | 'dlqUrl' | 'maxAttempts'>,
  ) {
    this.cfg = { ...defaults, ...cfg };
    if (!this.cfg.queueUrl.endsWith('.fifo')) throw new Error(`SQS job queue must be FIFO (got ${this.cfg.queueUrl})`);
  }

  /** Builds the adapter from the queue's own redrive policy, so maxAttempts and the DLQ cannot disagree with it. */
  static async connect<P>(sqs: SQSClient, queueUrl: string, cfg: Partial<SqsQueueConfig> = {}): Promise<SqsJobQueue<P>> {
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }));
    const raw = attrs.Attributes?.RedrivePolicy;
    if (!raw) throw new Error(`queue ${queueUrl} has no redrive policy: failed jobs would never be dead-lettered`);
    const policy = JSON.parse(raw) as { deadLetterTargetArn: string; maxReceiveCount: number | string };
    const dlqName = policy.deadLetterTargetArn.split(':').at(-1)!;
    const owner = policy.deadLetterTargetArn.split(':').at(-2);
    const { QueueUrl: dlqUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: dlqName, QueueOwnerAWSAccountId: owner }));
    return new SqsJobQueue<P>(sqs, { ...cfg, queueUrl, dlqUrl: dlqUrl!, maxAttempts: Number(policy.maxReceiveCount) });
  }

  async enqueue(payload: P, opts: EnqueueOptions = {}): Promise<EnqueueResult> {
    if (opts.maxAttempts !== undefined && opts.maxAttempts !== this.cfg.maxAttempts) {
      throw new Error(`SQS attempts come from the redrive policy (${this.cfg.maxAttempts}); got maxAttempts ${opts.maxAttempts}`);
    }
    const unique = this.cfg.newId();
    const out = await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: this.cfg.queueUrl,
        MessageBody: JSON.stringify(payload),
        MessageGroupId: unique,
        MessageDeduplicationId: opts.dedupeKey ?? unique,
      }),
    );
    // A deduplicated send succeeds and returns the ORIGINAL MessageId; SQS does not say it was a duplicate, so
    // `created` is unknown (undefined) when a dedupe key was given.
    return { id: out.MessageId!, created: opts.dedupeKey === undefined ? true : undefined };
  }

  async claim(opts: ClaimOptions): Promise<Lease<P> | null> {
    const visibility = Math.max(1, Math.ceil(opts.leaseMs / 1000));
    const asked = this.cfg.now();
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.cfg.queueUrl,
        MaxNumberOfMessages: 1,
        VisibilityTimeout: visibility,
        WaitTimeSeconds: Math.min(20, Math.floor((opts.waitMs ?? 0) / 1000)),
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      { abortSignal: opts.signal },
    );
    const m = out.Messages?.[0];
    if (!m) return null;
    return {
      jobId: m.MessageId!,
      payload: JSON.parse(m.Body!) as P,
      attempts: Number(m.Attributes?.ApproximateReceiveCount ?? 1),
      maxAttempts: this.cfg.maxAttempts,
      token: m.ReceiptHandle!,
      lockedUntil: asked + visibility * 1000,
    };
  }

  async heartbeat(lease: Lease<P>, leaseMs: number): Promise<Lease<P>> {
    this.assertHeld(lease, 'heartbeat');
    const visibility = Math.max(1, Math.ceil(leaseMs / 1000));
    const asked = this.cfg.now();
    await this.changeVisibility(lease, visibility);
    return { ...lease, lockedUntil: asked + visibility * 1000 };
  }

  async complete(lease: Lease<P>): Promise<void> {
    this.assertHeld(lease, 'complete');
    await this.sqs.send(new DeleteMessageCommand({ QueueUrl: this.cfg.queueUrl, ReceiptHandle: lease.token }));
  }

  async fail(lease: Lease<P>, error: string): Promise<FailResult> {
    this.assertHeld(lease, 'fail');
    // SQS cannot store the error on the message; it goes to the log (the runner logs every failure).
    if (lease.attempts >= this.cfg.maxAttempts) {
      // Visible now: the next receive counts maxAttempts + 1 > maxReceiveCount and SQS moves it to the DLQ.
      await this.changeVisibility(lease, 0);
      return { status: 'dead' };
    }
    const delayS = Math.ceil(backoffDelayMs(lease.attempts, this.cfg.backoff, this.cfg.random) / 1000);
    const asked = this.cfg.now();
    await this.changeVisibility(lease, delayS);
    void error;
    return { status: 'retry', runAt: asked + delayS * 1000 };
  }

  /** A peek at the DLQ: receives with VisibilityTimeout 0 so the messages stay available to operators. */
  async deadLetters(limit = 10): Promise<DeadJob<P>[]> {
    const out = await this.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: this.cfg.dlqUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(10, limit)),
        VisibilityTimeout: 0,
        WaitTimeSeconds: 0,
      }),
    );
    return (out.Messages ?? []).map((m) => ({
      id: m.MessageId!,
      payload: JSON.parse(m.Body!) as P,
      attempts: this.cfg.maxAttempts,
      lastError: null,
    }));
  }

  private assertHeld(lease: Lease<P>, op: string): void {
    if (this.cfg.now() >= lease.lockedUntil - this.cfg.safetyMs) {
      throw new LeaseLostError(lease.jobId, `${op} after the visibility timeout ran out`);
    }
  }

  private async changeVisibility(lease: Lease<P>, seconds: number): Promise<void> {
    try {
      await this.sqs.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: this.cfg.queueUrl, ReceiptHandle: lease.token, VisibilityTimeout: seconds }),
      );
    } catch (e) {
      if (e instanceof Error && LOST.has(e.name)) throw new LeaseLostError(lease.jobId, e.message);
      throw e;
    }
  }
}
