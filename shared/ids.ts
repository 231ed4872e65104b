// Prefixed random identifiers (`proj_`, `key_`, `fb_`, `pfk_` for API keys...), from Web Crypto randomness so
// they are unguessable and portable across runtimes.

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

// Random bytes are drawn from Web Crypto in blocks and handed out from a pool: one getRandomValues call per ~100 ids
// instead of one per id (it was a visible share of a small POST's cost).
const POOL_SIZE = 4096;
const pool = new Uint8Array(POOL_SIZE);
let poolAt = POOL_SIZE;

function randomByte(): number {
  if (poolAt === POOL_SIZE) {
    crypto.getRandomValues(pool);
    poolAt = 0;
  }
  return pool[poolAt++];
}

/** `length` base62 characters; rejection sampling keeps every character uniform (62 does not divide 256). */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const b = randomByte();
    if (b < 248) out += BASE62[b % 62];
  }
  return out;
}

/** `prefix_` + 20 base62 characters (~119 bits): ids for rows. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(20)}`;
}

const TIME_CHARS = 8;

/**
 * `prefix_` + 20 base62 characters like newId, but the first 8 encode `nowMs` (fixed width, so ids sort by creation
 * time up to the year ~8900) and the last 12 are random (~71 bits). For rows inserted at a high rate: a B-tree index
 * on a random id takes each insert to a random leaf page, one on a time-ordered id grows at its right edge (measured
 * on the feedback table: about 2.4x less SQLite CPU per row at 50 rows per commit).
 */
export function newTimeOrderedId(prefix: string, nowMs: number): string {
  let t = Math.max(0, Math.floor(nowMs));
  let time = '';
  for (let i = 0; i < TIME_CHARS; i++) {
    time = BASE62[t % 62] + time;
    t = Math.floor(t / 62);
  }
  return `${prefix}_${time}${randomBase62(20 - TIME_CHARS)}`;
}

/** A new API key: `pfk_` + 40 base62 characters (~238 bits). Shown once, stored only as its SHA-256. */
export function newApiKey(): string {
  return `pfk_${randomBase62(40)}`;
}

/** How many leading characters of a key are kept in clear (`prefix` column) to tell keys apart in listings. */
export const API_KEY_PREFIX_LENGTH = 10;
