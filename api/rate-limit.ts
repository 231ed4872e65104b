// Per-key token bucket in process memory (portable: no timers, time comes from the injected clock). Each instance
// limits on its own; behind N instances a key gets up to N times the rate, which is the usual trade-off for a
// limiter that costs nothing on the hot path.
import type { RateLimitSettings } from './deps';

interface Bucket {
  tokens: number;
  updatedAt: number;
}

export type TakeResult = { ok: true } | { ok: false; retryAfterS: number };

const MAX_BUCKETS = 100_000;

export class TokenBucketLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly settings: RateLimitSettings) {}

  get enabled(): boolean {
    return this.settings.requestsPerSecond > 0;
  }

  take(key: string, now: number): TakeResult {
    const { requestsPerSecond: rate, burst } = this.settings;
    if (rate <= 0) return { ok: true };
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) this.buckets.clear();
      this.buckets.set(key, (b = { tokens: burst, updatedAt: now }));
    } else {
      b.tokens = Math.min(burst, b.tokens + ((now - b.updatedAt) / 1000) * rate);
      b.updatedAt = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return { ok: true };
    }
    return { ok: false, retryAfterS: Math.max(1, Math.ceil((1 - b.tokens) / rate)) };
  }
}
