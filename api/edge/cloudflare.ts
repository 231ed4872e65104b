// The few Cloudflare runtime types the edge entry uses, declared structurally so the project needs no
// @cloudflare/workers-types (whose globals would clash with the DOM/Node lib types the rest of the code uses).
// Shapes follow the Workers runtime API; only the members prefloop calls are listed.

/** A D1 database binding (handed as-is to drizzle-orm/d1). */
export interface D1DatabaseBinding {
  prepare(query: string): unknown;
  batch(statements: unknown[]): Promise<unknown[]>;
  exec(query: string): Promise<unknown>;
}

export interface R2ObjectBody {
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface R2ListResult {
  objects: { key: string }[];
  truncated: boolean;
  cursor?: string;
}

/** An R2 bucket binding. */
export interface R2BucketBinding {
  get(key: string): Promise<R2ObjectBody | null>;
  head(key: string): Promise<unknown | null>;
  put(key: string, value: ArrayBuffer | Uint8Array | string): Promise<unknown>;
  list(options?: { prefix?: string; cursor?: string; limit?: number }): Promise<R2ListResult>;
}

export interface ExecutionContextLike {
  waitUntil(promise: Promise<unknown>): void;
}

export interface ScheduledControllerLike {
  /** Epoch ms of the tick. */
  scheduledTime: number;
  cron: string;
}
