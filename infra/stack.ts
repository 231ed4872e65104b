// The AWS deployment of prefloop's training side: jobs queue (+ dead letters), artifacts bucket, GPU workers
// that scale with the queue down to zero, the schedule tick, alarms, and a producer policy for the API.
// Synthesizes offline: no context lookups, no Docker unless workerImageAsset is set (and even then the image is
// only staged at synth and built at deploy).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { App, CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type { Construct } from 'constructs';
import { ArtifactsBucket } from './artifacts-bucket';
import { resolveInfraConfig, type ResolvedInfraConfig } from './config';
import { GpuWorkers } from './gpu-workers';
import { JobsQueue } from './jobs-queue';
import { SCHEDULE_TICK_GROUP, SCHEDULE_TICK_MESSAGE } from './worker-env';

/** Repository root: the Docker build context of the worker image. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Worker Dockerfile, relative to the repository root. */
export const WORKER_DOCKERFILE = 'Dockerfile.worker';

export interface PrefloopStackProps extends StackProps {
  config: ResolvedInfraConfig;
}

export class PrefloopStack extends Stack {
  readonly jobs: JobsQueue;
  readonly artifacts: ArtifactsBucket;
  readonly workers: GpuWorkers;
  readonly alarmTopic: sns.Topic;
  readonly producerPolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: PrefloopStackProps) {
    super(scope, id, props);
    const { config } = props;

    this.jobs = new JobsQueue(this, 'TrainingJobs', {
      visibilityTimeoutS: config.visibilityTimeoutS,
      maxReceiveCount: config.maxReceiveCount,
      oldestMessageAlarmS: config.oldestMessageAlarmS,
    });
    this.artifacts = new ArtifactsBucket(this, 'Artifacts', { noncurrentVersionDays: config.noncurrentVersionDays });

    this.workers = new GpuWorkers(this, 'Workers', {
      queue: this.jobs.queue,
      deadLetterQueue: this.jobs.deadLetterQueue,
      backlog: this.jobs.backlog,
      bucket: this.artifacts.bucket,
      artifactsPrefix: config.artifactsPrefix,
      image: this.workerImage(config),
      instanceType: config.instanceType,
      maxWorkers: config.maxWorkers,
      taskCpu: config.taskCpu,
      taskMemoryMiB: config.taskMemoryMiB,
      tfBackend: config.tfBackend,
      maxRunSeconds: config.maxTrainingMinutes * 60,
      logRetentionDays: config.logRetentionDays,
      databaseUrlSecretArn: config.databaseUrlSecretArn,
    });

    // The schedule only says "it is time"; which projects are due is the worker's scheduler's decision, so the
    // rule stays one line of configuration. EventBridge gets a queue-policy grant limited to this rule.
    new events.Rule(this, 'ScheduleTick', {
      description: 'Wakes the prefloop scheduler, which enqueues training runs for projects that are due',
      schedule: events.Schedule.expression(config.schedule),
      targets: [
        new targets.SqsQueue(this.jobs.queue, {
          message: events.RuleTargetInput.fromObject(SCHEDULE_TICK_MESSAGE),
          messageGroupId: SCHEDULE_TICK_GROUP,
        }),
      ],
    });

    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', { displayName: 'prefloop alarms' });
    if (config.alarmEmail) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(config.alarmEmail));
    for (const alarm of [this.jobs.deadLetterAlarm, this.jobs.oldestMessageAlarm]) {
      alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.alarmTopic));
    }

    // For whoever enqueues runs and serves policies (the API on Node or at the edge): send jobs, read artifacts.
    this.producerPolicy = new iam.ManagedPolicy(this, 'ProducerPolicy', {
      description: 'prefloop API: enqueue training jobs and read model artifacts',
      statements: [
        // GetQueueAttributes and GetQueueUrl (DLQ): what the SQS adapter's connect() reads at start.
        new iam.PolicyStatement({
          sid: 'EnqueueJobs',
          actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes'],
          resources: [this.jobs.queue.queueArn],
        }),
        new iam.PolicyStatement({
          sid: 'FindDeadLetterQueue',
          actions: ['sqs:GetQueueUrl'],
          resources: [this.jobs.deadLetterQueue.queueArn],
        }),
        new iam.PolicyStatement({
          sid: 'ReadArtifacts',
          actions: ['s3:GetObject'],
          resources: [this.artifacts.bucket.arnForObjects(`${config.artifactsPrefix}*`)],
        }),
      ],
    });

    new CfnOutput(this, 'QueueUrl', { value: this.jobs.queue.queueUrl, description: 'Training jobs queue URL' });
    new CfnOutput(this, 'DeadLetterQueueUrl', { value: this.jobs.deadLetterQueue.queueUrl, description: 'Dead-letter queue URL' });
    new CfnOutput(this, 'ArtifactsBucketName', { value: this.artifacts.bucket.bucketName, description: 'Artifacts bucket' });
    new CfnOutput(this, 'ClusterName', { value: this.workers.cluster.clusterName });
    new CfnOutput(this, 'ServiceName', { value: this.workers.service.serviceName });
    new CfnOutput(this, 'ProducerPolicyArn', { value: this.producerPolicy.managedPolicyArn });
  }

  private workerImage(config: ResolvedInfraConfig): ecs.ContainerImage {
    if (config.workerImageAsset) {
      return ecs.ContainerImage.fromAsset(REPO_ROOT, { file: WORKER_DOCKERFILE });
    }
    // By name, not by lookup: nothing is resolved at synth, and the execution role gets pull rights on this
    // repository only.
    const repository = ecr.Repository.fromRepositoryName(this, 'WorkerRepository', config.workerImageRepository);
    return ecs.ContainerImage.fromEcrRepository(repository, config.workerImageTag);
  }
}

/** The `context` block of the repository's cdk.json (feature flags and settings), for tests that must see what
 *  the CLI sees. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as { context?: Record<string, unknown> };
  return cdkJson.context ?? {};
}

/**
 * Builds the app from CDK context (see config.ts). `app.ts` uses it for the CLI; tests call it with overrides.
 * Version reporting is off so the template carries no AWS::CDK::Metadata resource.
 */
export function buildPrefloopApp(context: Record<string, unknown> = {}, outdir?: string): { app: App; stack: PrefloopStack } {
  // CDK runs CloudFormation's own template validator at synth; this makes its errors fail the synth.
  const defaults = { '@aws-cdk/core:validateAgainstDefaultRules': true };
  const app = new App({ context: { ...defaults, ...context }, outdir, analyticsReporting: false });
  const config = resolveInfraConfig(app.node.getAllContext());
  const env = config.account || config.region ? { account: config.account, region: config.region } : undefined;
  const stack = new PrefloopStack(app, config.stackName, {
    config,
    env,
    description: 'prefloop: training-jobs queue, artifacts bucket and GPU workers that scale to zero',
  });
  return { app, stack };
}
