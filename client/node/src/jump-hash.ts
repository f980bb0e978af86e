// The key -> shard mapping of the server's shard_coordinator.jump_hash():
// Lamping and Veach's jump consistent hash (2014), and for text keys the
// 64-bit FNV-1a hash of the text's UTF-8 bytes first. Same answers as the
// SQL functions for every key and bucket count.

const MASK_64 = (1n << 64n) - 1n;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const LCG_MULTIPLIER = 2862933555777941757n;
const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const TWO_POW_31 = 2147483648;
const BUCKETS_MAX = 2147483647;

const utf8 = new TextEncoder();

/** FNV-1a 64 of the bytes, as an unsigned 64-bit value. */
export function fnv1a64(bytes: Uint8Array): bigint {
  let h = FNV_OFFSET;
  for (const byte of bytes) {
    h ^= BigInt(byte);
    h = (h * FNV_PRIME) & MASK_64;
  }
  return h;
}

function checkBuckets(buckets: number): void {
  if (!Number.isInteger(buckets) || buckets > BUCKETS_MAX) {
    throw new RangeError(`buckets must be an integer up to ${BUCKETS_MAX}, got ${String(buckets)}`);
  }
  if (buckets < 1) throw new RangeError('buckets must be at least 1');
}

// The published algorithm on an unsigned 64-bit key. The step that picks the
// next candidate is done in doubles, exactly as the C++ code does, so that
// both give the same bucket.
function jumpUnsigned(key: bigint, buckets: number): number {
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    key = (key * LCG_MULTIPLIER + 1n) & MASK_64;
    j = Math.floor((b + 1) * (TWO_POW_31 / (Number(key >> 33n) + 1)));
  }
  return b;
}

/**
 * The shard of `key` among `buckets` shards, as
 * `shard_coordinator.jump_hash(key, buckets)` computes it on the server.
 *
 * - a `bigint` or an integer `number` is the SQL `bigint` variant (negative
 *   keys are taken as their two's complement, as the server does); it must
 *   fit in a signed 64-bit integer;
 * - a `string` is the SQL `text` variant: the key is the 64-bit FNV-1a hash of
 *   its UTF-8 bytes (the database's encoding must be UTF-8 for the two to
 *   agree on non-ASCII text).
 *
 * Throws a RangeError when `buckets < 1` (the server's error too).
 */
export function jumpHash(key: bigint | number | string, buckets: number): number {
  checkBuckets(buckets);
  let k: bigint;
  if (typeof key === 'string') {
    k = fnv1a64(utf8.encode(key));
  } else {
    if (typeof key === 'number' && !Number.isSafeInteger(key)) {
      throw new RangeError(
        `key must be a safe integer (use a bigint for larger keys), got ${String(key)}`,
      );
    }
    const big = BigInt(key);
    if (big < INT64_MIN || big > INT64_MAX) {
      throw new RangeError(`key must fit in a signed 64-bit integer, got ${big}`);
    }
    k = BigInt.asUintN(64, big);
  }
  return jumpUnsigned(k, buckets);
}
