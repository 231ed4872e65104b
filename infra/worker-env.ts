// The environment the deployed worker container receives: the contract between this stack and the worker's
// configuration parser. Names only here; values are set in gpu-workers.ts.

export const WORKER_ENV = {
  /** Queue adapter: 'sqs' in this deployment (the embedded SQL queue is the local default). */
  queue: 'PREFLOOP_QUEUE',
  /** URL of the training-jobs SQS queue. */
  sqsQueueUrl: 'PREFLOOP_SQS_QUEUE_URL',
  /**
   * Where the worker writes new artifacts: `s3://<bucket>/<prefix>` (ends in '/'), in the artifact store's URI
   * scheme (api/adapters/s3-artifact-store.ts). The task role allows nothing outside that prefix.
   */
  artifactRoot: 'PREFLOOP_ARTIFACT_ROOT',
  /** First TF.js backend to try: 'node-gpu' on the GPU workers. */
  tfBackend: 'PREFLOOP_TF_BACKEND',
  /** Ceiling on a run's wall time in seconds; the queue's visibility timeout is set above it. */
  maxRunSeconds: 'PREFLOOP_MAX_RUN_SECONDS',
  /** Database URL, injected from Secrets Manager when the stack is given a secret. */
  databaseUrl: 'PREFLOOP_DATABASE_URL',
  /** Region for the AWS SDK: set explicitly because IMDS is closed to containers (hop limit 1). */
  awsRegion: 'AWS_REGION',
} as const;

/** Body of the message the schedule sends to the jobs queue; the worker's scheduler answers it. */
export const SCHEDULE_TICK_MESSAGE = { kind: 'schedule-tick' } as const;
/** FIFO message group of schedule ticks: at most one tick is handled at a time. */
export const SCHEDULE_TICK_GROUP = 'schedule-tick';
