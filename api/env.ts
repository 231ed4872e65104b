// The Node process environment, parsed and validated once (zod), then passed down as a typed object.
import { z } from 'zod';
import { defaultSettings } from './deps';

const int = (min: number) => z.coerce.number().int().min(min);

export const EnvSchema = z.object({
  /** SQLite file (created with its directory on first start). */
  PREFLOOP_DB: z.string().min(1).default('./data/prefloop.db'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0).max(65535).default(8787),
  /** Seeded at start as an admin key of the `default` project (idempotent). */
  PREFLOOP_API_KEY: z.string().min(16, 'use at least 16 characters').max(256).optional(),
  /** Request body limit in bytes (413 above it). */
  PREFLOOP_BODY_LIMIT_BYTES: int(1024).default(defaultSettings.bodyLimitBytes),
  /** Per-key sustained requests per second; 0 disables rate limiting. */
  PREFLOOP_RATE_LIMIT_RPS: z.coerce.number().min(0).default(defaultSettings.rateLimit.requestsPerSecond),
  /** Per-key burst (token bucket size). */
  PREFLOOP_RATE_LIMIT_BURST: int(1).default(defaultSettings.rateLimit.burst),
  /** How long key lookups are cached; also the longest a revoked key keeps working. */
  PREFLOOP_AUTH_CACHE_TTL_MS: int(0).default(defaultSettings.authCacheTtlMs),
});
export type Env = z.infer<typeof EnvSchema>;

/** Parses `source` (process.env by default); on error prints each bad variable and exits. */
export function loadEnv(source: Record<string, string | undefined> = process.env): Env {
  // Empty strings count as unset, as in most shells' `VAR= cmd`.
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) console.error(`invalid environment: ${issue.path.join('.')}: ${issue.message}`);
    process.exit(2);
  }
  return parsed.data;
}
