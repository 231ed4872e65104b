// The edge deployment's bindings, variables and secrets (wrangler.toml), and how they become the app's
// settings. Secrets (`wrangler secret put`): AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, PREFLOOP_API_KEY.
import { type AppSettings, defaultSettings } from '../deps';
import type { D1DatabaseBinding, R2BucketBinding } from './cloudflare';

export interface EdgeEnv {
  /** D1 database: the drizzle-kit migrations in ./migrations, applied by `wrangler d1 migrations apply`. */
  DB: D1DatabaseBinding;
  /** R2 bucket holding model artifacts (the worker writes them through R2's S3 API). */
  ARTIFACTS?: R2BucketBinding;
  /** The R2 bucket's name as the worker's s3:// URIs spell it. Default `prefloop-artifacts`. */
  ARTIFACTS_BUCKET?: string;
  /**
   * Where generation runs: `edge` (onnxruntime-web in this isolate, model from R2) or `origin` (forward
   * /v1/generations, /v1/completions and /v1/models to GENERATION_ORIGIN, the Node deployment). Default:
   * `origin` when GENERATION_ORIGIN is set, else `edge`.
   */
  GENERATION?: string;
  /** Base URL of the Node deployment generation is forwarded to (README "Edge"). */
  GENERATION_ORIGIN?: string;
  /** The SQS FIFO queue training jobs go to. Unset: the SQL queue in D1 (development only). */
  SQS_QUEUE_URL?: string;
  SQS_DLQ_URL?: string;
  /** The queue's redrive maxReceiveCount (infra: 5). */
  SQS_MAX_ATTEMPTS?: string;
  AWS_REGION?: string;
  /** Override of the SQS endpoint (tests: an emulator on 127.0.0.1). */
  SQS_ENDPOINT?: string;
  AWS_ACCESS_KEY_ID?: string;
  AWS_SECRET_ACCESS_KEY?: string;
  /** Seeds an admin key for the default project on the first request of an isolate. */
  PREFLOOP_API_KEY?: string;
  PREFLOOP_BODY_LIMIT_BYTES?: string;
  PREFLOOP_RATE_LIMIT_RPS?: string;
  PREFLOOP_RATE_LIMIT_BURST?: string;
  /** How often an isolate re-reads live policy versions (ms). Default 2000. */
  PREFLOOP_POLICY_POLL_MS?: string;
}

function num(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

export function edgeSettings(env: EdgeEnv): AppSettings {
  return {
    ...defaultSettings,
    bodyLimitBytes: num(env.PREFLOOP_BODY_LIMIT_BYTES, defaultSettings.bodyLimitBytes, 'PREFLOOP_BODY_LIMIT_BYTES'),
    // Per isolate: Workers run many isolates, so this bounds bursts per isolate, not per key globally.
    rateLimit: {
      requestsPerSecond: num(env.PREFLOOP_RATE_LIMIT_RPS, defaultSettings.rateLimit.requestsPerSecond, 'PREFLOOP_RATE_LIMIT_RPS'),
      burst: num(env.PREFLOOP_RATE_LIMIT_BURST, defaultSettings.rateLimit.burst, 'PREFLOOP_RATE_LIMIT_BURST'),
    },
  };
}

export function generationMode(env: EdgeEnv): 'edge' | 'origin' {
  const mode = env.GENERATION ?? (env.GENERATION_ORIGIN ? 'origin' : 'edge');
  if (mode !== 'edge' && mode !== 'origin') throw new Error(`GENERATION must be edge or origin, got ${mode}`);
  if (mode === 'origin' && !env.GENERATION_ORIGIN) throw new Error('GENERATION=origin needs GENERATION_ORIGIN');
  return mode;
}
