// Deployment settings for the AWS stack: one typed object with defaults, read once from CDK context and then
// passed down. Two ways to set a field, both refused when the key is unknown or the value out of range:
//   cdk.json   "context": { "prefloop": { "maxWorkers": 8 } }
//   CLI        npx cdk synth -c prefloop:maxWorkers=8        (CLI values arrive as strings and are coerced)
import { z } from 'zod';

/** SQS refuses a visibility timeout above 12 hours; a run may not outlive its lease by design. */
export const SQS_MAX_VISIBILITY_S = 12 * 60 * 60;
/** A step-scaling policy holds at most 40 intervals; ours has one per task count from 0 to maxWorkers. */
export const MAX_WORKERS_LIMIT = 39;
/** GPU families whose instances ECS's GPU AMI supports and that fit a small-model trainer. */
export const GPU_INSTANCE_FAMILIES = ['g4dn', 'g5', 'g6'] as const;

/** Retention periods CloudWatch Logs accepts, in days. */
export const LOG_RETENTION_DAYS: readonly number[] = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.union([z.boolean(), z.enum(['true', 'false']).transform((v) => v === 'true')]);

export const InfraConfigSchema = z.strictObject({
  /** CloudFormation stack name. */
  stackName: z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/).default('Prefloop'),
  /** Target account; absent = environment-agnostic template (synth needs no credentials and makes no lookups). */
  account: z.string().regex(/^\d{12}$/).optional(),
  /** Target region; absent = environment-agnostic template. */
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).optional(),

  /** EC2 instance type of the GPU workers; one task (one GPU) per instance. */
  instanceType: z
    .string()
    .refine((t) => GPU_INSTANCE_FAMILIES.some((f) => t.startsWith(`${f}.`)), {
      message: `must be a GPU instance type of the ${GPU_INSTANCE_FAMILIES.join('/')} families`,
    })
    .default('g4dn.xlarge'),
  /** Upper bound on concurrent worker tasks (and GPU instances). The lower bound is always 0. */
  maxWorkers: int(1, MAX_WORKERS_LIMIT).default(4),
  /** CPU units reserved for the worker task (1024 = 1 vCPU); g4dn.xlarge has 4096. */
  taskCpu: int(256, 192 * 1024).default(3072),
  /** Memory reserved for the worker task in MiB; g4dn.xlarge has 16 GiB, the ECS agent and OS keep the rest. */
  taskMemoryMiB: int(512, 768 * 1024).default(12_288),

  /** Longest training run the worker may execute, in minutes (the per-project maximum wall time's ceiling). */
  maxTrainingMinutes: int(1, 12 * 60).default(120),
  /** Slack added on top of maxTrainingMinutes for the queue's visibility timeout (model upload, gate, publish). */
  visibilityMarginMinutes: int(1, 120).default(15),
  /** Deliveries of one message before SQS moves it to the dead-letter queue. */
  maxReceiveCount: int(1, 1000).default(5),
  /**
   * How long a job may wait for a worker, in minutes, before the oldest-message alarm fires. SQS counts a message
   * being worked on (in flight) in ApproximateAgeOfOldestMessage, so the threshold is this plus the visibility
   * timeout: a healthy run of maximal length never trips it.
   */
  queueWaitAlarmMinutes: int(1, 14 * 24 * 60).default(60),

  /** EventBridge schedule that sends {"kind":"schedule-tick"} to the queue (cron(...) or rate(...)). */
  schedule: z
    .string()
    .regex(/^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$/, {
      message: 'must be an EventBridge expression: cron(m h dom mon dow year) or rate(n unit)',
    })
    .default('cron(0 */6 * * ? *)'),

  /** Key prefix under which the worker reads and writes model artifacts; the task role is confined to it. */
  artifactsPrefix: z.string().regex(/^[a-z0-9][a-z0-9._-]*\/$/).default('artifacts/'),
  /** Days a superseded (non-current) artifact version is kept before S3 expires it. */
  noncurrentVersionDays: int(1, 3650).default(30),
  /** Days of worker logs kept in CloudWatch Logs (one of the values CloudWatch accepts). */
  logRetentionDays: z.coerce
    .number()
    .refine((d) => LOG_RETENTION_DAYS.includes(d), { message: `must be one of ${LOG_RETENTION_DAYS.join(', ')}` })
    .default(30),

  /** ECR repository (same account and region) holding the worker image, pushed from Dockerfile.worker. */
  workerImageRepository: z.string().regex(/^[a-z0-9]+([._/-][a-z0-9]+)*$/).default('prefloop-worker'),
  /** Tag of the worker image in workerImageRepository; pin a release tag in production. */
  workerImageTag: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/).default('latest'),
  /** Build Dockerfile.worker as a CDK asset at deploy time instead (the deploying host needs Docker). */
  workerImageAsset: bool.default(false),
  /** TF.js backend the worker should select first (worker contract: PREFLOOP_TF_BACKEND). */
  tfBackend: z.enum(['node-gpu', 'node', 'wasm', 'cpu']).default('node-gpu'),

  /** Secrets Manager secret ARN whose value is the worker's database URL (PREFLOOP_DATABASE_URL); optional. */
  databaseUrlSecretArn: z.string().regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/).optional(),
  /** E-mail address subscribed to the alarm topic; optional. */
  alarmEmail: z.email().optional(),
});

export type InfraConfig = z.infer<typeof InfraConfigSchema>;

/** Values computed once from the config (CleanRL's "derived" fields). */
export interface DerivedInfraConfig {
  /** Visibility timeout of the jobs queue: the longest run plus margin, so a live run is never redelivered. */
  visibilityTimeoutS: number;
  /** Threshold of the oldest-message alarm: visibility timeout + allowed wait. */
  oldestMessageAlarmS: number;
}

export type ResolvedInfraConfig = InfraConfig & DerivedInfraConfig;

/**
 * vCPUs and GiB of memory of the single-GPU sizes, the same across the g4dn, g5 and g6 families: used to refuse
 * a task that could never be placed (jobs would wait forever while the instance idles).
 */
const GPU_SIZES: Record<string, { vcpu: number; memoryGiB: number }> = {
  xlarge: { vcpu: 4, memoryGiB: 16 },
  '2xlarge': { vcpu: 8, memoryGiB: 32 },
  '4xlarge': { vcpu: 16, memoryGiB: 64 },
  '8xlarge': { vcpu: 32, memoryGiB: 128 },
  '16xlarge': { vcpu: 64, memoryGiB: 256 },
};
/** Share of instance memory assumed available to tasks: the OS and the ECS agent keep the rest (a conservative margin). */
const ECS_MEMORY_SHARE = 0.9;

/** CDK context key that holds the settings object; `prefloop:<field>` keys override single fields. */
export const CONTEXT_KEY = 'prefloop';

/**
 * Parses settings from CDK context values: the `prefloop` object (cdk.json) overlaid with `prefloop:<field>`
 * keys (CLI `-c`). Throws with every problem listed when a key is unknown or a value is invalid.
 */
export function resolveInfraConfig(context: Record<string, unknown>): ResolvedInfraConfig {
  const base = context[CONTEXT_KEY];
  if (base !== undefined && (typeof base !== 'object' || base === null || Array.isArray(base))) {
    throw new Error(`context "${CONTEXT_KEY}" must be an object, got ${JSON.stringify(base)}`);
  }
  const merged: Record<string, unknown> = { ...(base as Record<string, unknown> | undefined) };
  for (const [key, value] of Object.entries(context)) {
    if (key.startsWith(`${CONTEXT_KEY}:`)) merged[key.slice(CONTEXT_KEY.length + 1)] = value;
  }
  const parsed = InfraConfigSchema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`invalid prefloop infra config:\n  ${problems.join('\n  ')}`);
  }
  const config = parsed.data;
  const visibilityTimeoutS = (config.maxTrainingMinutes + config.visibilityMarginMinutes) * 60;
  if (visibilityTimeoutS > SQS_MAX_VISIBILITY_S) {
    throw new Error(
      `invalid prefloop infra config:\n  maxTrainingMinutes + visibilityMarginMinutes = ${visibilityTimeoutS / 60} min ` +
        `exceeds the SQS visibility limit of ${SQS_MAX_VISIBILITY_S / 60} min`,
    );
  }
  const size = GPU_SIZES[config.instanceType.split('.')[1]];
  if (size && (config.taskCpu > size.vcpu * 1024 || config.taskMemoryMiB > size.memoryGiB * 1024 * ECS_MEMORY_SHARE)) {
    throw new Error(
      `invalid prefloop infra config:\n  the task (taskCpu ${config.taskCpu}, taskMemoryMiB ${config.taskMemoryMiB}) does not fit ` +
        `${config.instanceType} (${size.vcpu * 1024} CPU units, ~${Math.floor(size.memoryGiB * 1024 * ECS_MEMORY_SHARE)} MiB for tasks)`,
    );
  }
  return { ...config, visibilityTimeoutS, oldestMessageAlarmS: visibilityTimeoutS + config.queueWaitAlarmMinutes * 60 };
}
