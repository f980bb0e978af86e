// jumpHash() gives the server's answers: the known-answer vectors of
// test/unit/jump_hash_test.cpp and test/sql/jump_hash.sql, and the same
// properties (range, minimal movement).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { fnv1a64, jumpHash } from '../../src/jump-hash.js';

const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;

test('bigint keys: the server known answers', () => {
  const vectors: [bigint, number, number][] = [
    [1n, 1, 0],
    [42n, 57, 43],
    [0xdead10ccn, 1, 0],
    [0xdead10ccn, 666, 361],
    [3735928524n, 666, 612],
    [256n, 1024, 520],
    [-1n, 10, 9],
    [-1n, 1000, 313],
    [-42n, 57, 8],
    [INT64_MIN, 10, 5],
    [INT64_MIN, 2147483647, 1119800965],
    [INT64_MAX, 10, 8],
    [INT64_MAX, 2147483647, 213047985],
    [0n, 2147483647, 0],
  ];
  for (const [key, buckets, want] of vectors) {
    assert.equal(jumpHash(key, buckets), want, `jumpHash(${key}, ${buckets})`);
  }
});

test('number keys are the bigint variant', () => {
  assert.equal(jumpHash(42, 57), 43);
  assert.equal(jumpHash(-42, 57), 8);
  assert.equal(jumpHash(-1, 1000), 313);
  assert.throws(() => jumpHash(2 ** 60, 10), RangeError);
  assert.throws(() => jumpHash(1.5, 10), RangeError);
});

test('text keys: FNV-1a 64 of the UTF-8 bytes first', () => {
  assert.equal(jumpHash('user-1', 10), 9);
  assert.equal(jumpHash('', 10), 1);
  assert.equal(jumpHash('h\u00e9llo', 1000), 962); // 'héllo', 6 bytes in UTF-8
  assert.equal(fnv1a64(new Uint8Array()), 0xcbf29ce484222325n);
});

test('buckets < 1 is an error, for both variants', () => {
  for (const buckets of [0, -1, -2147483648]) {
    assert.throws(() => jumpHash(1n, buckets), /buckets must be at least 1/);
    assert.throws(() => jumpHash('user-1', buckets), /buckets must be at least 1/);
  }
  assert.throws(() => jumpHash(1n, 2147483648), RangeError);
  assert.throws(() => jumpHash(1n, 2.5), RangeError);
});

test('keys outside the signed 64-bit range are refused', () => {
  assert.throws(() => jumpHash(INT64_MAX + 1n, 10), RangeError);
  assert.throws(() => jumpHash(INT64_MIN - 1n, 10), RangeError);
});

test('results are in 0 .. buckets-1; one bucket takes everything', () => {
  for (const n of [1, 2, 3, 10, 1000]) {
    for (let k = -1000; k <= 1000; k += 7) {
      const b = jumpHash(BigInt(k) * 7919n - 5000000n, n);
      assert.ok(b >= 0 && b < n);
      const t = jumpHash(String(k), n);
      assert.ok(t >= 0 && t < n);
      if (n === 1) assert.equal(b, 0);
    }
  }
});

test('growing from n to n+1 buckets moves keys only into the new bucket, about 1/(n+1) of them', () => {
  const keys = 5000;
  for (let n = 1; n < 20; n++) {
    let moved = 0;
    for (let k = 0; k < keys; k++) {
      const key = (BigInt(k) * 0x9e3779b97f4a7c15n) & ((1n << 63n) - 1n);
      const before = jumpHash(key, n);
      const after = jumpHash(key, n + 1);
      if (before !== after) {
        assert.equal(after, n, 'a key moved between old buckets');
        moved++;
      }
    }
    const expected = keys / (n + 1);
    assert.ok(Math.abs(moved - expected) <= expected * 0.15 + 30, `n=${n}: moved ${moved}, expected about ${expected}`);
  }
});
