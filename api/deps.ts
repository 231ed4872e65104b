// What the portable app needs from its runtime, as types the core owns. Node (api/server.ts) and, later, workerd
// each build an AppDeps and hand it to createApp(); nothing in api/app.ts or api/routes/ touches a runtime API.
import type { BatchItem, BatchResponse } from 'drizzle-orm/batch';
import type { BaseSQLiteDatabase } from 'drizzle-orm/sqlite-core';
import type { Sha256Hex } from '../shared/hash';
import type * as schema from '../shared/schema';

export type Schema = typeof schema;

/**
 * A drizzle SQLite database in async mode that can run a list of statements atomically (`batch`): both the
 * libsql driver (drizzle-orm/libsql) and the D1 driver (drizzle-orm/d1) satisfy it.
 */
export type Database = BaseSQLiteDatabase<'async', any, Schema> & {
  batch<U extends BatchItem<'sqlite'>, T extends Readonly<[U, ...U[]]>>(batch: T): Promise<BatchResponse<T>>;
};

export interface RateLimitSettings {
  /** Sustained requests per second allowed per API key (token refill rate). 0 disables the limit. */
  requestsPerSecond: number;
  /** Bucket size: how many requests a key may send at once after being idle. */
  burst: number;
}

export interface AppSettings {
  /** Largest accepted request body in bytes; bigger bodies get 413 before they are parsed. */
  bodyLimitBytes: number;
  /** Per-key token bucket, kept in this process's memory. */
  rateLimit: RateLimitSettings;
  /**
   * How long a key lookup (hit or miss) is cached in memory. A revoked key keeps working for at most this long on
   * an instance that had it cached; a new key may be refused for this long if it was probed just before creation.
   */
  authCacheTtlMs: number;
  /** Rows read per database page when streaming the preference export. */
  exportPageSize: number;
  /** Share of prompts held out from training by the stable prompt hash (dataset export `split`). */
  heldOutFraction: number;
}

export const defaultSettings: AppSettings = {
  bodyLimitBytes: 1024 * 1024,
  rateLimit: { requestsPerSecond: 1000, burst: 2000 },
  authCacheTtlMs: 5_000,
  exportPageSize: 500,
  heldOutFraction: 0.1,
};

/** The training-jobs queue: the embedded SQL queue or SQS (shared/queue). POST /v1/training-runs enqueues on it;
 *  without one the routes use the embedded queue on `db`. */
import type { JobQueue } from '../shared/queue/contract';
import type { TrainingJobPayload } from '../shared/training-queue';
export type QueuePort = JobQueue<TrainingJobPayload>;
/** Artifact store: local directory or S3 (shared/artifact-store.ts; Node adapters in api/adapters/). */
import type { ArtifactStore } from '../shared/artifact-store';
export type { ArtifactStore };
/**
 * Policy runtime: the registry that loads each project's live ONNX policy and batches its generations
 * (api/policy/registry.ts). Built by the entry with a runtime port (onnxruntime-node / -web).
 */
import type { PolicyRegistry as PolicyRuntime } from './policy/registry';
export type { PolicyRuntime };

export interface AppDeps {
  db: Database;
  /** Epoch milliseconds; injectable so tests control time (rate limits, stats windows, cache TTLs). */
  clock: () => number;
  settings: AppSettings;
  /** SHA-256 hex; defaults to Web Crypto. Node passes node:crypto's synchronous hash (measured ~10x cheaper). */
  sha256?: Sha256Hex;
  queue?: QueuePort;
  artifacts?: ArtifactStore;
  policies?: PolicyRuntime;
  /** Coalesce concurrent requests' feedback into one transaction (default true; false on workerd, see FeedbackWriter). */
  groupCommit?: boolean;
  /** Runs the feedback INSERT of each flush; default: on `db`, in the caller's thread. */
  feedbackInserter?: FeedbackInserter;
}

/**
 * Stores a JSON array of feedback rows (each an array in FEEDBACK_COLUMNS order, api/feedback-writer.ts) in one
 * transaction, skipping rows whose (project_id, id) exists (FEEDBACK_INSERT_SQL's rule), and resolves with the number
 * of rows inserted only once that transaction has committed; on any error nothing is stored and it rejects. Node runs
 * it on a thread with its own connection (api/adapters/feedback-insert-thread.ts), so SQLite's per-row work runs on
 * the second core while the event loop parses and validates the next requests.
 */
export interface FeedbackInserter {
  insert(rowsJson: string): Promise<number>;
}
