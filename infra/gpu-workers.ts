// GPU training workers: an ECS service on EC2 GPU instances that scales tasks with the queue backlog, and
// instances with the tasks, both down to zero. One task holds one GPU and runs one training job at a time.
//
// Chain of scaling: backlog alarm → service desired count (exact: one task per waiting-or-running job, capped)
// → capacity provider managed scaling → Auto Scaling group (0..maxWorkers instances). Managed termination
// protection keeps an instance alive while it runs a task. When the count drops, ECS picks which task to stop;
// a worker that sets ECS task scale-in protection through $ECS_AGENT_URI while a job runs (the task role allows
// it) is never the one picked. Without it, a stopped job is redelivered by SQS and restarts.
// Contract with the worker: one job at a time per task (the count above is one task per job).
import { Aws, Duration } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as autoscaling from 'aws-cdk-lib/aws-autoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { WORKER_ENV } from './worker-env';

export interface GpuWorkersProps {
  /** Jobs queue the workers consume, and its dead-letter queue (the scheduler peeks at it). */
  queue: sqs.IQueue;
  deadLetterQueue: sqs.IQueue;
  /** Backlog metric (waiting + in-flight jobs) the task count follows. */
  backlog: cloudwatch.IMetric;
  /** Artifacts bucket and the prefix the workers may use in it. */
  bucket: s3.IBucket;
  artifactsPrefix: string;
  /** Worker container image. */
  image: ecs.ContainerImage;
  /** EC2 GPU instance type. */
  instanceType: string;
  /** Most tasks (and instances) at once. */
  maxWorkers: number;
  /** CPU units and memory (MiB) reserved for the task. */
  taskCpu: number;
  taskMemoryMiB: number;
  /** TF.js backend preference handed to the worker. */
  tfBackend: string;
  /** Ceiling on a run's wall time, passed to the worker. */
  maxRunSeconds: number;
  /** Days of logs kept. */
  logRetentionDays: number;
  /** Optional Secrets Manager ARN holding the database URL. */
  databaseUrlSecretArn?: string;
}

/** Name of the worker container in the task definition. */
export const WORKER_CONTAINER = 'worker';

export class GpuWorkers extends Construct {
  readonly vpc: ec2.Vpc;
  readonly cluster: ecs.Cluster;
  readonly autoScalingGroup: autoscaling.AutoScalingGroup;
  readonly capacityProvider: ecs.AsgCapacityProvider;
  readonly taskDefinition: ecs.Ec2TaskDefinition;
  readonly service: ecs.Ec2Service;
  readonly taskRole: iam.Role;

  constructor(scope: Construct, id: string, props: GpuWorkersProps) {
    super(scope, id);

    // Public subnets and no NAT gateway: a NAT gateway bills ~$32/month per AZ even at zero workers, which defeats
    // scaling to zero. Instances get public addresses but their security group admits no inbound traffic, and S3
    // traffic stays inside the VPC through the (free) gateway endpoint.
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
      restrictDefaultSecurityGroup: false,
    });

    // Egress: HTTPS only (ECS agent, ECR, SQS, S3, CloudWatch Logs, a libsql/HTTP database). DNS and time sync go
    // to link-local VPC services that security groups do not filter.
    const securityGroup = new ec2.SecurityGroup(this, 'InstanceSecurityGroup', {
      vpc: this.vpc,
      description: 'prefloop GPU workers: no inbound, HTTPS outbound',
      allowAllOutbound: false,
    });
    securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to AWS APIs and the database');

    const instanceRole = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'ECS container instance (agent) role of the prefloop GPU workers',
    });

    // IMDSv2 with a hop limit of 1: containers on the bridge network are one hop further and cannot reach the
    // instance metadata service, so a job can only ever use the task role, never the instance role.
    const launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      instanceType: new ec2.InstanceType(props.instanceType),
      machineImage: ecs.EcsOptimizedImage.amazonLinux2(ecs.AmiHardwareType.GPU),
      userData: ec2.UserData.forLinux(),
      role: instanceRole,
      securityGroup,
      associatePublicIpAddress: true,
      requireImdsv2: true,
      httpPutResponseHopLimit: 1,
      blockDevices: [
        // The CUDA + libtensorflow image is several GB; the AMI's 30 GiB root fills up after a few image updates.
        { deviceName: '/dev/xvda', volume: ec2.BlockDeviceVolume.ebs(80, { encrypted: true, volumeType: ec2.EbsDeviceVolumeType.GP3 }) },
      ],
    });

    this.autoScalingGroup = new autoscaling.AutoScalingGroup(this, 'AutoScalingGroup', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
      launchTemplate,
      minCapacity: 0,
      maxCapacity: props.maxWorkers,
    });

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc: this.vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    this.capacityProvider = new ecs.AsgCapacityProvider(this, 'CapacityProvider', {
      autoScalingGroup: this.autoScalingGroup,
      machineImageType: ecs.MachineImageType.AMAZON_LINUX_2,
      enableManagedScaling: true,
      enableManagedTerminationProtection: true,
      targetCapacityPercent: 100,
    });
    this.cluster.addAsgCapacityProvider(this.capacityProvider);

    this.taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'prefloop training worker: its queue, its artifact prefix, its own scale-in protection',
    });
    this.grantWorker(props);

    this.taskDefinition = new ecs.Ec2TaskDefinition(this, 'TaskDefinition', {
      taskRole: this.taskRole,
      networkMode: ecs.NetworkMode.BRIDGE,
    });
    const logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetentionDays as logs.RetentionDays });
    const secrets: Record<string, ecs.Secret> = {};
    if (props.databaseUrlSecretArn) {
      const secret = secretsmanager.Secret.fromSecretCompleteArn(this, 'DatabaseUrl', props.databaseUrlSecretArn);
      secrets[WORKER_ENV.databaseUrl] = ecs.Secret.fromSecretsManager(secret);
    }
    this.taskDefinition.addContainer(WORKER_CONTAINER, {
      image: props.image,
      gpuCount: 1,
      cpu: props.taskCpu,
      memoryReservationMiB: props.taskMemoryMiB,
      environment: {
        [WORKER_ENV.queue]: 'sqs',
        [WORKER_ENV.sqsQueueUrl]: props.queue.queueUrl,
        [WORKER_ENV.artifactRoot]: `s3://${props.bucket.bucketName}/${props.artifactsPrefix}`,
        [WORKER_ENV.tfBackend]: props.tfBackend,
        [WORKER_ENV.maxRunSeconds]: String(props.maxRunSeconds),
        [WORKER_ENV.awsRegion]: Aws.REGION,
      },
      secrets,
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'worker', logGroup }),
      // Time between SIGTERM and SIGKILL: enough to checkpoint and hand the lease back (visibility 0).
      stopTimeout: Duration.seconds(120),
    });

    // desiredCount 0: deploying must not start a GPU instance for an empty queue. minHealthyPercent 0 and max 100:
    // a deployment never needs a second GPU per task; a job cut off by a deployment is redelivered by SQS.
    this.service = new ecs.Ec2Service(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: 0,
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      capacityProviderStrategies: [{ capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 }],
      circuitBreaker: { rollback: true },
    });
    // The cluster↔capacity-provider association is added by an aspect at synth; CloudFormation must create it
    // before a service may name the provider in its strategy. A dependency on the cluster covers its subtree.
    this.service.node.addDependency(this.cluster);

    // Exact capacity per backlog value: intervals [0, 0.5) → 0 tasks, [k - 0.5, k + 0.5) → k, [max - 0.5, ∞) → max.
    // The metric is an integer count, so the half-way bounds never tie, and while an alarm stays in ALARM
    // Application Auto Scaling re-applies the step every minute, so the count tracks the backlog both ways.
    const scaling = this.service.autoScaleTaskCount({ minCapacity: 0, maxCapacity: props.maxWorkers });
    scaling.scaleOnMetric('QueueBacklog', {
      metric: props.backlog,
      adjustmentType: appscaling.AdjustmentType.EXACT_CAPACITY,
      scalingSteps: backlogScalingSteps(props.maxWorkers),
      metricAggregationType: appscaling.MetricAggregationType.MAXIMUM,
      evaluationPeriods: 1,
      cooldown: Duration.minutes(1),
    });
  }

  /** The task role's whole policy: explicit actions on explicit resources, nothing granted by default helpers. */
  private grantWorker(props: GpuWorkersProps): void {
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'JobsQueue',
        // SendMessage: the scheduler answers a schedule tick by enqueueing the runs that are due.
        // GetQueueAttributes: the adapter reads maxReceiveCount and the DLQ from the redrive policy at start.
        actions: [
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueAttributes',
          'sqs:SendMessage',
        ],
        resources: [props.queue.queueArn],
      }),
    );
    // The adapter finds the DLQ from the redrive policy (GetQueueUrl) and peeks at it to reconcile runs whose
    // job died; it never deletes there (operators redrive or purge).
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DeadLetterPeek',
        actions: ['sqs:GetQueueUrl', 'sqs:ReceiveMessage'],
        resources: [props.deadLetterQueue.queueArn],
      }),
    );
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ArtifactObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: [props.bucket.arnForObjects(`${props.artifactsPrefix}*`)],
      }),
    );
    // Listing is what lets a missing key answer 404 instead of 403; it is confined to the prefix too.
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ArtifactListing',
        actions: ['s3:ListBucket'],
        resources: [props.bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${props.artifactsPrefix}*`] } },
      }),
    );
    // The ECS agent calls these with the task's credentials when the worker sets protection via $ECS_AGENT_URI;
    // task IDs are not known in advance, so the resource is every task of this cluster only.
    this.taskRole.addToPolicy(
      new iam.PolicyStatement({
        sid: 'OwnScaleInProtection',
        actions: ['ecs:GetTaskProtection', 'ecs:UpdateTaskProtection'],
        resources: [`arn:${Aws.PARTITION}:ecs:${Aws.REGION}:${Aws.ACCOUNT_ID}:task/${this.cluster.clusterName}/*`],
      }),
    );
  }
}

/** Step-scaling intervals that set the task count to min(backlog, maxWorkers). */
export function backlogScalingSteps(maxWorkers: number): appscaling.ScalingInterval[] {
  const steps: appscaling.ScalingInterval[] = [{ upper: 0.5, change: 0 }];
  for (let k = 1; k < maxWorkers; k++) steps.push({ lower: k - 0.5, upper: k + 0.5, change: k });
  steps.push({ lower: maxWorkers - 0.5, change: maxWorkers });
  return steps;
}
