// Hashing helpers that run unchanged on Node and workerd: SHA-256 through Web Crypto, a canonical JSON form so
// two bodies that differ only in key order hash the same, a constant-time byte compare, and a fast non-crypto
// string hash for stable bucketing (train/held-out split).

const encoder = new TextEncoder();

/** Hex of SHA-256 over the UTF-8 bytes of `text` (Web Crypto; async). */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', encoder.encode(text));
  return bytesToHex(new Uint8Array(digest));
}

/** A SHA-256 implementation the app can be handed; Node's entry passes a synchronous one (10x faster there). */
export type Sha256Hex = (text: string) => string | Promise<string>;

export function bytesToHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += bytes[i].toString(16).padStart(2, '0');
  return out;
}

export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >>> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/**
 * Compares two byte arrays in time that depends only on their lengths, never on where they first differ, so a
 * caller probing keys learns nothing from response timing.
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * JSON with object keys sorted at every depth and `undefined` members left out: the same value always gives the
 * same string, whatever order a client wrote its keys in. Arrays keep their order (it is meaningful).
 */
export function canonicalJson(value: unknown): string {
  // Plain loops into one string: this runs once per ingested event (its body hash), and the map/filter/join form
  // measured ~30% slower. Stored hashes compare against this output, so it must stay byte for byte the same.
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out += (i === 0 ? '' : ',') + (v === undefined ? 'null' : canonicalJson(v));
    }
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    out += (out.length === 1 ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v);
  }
  return `${out}}`;
}

/**
 * 32-bit FNV-1a over the UTF-16 code units of `text`. Not cryptographic: used where a stable, fast, well-mixed
 * bucket is needed (it never changes between versions, runtimes or runs).
 */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Final avalanche (murmur3 fmix32) so nearby prompts land in unrelated buckets.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
