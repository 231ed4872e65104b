// Bearer-key authentication. A key is looked up by its SHA-256 (the only form stored), the stored hash is compared
// in constant time, and the result (hit or miss) is cached in memory for `authCacheTtlMs` so the hot path does not
// query the database on every request. Consequence, by design: revoking a key takes effect within that TTL
// (default 5 s) on every instance, not instantly.
import { eq } from 'drizzle-orm';
import { type Sha256Hex, hexToBytes, timingSafeEqual } from '../shared/hash';
import { apiKeys } from '../shared/schema';
import type { Database } from './deps';
import { ApiError } from './errors';

export type Scope = 'ingest' | 'admin';

export interface AuthContext {
  keyId: string;
  projectId: string;
  scopes: readonly Scope[];
}

interface CacheEntry {
  auth: AuthContext | null;
  expiresAt: number;
}

/** Bounds the cache under a flood of random keys; when full it is simply emptied (cheap, and rare). */
const MAX_CACHE_ENTRIES = 10_000;

export class KeyAuthenticator {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly db: Database,
    private readonly clock: () => number,
    private readonly ttlMs: number,
    private readonly sha256: Sha256Hex,
  ) {}

  async authenticate(authorization: string | undefined): Promise<AuthContext> {
    const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
    if (!match) throw new ApiError(401, 'unauthorized', 'send the API key as `Authorization: Bearer <key>`');
    const hash = await this.sha256(match[1]);
    const now = this.clock();
    let entry = this.cache.get(hash);
    if (!entry || entry.expiresAt <= now) {
      entry = { auth: await this.lookup(hash), expiresAt: now + this.ttlMs };
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
      this.cache.set(hash, entry);
    }
    if (!entry.auth) throw new ApiError(401, 'invalid_api_key', 'the API key is unknown or revoked');
    return entry.auth;
  }

  /** Forget cached lookups (the CLI and tests call this after revoking in the same process). */
  invalidate(): void {
    this.cache.clear();
  }

  private async lookup(hash: string): Promise<AuthContext | null> {
    const [row] = await this.db
      .select({ id: apiKeys.id, projectId: apiKeys.projectId, keyHash: apiKeys.keyHash, scopes: apiKeys.scopes, revokedAt: apiKeys.revokedAt })
      .from(apiKeys)
      .where(eq(apiKeys.keyHash, hash))
      .limit(1);
    // The index lookup is not constant-time; comparing the stored hash with ours in constant time is the check.
    if (!row || !timingSafeEqual(hexToBytes(row.keyHash), hexToBytes(hash)) || row.revokedAt != null) return null;
    return { keyId: row.id, projectId: row.projectId, scopes: row.scopes };
  }
}

/** Throws 403 unless the key holds `scope` (admin implies every scope). */
export function requireScope(auth: AuthContext, scope: Scope): void {
  if (!auth.scopes.includes(scope) && !auth.scopes.includes('admin')) {
    throw new ApiError(403, 'forbidden', `this API key lacks the \`${scope}\` scope`);
  }
}
