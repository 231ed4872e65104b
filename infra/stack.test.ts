// Template assertions for the AWS stack. Two synths for the whole file (each ~5–10 s, most of it CDK's built-in
// CloudFormation validator, which fails the synth on schema errors): the defaults from cdk.json, and one with
// every setting overridden, to prove settings reach the template.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backlogScalingSteps } from './gpu-workers';
import { buildPrefloopApp, cdkJsonContext, WORKER_DOCKERFILE } from './stack';

type Json = Record<string, any>;

const outdirs: string[] = [];
function synth(overrides: Record<string, unknown>) {
  const outdir = mkdtempSync(path.join(tmpdir(), 'prefloop-cdk-'));
  outdirs.push(outdir);
  const started = performance.now();
  const { app, stack } = buildPrefloopApp({ ...cdkJsonContext(), ...overrides }, outdir);
  const assembly = app.synth();
  const template = Template.fromStack(stack);
  return { template, assembly, json: template.toJSON() as Json, ms: performance.now() - started };
}

let base: { template: Template; assembly: CloudAssembly; json: Json; ms: number };
beforeAll(() => {
  base = synth({});
  console.log(`infra: default stack synthesized in ${(base.ms / 1000).toFixed(1)} s`);
});
afterAll(() => {
  for (const dir of outdirs) rmSync(dir, { recursive: true, force: true });
});

const resources = (json: Json, type: string): [string, Json][] =>
  Object.entries(json.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);
const only = (json: Json, type: string): [string, Json] => {
  const found = resources(json, type);
  expect(found, type).toHaveLength(1);
  return found[0];
};
const logicalId = (json: Json, type: string, pick: (r: Json) => boolean): string => {
  const found = resources(json, type).filter(([, r]) => pick(r));
  expect(found, type).toHaveLength(1);
  return found[0][0];
};
const queueId = (json: Json) => logicalId(json, 'AWS::SQS::Queue', (r) => r.Properties.RedrivePolicy !== undefined);
const dlqId = (json: Json) => logicalId(json, 'AWS::SQS::Queue', (r) => r.Properties.RedrivePolicy === undefined);
const bucketId = (json: Json) => only(json, 'AWS::S3::Bucket')[0];
const arnOf = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });
const asArray = <T>(x: T | T[]): T[] => (Array.isArray(x) ? x : [x]);

/** Allow statements of every identity policy in the template, tagged with the roles they attach to. */
function allowStatements(json: Json): { roles: string[]; policy: string; statement: Json }[] {
  const out: { roles: string[]; policy: string; statement: Json }[] = [];
  for (const [id, r] of [...resources(json, 'AWS::IAM::Policy'), ...resources(json, 'AWS::IAM::ManagedPolicy')]) {
    const roles = (r.Properties.Roles ?? []).map((ref: Json) => ref.Ref);
    for (const s of r.Properties.PolicyDocument.Statement) if (s.Effect === 'Allow') out.push({ roles, policy: id, statement: s });
  }
  for (const [id, r] of resources(json, 'AWS::IAM::Role')) {
    for (const p of r.Properties.Policies ?? []) {
      for (const s of p.PolicyDocument.Statement) if (s.Effect === 'Allow') out.push({ roles: [id], policy: `${id}/${p.PolicyName}`, statement: s });
    }
  }
  return out;
}

/** The role whose trust policy names this service principal. */
function roleAssumedBy(json: Json, service: string): string {
  return logicalId(json, 'AWS::IAM::Role', (r) =>
    r.Properties.AssumeRolePolicyDocument.Statement.some((s: Json) => s.Principal?.Service === service),
  );
}

/** The worker task's role (not the execution role, which ECS-tasks also assumes), checked to trust only ECS tasks. */
function taskRoleId(json: Json): string {
  const id = only(json, 'AWS::ECS::TaskDefinition')[1].Properties.TaskRoleArn['Fn::GetAtt'][0] as string;
  const trust = json.Resources[id].Properties.AssumeRolePolicyDocument.Statement;
  expect(trust).toEqual([expect.objectContaining({ Action: 'sts:AssumeRole', Principal: { Service: 'ecs-tasks.amazonaws.com' } })]);
  return id;
}

/**
 * Task count that Application Auto Scaling would set for a backlog value, computed from the synthesized alarms
 * and step policies with AWS's bound rules (above the threshold: lower bound inclusive, upper exclusive; below
 * it: lower exclusive, upper inclusive). Returns undefined when no alarm is in ALARM (count unchanged).
 */
function desiredTasks(json: Json, backlog: number): number | undefined {
  const policies = new Map(resources(json, 'AWS::ApplicationAutoScaling::ScalingPolicy'));
  const results: number[] = [];
  for (const [, alarm] of resources(json, 'AWS::CloudWatch::Alarm')) {
    const policyId = (alarm.Properties.AlarmActions ?? []).map((a: Json) => a.Ref).find((ref: string) => policies.has(ref));
    if (!policyId) continue;
    const { Threshold: t, ComparisonOperator: op } = alarm.Properties;
    const breached = op === 'GreaterThanOrEqualToThreshold' ? backlog >= t : op === 'LessThanOrEqualToThreshold' ? backlog <= t : NaN;
    expect(Number.isNaN(breached), `unexpected operator ${op}`).toBe(false);
    if (!breached) continue;
    const config = policies.get(policyId)!.Properties.StepScalingPolicyConfiguration;
    expect(config.AdjustmentType).toBe('ExactCapacity');
    const d = backlog - t;
    const above = d >= 0;
    const step = config.StepAdjustments.find((s: Json) => {
      const lo = s.MetricIntervalLowerBound ?? -Infinity;
      const hi = s.MetricIntervalUpperBound ?? Infinity;
      return above ? d >= lo && d < hi : d > lo && d <= hi;
    });
    expect(step, `no step for backlog ${backlog}`).toBeDefined();
    results.push(step.ScalingAdjustment);
  }
  expect(results.length, `alarms in ALARM at backlog ${backlog}`).toBeLessThanOrEqual(1);
  return results[0];
}

describe('training-jobs queue', () => {
  it('is a FIFO queue with SSE, 20 s long polling, a visibility timeout above the longest run, and a redrive policy', () => {
    const { json } = base;
    expect(resources(json, 'AWS::SQS::Queue')).toHaveLength(2);
    const q = json.Resources[queueId(json)].Properties;
    expect(q.FifoQueue).toBe(true); // the SQS adapter refuses standard queues
    expect(q.SqsManagedSseEnabled).toBe(true);
    expect(q.ReceiveMessageWaitTimeSeconds).toBe(20);
    expect(q.VisibilityTimeout).toBe((120 + 15) * 60);
    expect(q.VisibilityTimeout).toBeGreaterThan(120 * 60);
    expect(q.RedrivePolicy).toEqual({ deadLetterTargetArn: arnOf(dlqId(json)), maxReceiveCount: 5 });
  });

  it('keeps dead letters longer than jobs, encrypted, FIFO like its source', () => {
    const { json } = base;
    const dlq = json.Resources[dlqId(json)].Properties;
    const q = json.Resources[queueId(json)].Properties;
    expect(dlq).toMatchObject({ FifoQueue: true, SqsManagedSseEnabled: true });
    expect(dlq.MessageRetentionPeriod).toBeGreaterThan(q.MessageRetentionPeriod);
  });

  it('refuses non-TLS access to both queues', () => {
    const { json } = base;
    for (const id of [queueId(json), dlqId(json)]) {
      base.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });
});

describe('artifacts bucket', () => {
  it('is versioned, encrypted, private, TLS-only, expires old versions, and survives stack deletion', () => {
    const { json, template } = base;
    const [id, bucket] = only(json, 'AWS::S3::Bucket');
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: {
        Rules: [Match.objectLike({ Status: 'Enabled', NoncurrentVersionExpiration: { NoncurrentDays: 30 } })],
      },
    });
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: id },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('GPU workers', () => {
  it('launch g4dn instances from the ECS GPU AMI, metadata closed to containers, in a group that scales to zero', () => {
    const { json } = base;
    const [ltId, lt] = only(json, 'AWS::EC2::LaunchTemplate');
    const data = lt.Properties.LaunchTemplateData;
    expect(data.InstanceType).toBe('g4dn.xlarge');
    expect(data.MetadataOptions).toEqual({ HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
    const amiParam = json.Parameters[data.ImageId.Ref];
    expect(amiParam.Default).toBe('/aws/service/ecs/optimized-ami/amazon-linux-2/gpu/recommended/image_id');
    expect(JSON.stringify(data.UserData)).toContain('ECS_CLUSTER=');

    const [asgId, asg] = only(json, 'AWS::AutoScaling::AutoScalingGroup');
    expect(asg.Properties).toMatchObject({ MinSize: '0', MaxSize: '4', NewInstancesProtectedFromScaleIn: true });
    expect(asg.Properties.LaunchTemplate.LaunchTemplateId).toEqual({ Ref: ltId });
    expect(asg.Properties.DesiredCapacity).toBeUndefined(); // left to the capacity provider

    const [, cp] = only(json, 'AWS::ECS::CapacityProvider');
    expect(cp.Properties.AutoScalingGroupProvider).toMatchObject({
      AutoScalingGroupArn: { Ref: asgId },
      ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 },
      ManagedTerminationProtection: 'ENABLED',
    });
  });

  it('admit no inbound traffic and send only HTTPS out', () => {
    const { json } = base;
    const [, sg] = only(json, 'AWS::EC2::SecurityGroup');
    expect(sg.Properties.SecurityGroupIngress).toBeUndefined();
    expect(resources(json, 'AWS::EC2::SecurityGroupIngress')).toHaveLength(0);
    expect(sg.Properties.SecurityGroupEgress).toEqual([expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443 })]);
    expect(resources(json, 'AWS::EC2::NatGateway')).toHaveLength(0); // idle cost must be ~0
  });

  it('run one GPU task per job from the ECR image with the queue, artifact root and backend in its environment', () => {
    const { json } = base;
    const [, td] = only(json, 'AWS::ECS::TaskDefinition');
    expect(td.Properties.RequiresCompatibilities).toEqual(['EC2']);
    const containers = td.Properties.ContainerDefinitions;
    expect(containers).toHaveLength(1);
    const c = containers[0];
    expect(c.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '1' }]);
    expect(c.StopTimeout).toBe(120);
    expect(JSON.stringify(c.Image)).toContain('/prefloop-worker:latest');
    const env = Object.fromEntries(c.Environment.map((e: Json) => [e.Name, e.Value]));
    expect(env.PREFLOOP_QUEUE).toBe('sqs');
    expect(env.PREFLOOP_SQS_QUEUE_URL).toEqual({ Ref: queueId(json) });
    expect(env.PREFLOOP_ARTIFACT_ROOT).toEqual({ 'Fn::Join': ['', ['s3://', { Ref: bucketId(json) }, '/artifacts/']] });
    expect(env.PREFLOOP_TF_BACKEND).toBe('node-gpu');
    expect(env.PREFLOOP_MAX_RUN_SECONDS).toBe('7200');
    expect(env.AWS_REGION).toEqual({ Ref: 'AWS::Region' });
    expect(c.Secrets).toBeUndefined();
    expect(td.Properties.TaskRoleArn).toEqual(arnOf(taskRoleId(json)));
    expect(td.Properties.ExecutionRoleArn).not.toEqual(td.Properties.TaskRoleArn);
  });

  it('start at zero tasks on the GPU capacity provider, after the provider is attached to the cluster', () => {
    const { json } = base;
    const [, svc] = only(json, 'AWS::ECS::Service');
    const [cpId] = only(json, 'AWS::ECS::CapacityProvider');
    const [assocId] = only(json, 'AWS::ECS::ClusterCapacityProviderAssociations');
    expect(svc.Properties.DesiredCount).toBe(0);
    expect(svc.Properties.LaunchType).toBeUndefined();
    expect(svc.Properties.CapacityProviderStrategy).toEqual([{ CapacityProvider: { Ref: cpId }, Weight: 1 }]);
    expect(svc.DependsOn).toContain(assocId);
  });
});

describe('scaling on queue depth', () => {
  it('scales the service between 0 and maxWorkers on waiting + in-flight jobs', () => {
    const { json } = base;
    const [, target] = only(json, 'AWS::ApplicationAutoScaling::ScalableTarget');
    expect(target.Properties).toMatchObject({ MinCapacity: 0, MaxCapacity: 4, ScalableDimension: 'ecs:service:DesiredCount' });
    const scalingAlarms = resources(json, 'AWS::CloudWatch::Alarm').filter(([, a]) => a.Properties.Metrics);
    expect(scalingAlarms).toHaveLength(2);
    for (const [, alarm] of scalingAlarms) {
      const metrics = alarm.Properties.Metrics as Json[];
      expect(metrics.find((m) => m.ReturnData !== false)?.Expression).toBe('FILL(visible, 0) + FILL(inFlight, 0)');
      const names = Object.fromEntries(metrics.filter((m) => m.MetricStat).map((m) => [m.Id, m.MetricStat.Metric.MetricName]));
      expect(names).toEqual({ visible: 'ApproximateNumberOfMessagesVisible', inFlight: 'ApproximateNumberOfMessagesNotVisible' });
      for (const m of metrics.filter((m) => m.MetricStat)) {
        expect(m.MetricStat.Metric.Dimensions).toEqual([{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId(json), 'QueueName'] } }]);
      }
    }
  });

  it('sets the task count to min(backlog, maxWorkers), including back to zero', () => {
    const counts = Array.from({ length: 11 }, (_, b) => desiredTasks(base.json, b));
    expect(counts).toEqual([0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4]);
  });

  it('builds contiguous steps for every allowed size', () => {
    for (const max of [1, 2, 7, 39]) {
      const steps = backlogScalingSteps(max);
      expect(steps).toHaveLength(max + 1);
      expect(steps.map((s) => s.change)).toEqual(Array.from({ length: max + 1 }, (_, k) => k));
      for (let i = 1; i < steps.length; i++) expect(steps[i].lower).toBe(steps[i - 1].upper);
    }
  });
});

describe('schedule', () => {
  it('sends {"kind":"schedule-tick"} to the jobs queue on the cron, allowed by a queue policy scoped to the rule', () => {
    const { json, template } = base;
    const [ruleId, rule] = only(json, 'AWS::Events::Rule');
    expect(rule.Properties.ScheduleExpression).toBe('cron(0 */6 * * ? *)');
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: arnOf(queueId(json)),
        Input: JSON.stringify({ kind: 'schedule-tick' }),
        SqsParameters: { MessageGroupId: 'schedule-tick' },
      }),
    ]);
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId(json) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: Match.arrayWith(['sqs:SendMessage']),
            Condition: { ArnEquals: { 'aws:SourceArn': arnOf(ruleId) } },
          }),
        ]),
      },
    });
  });
});

describe('least-privilege IAM', () => {
  it('gives the task role exactly its queue, a peek at the DLQ, its artifact prefix and its own scale-in protection', () => {
    const { json } = base;
    const taskRole = taskRoleId(json);
    const statements = allowStatements(json).filter((s) => s.roles.includes(taskRole)).map((s) => s.statement);
    const bucketArn = arnOf(bucketId(json));
    expect(statements).toEqual([
      {
        Sid: 'JobsQueue',
        Effect: 'Allow',
        Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:ReceiveMessage', 'sqs:SendMessage'],
        Resource: arnOf(queueId(json)),
      },
      { Sid: 'DeadLetterPeek', Effect: 'Allow', Action: ['sqs:GetQueueUrl', 'sqs:ReceiveMessage'], Resource: arnOf(dlqId(json)) },
      {
        Sid: 'ArtifactObjects',
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:PutObject'],
        Resource: { 'Fn::Join': ['', [bucketArn, '/artifacts/*']] },
      },
      {
        Sid: 'ArtifactListing',
        Effect: 'Allow',
        Action: 's3:ListBucket',
        Resource: bucketArn,
        Condition: { StringLike: { 's3:prefix': ['artifacts/*'] } },
      },
      {
        Sid: 'OwnScaleInProtection',
        Effect: 'Allow',
        Action: ['ecs:GetTaskProtection', 'ecs:UpdateTaskProtection'],
        Resource: {
          'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ecs:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':task/', { Ref: expect.any(String) }, '/*']],
        },
      },
    ]);
  });

  it('has no wildcard action anywhere except the ECS agent’s Submit*, and "*" resources only where AWS offers nothing narrower', () => {
    const { json } = base;
    const instanceRole = roleAssumedBy(json, 'ec2.amazonaws.com');
    // Actions that only accept Resource "*" (ecr:GetAuthorizationToken, ecs:DiscoverPollEndpoint) or that CDK's
    // ECS capacity grants to the container-instance role (unreachable from tasks: IMDS hop limit 1).
    const starResourceAllowed = new Set(['ecr:GetAuthorizationToken', 'ecs:DiscoverPollEndpoint', 'ecs:Poll', 'ecs:StartTelemetrySession', 'logs:CreateLogStream', 'logs:PutLogEvents']);
    const all = allowStatements(json);
    expect(all.length).toBeGreaterThan(5);
    for (const { roles, policy, statement } of all) {
      for (const action of asArray(statement.Action as string | string[])) {
        if (action.includes('*')) expect({ policy, action }).toEqual({ policy, action: 'ecs:Submit*' });
        if (action === 'ecs:Submit*') expect(roles).toEqual([instanceRole]);
      }
      if (asArray(statement.Resource).includes('*')) {
        for (const action of asArray(statement.Action as string | string[])) expect(starResourceAllowed, `${policy}: ${action} on *`).toContain(action);
        if (!roles.includes(instanceRole)) expect(asArray(statement.Action)).toEqual(['ecr:GetAuthorizationToken']);
      }
    }
  });

  it('offers the API a producer policy: send jobs, find the DLQ, read artifacts, nothing else', () => {
    const { json } = base;
    const [, managed] = only(json, 'AWS::IAM::ManagedPolicy');
    expect(managed.Properties.PolicyDocument.Statement).toEqual([
      { Sid: 'EnqueueJobs', Effect: 'Allow', Action: ['sqs:GetQueueAttributes', 'sqs:SendMessage'], Resource: arnOf(queueId(json)) },
      { Sid: 'FindDeadLetterQueue', Effect: 'Allow', Action: 'sqs:GetQueueUrl', Resource: arnOf(dlqId(json)) },
      { Sid: 'ReadArtifacts', Effect: 'Allow', Action: 's3:GetObject', Resource: { 'Fn::Join': ['', [arnOf(bucketId(json)), '/artifacts/*']] } },
    ]);
  });
});

describe('alarms', () => {
  it('fires on any dead letter and on jobs older than the visibility timeout plus the allowed wait, to the alarm topic', () => {
    const { json } = base;
    const [topicId] = only(json, 'AWS::SNS::Topic');
    const plain = resources(json, 'AWS::CloudWatch::Alarm').filter(([, a]) => !a.Properties.Metrics).map(([, a]) => a.Properties);
    expect(plain).toHaveLength(2);
    const dead = plain.find((a) => a.MetricName === 'ApproximateNumberOfMessagesVisible');
    expect(dead).toMatchObject({
      Namespace: 'AWS/SQS',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 1,
      Statistic: 'Maximum',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [dlqId(json), 'QueueName'] } }],
      AlarmActions: [{ Ref: topicId }],
    });
    const age = plain.find((a) => a.MetricName === 'ApproximateAgeOfOldestMessage');
    expect(age).toMatchObject({
      Threshold: (120 + 15 + 60) * 60,
      ComparisonOperator: 'GreaterThanThreshold',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId(json), 'QueueName'] } }],
      AlarmActions: [{ Ref: topicId }],
    });
  });
});

describe('outputs and offline synthesis', () => {
  it('exports the queue URL, DLQ URL and bucket name', () => {
    const { json } = base;
    expect(json.Outputs.QueueUrl.Value).toEqual({ Ref: queueId(json) });
    expect(json.Outputs.DeadLetterQueueUrl.Value).toEqual({ Ref: dlqId(json) });
    expect(json.Outputs.ArtifactsBucketName.Value).toEqual({ Ref: bucketId(json) });
  });

  it('needs no context lookups, no Docker build and no account: the template is environment-agnostic', () => {
    expect(base.assembly.manifest.missing ?? []).toEqual([]);
    const artifact = base.assembly.getStackByName('Prefloop');
    expect(artifact.environment).toMatchObject({ account: 'unknown-account', region: 'unknown-region' });
    const assets = base.assembly.artifacts.filter((a) => a.constructor.name === 'AssetManifestArtifact');
    for (const a of assets) expect(JSON.stringify((a as any).contents?.dockerImages ?? {})).toBe('{}');
  });
});

describe('settings', () => {
  let custom: ReturnType<typeof synth>;
  beforeAll(() => {
    custom = synth({
      'prefloop:maxWorkers': '7',
      'prefloop:maxReceiveCount': '3',
      'prefloop:maxTrainingMinutes': '240',
      'prefloop:instanceType': 'g5.2xlarge',
      'prefloop:schedule': 'rate(1 hour)',
      'prefloop:workerImageAsset': 'true',
      'prefloop:artifactsPrefix': 'models/',
      'prefloop:databaseUrlSecretArn': 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefloop-db-AbCdEf',
      'prefloop:account': '123456789012',
      'prefloop:region': 'eu-west-1',
    });
    console.log(`infra: custom stack synthesized in ${(custom.ms / 1000).toFixed(1)} s`);
  });

  it('reach the template: sizes, limits, schedule, prefix, image asset, secret, environment', () => {
    const { json, assembly } = custom;
    expect(only(json, 'AWS::EC2::LaunchTemplate')[1].Properties.LaunchTemplateData.InstanceType).toBe('g5.2xlarge');
    expect(only(json, 'AWS::AutoScaling::AutoScalingGroup')[1].Properties.MaxSize).toBe('7');
    expect(only(json, 'AWS::ApplicationAutoScaling::ScalableTarget')[1].Properties.MaxCapacity).toBe(7);
    expect(Array.from({ length: 10 }, (_, b) => desiredTasks(json, b))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 7, 7]);
    const q = json.Resources[queueId(json)].Properties;
    expect(q.RedrivePolicy.maxReceiveCount).toBe(3);
    expect(q.VisibilityTimeout).toBe((240 + 15) * 60);
    expect(only(json, 'AWS::Events::Rule')[1].Properties.ScheduleExpression).toBe('rate(1 hour)');

    const c = only(json, 'AWS::ECS::TaskDefinition')[1].Properties.ContainerDefinitions[0];
    const env = Object.fromEntries(c.Environment.map((e: Json) => [e.Name, e.Value]));
    expect(env.PREFLOOP_ARTIFACT_ROOT).toEqual({ 'Fn::Join': ['', ['s3://', { Ref: bucketId(json) }, '/models/']] });
    expect(env.PREFLOOP_MAX_RUN_SECONDS).toBe('14400');
    const secretArn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:prefloop-db-AbCdEf';
    expect(c.Secrets).toEqual([{ Name: 'PREFLOOP_DATABASE_URL', ValueFrom: secretArn }]);
    // The execution role may read that one secret and nothing else in Secrets Manager.
    const secretReads = allowStatements(json).filter((s) => asArray(s.statement.Action).some((a: string) => a.startsWith('secretsmanager:')));
    expect(secretReads.map((s) => s.statement.Resource)).toEqual([secretArn]);

    // The image comes from Dockerfile.worker, staged (not built) at synth.
    const manifest = assembly.artifacts.find((a) => a.constructor.name === 'AssetManifestArtifact') as any;
    const images = Object.values(manifest.contents.dockerImages ?? {}) as Json[];
    expect(images).toHaveLength(1);
    expect(images[0].source.dockerFile).toBe(WORKER_DOCKERFILE);
    expect(JSON.stringify(c.Image)).toContain('cdk-hnb659fds-container-assets');
    expect(assembly.getStackByName('Prefloop').environment).toMatchObject({ account: '123456789012', region: 'eu-west-1' });
  });

  it('stage only the build context .dockerignore allows (no node_modules, no previous cdk.out)', async () => {
    const { readdirSync, existsSync } = await import('node:fs');
    const manifest = custom.assembly.artifacts.find((a) => a.constructor.name === 'AssetManifestArtifact') as any;
    const image = Object.values(manifest.contents.dockerImages) as Json[];
    const staged = path.join(custom.assembly.directory, image[0].source.directory);
    const entries = readdirSync(staged);
    expect(entries).toEqual(expect.arrayContaining([WORKER_DOCKERFILE, 'package.json', 'package-lock.json', '.npmrc']));
    for (const banned of ['node_modules', '.git', 'infra', 'cdk.out', 'tests']) expect(entries).not.toContain(banned);
    expect(existsSync(path.join(staged, 'shared'))).toBe(true);
  });
});
