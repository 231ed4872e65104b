// The training-jobs queue: SQS with a dead-letter queue, the backlog metric the workers scale on, and the two
// alarms an operator needs (a job gave up; jobs wait too long). The worker's SQS adapter extends visibility
// while a run is alive; the timeout here is only the ceiling for a worker that died without releasing its lease.
//
// FIFO because the SQS adapter (shared/queue/sqs-queue.ts) refuses anything else: its idempotent enqueue is
// FIFO's MessageDeduplicationId, and it gives every job its own message group so no job waits behind another.
// Content-based deduplication is on only for senders that cannot set a deduplication id — the schedule rule
// (EventBridge rule targets take a group id but no deduplication id); the adapter always sets its own.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface JobsQueueProps {
  /** Visibility timeout in seconds: longer than the longest training run. */
  visibilityTimeoutS: number;
  /** Deliveries before a message moves to the dead-letter queue. */
  maxReceiveCount: number;
  /** Oldest-message age in seconds at which the wait alarm fires. */
  oldestMessageAlarmS: number;
}

/** Long polling at the SQS maximum: idle workers make one request per 20 s instead of spinning. */
export const RECEIVE_WAIT_S = 20;

export class JobsQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;
  /** Jobs waiting plus jobs being worked on: the number of workers that would be busy right now. */
  readonly backlog: cloudwatch.MathExpression;
  readonly deadLetterAlarm: cloudwatch.Alarm;
  readonly oldestMessageAlarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: JobsQueueProps) {
    super(scope, id);

    // AWS advises a dead-letter retention longer than the source's: SQS keeps a message's original enqueue time
    // when it moves it, so an equal retention could expire it almost at once.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetterQueue', {
      fifo: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    this.queue = new sqs.Queue(this, 'Queue', {
      fifo: true,
      contentBasedDeduplication: true,
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(props.visibilityTimeoutS),
      receiveMessageWaitTime: Duration.seconds(RECEIVE_WAIT_S),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount },
    });

    // In-flight messages count: scaling on visible messages alone (the ecs-patterns queue service) would scale
    // to zero the moment the last job was picked up, stopping the task that runs it. FILL(…, 0) turns the gaps
    // SQS leaves for an idle queue into 0, so idle means "scale to zero", not "insufficient data".
    const period = Duration.minutes(1);
    this.backlog = new cloudwatch.MathExpression({
      expression: 'FILL(visible, 0) + FILL(inFlight, 0)',
      usingMetrics: {
        visible: this.queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        inFlight: this.queue.metricApproximateNumberOfMessagesNotVisible({ period, statistic: 'Maximum' }),
      },
      label: 'Training jobs waiting or running',
      period,
    });

    // One message in the dead-letter queue is one job that failed maxReceiveCount times: always worth a look.
    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLetterAlarm', {
      alarmDescription: 'A training job exhausted its deliveries and was moved to the dead-letter queue.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    this.oldestMessageAlarm = new cloudwatch.Alarm(this, 'OldestMessageAlarm', {
      alarmDescription:
        'The oldest training job is older than the visibility timeout plus the allowed wait: workers are not keeping up or not starting.',
      metric: this.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' }),
      threshold: props.oldestMessageAlarmS,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
  }
}
