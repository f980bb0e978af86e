-- jump_hash(bigint, integer) and jump_hash(text, integer): Lamping and
-- Veach's jump consistent hash (2014) as published, the text variant over
-- the 64-bit FNV-1a hash of the text's bytes (README, "Key helpers").
--
-- Helpers of this test live in the schema test_jump_hash, dropped at the end.
SET client_min_messages = warning;
CREATE SCHEMA test_jump_hash;

-- Runs one statement and reports its SQLSTATE and message ('00000' if it
-- succeeded).
CREATE FUNCTION test_jump_hash.try(stmt text, OUT code text, OUT message text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  code := '00000';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT;
END $$;
RESET client_min_messages;

-- 1. Known answers, computed independently from the published algorithm:
--      b = -1; j = 0
--      while j < buckets:
--        b = j; key = key * 2862933555777941757 + 1 (mod 2^64)
--        j = floor((b + 1) * (2^31 / ((key >> 33) + 1)))   (in doubles)
-- Negative keys are their two's complement as unsigned 64-bit keys.
SELECT k AS key, n AS buckets, shard_coordinator.jump_hash(k, n) AS got, want,
       shard_coordinator.jump_hash(k, n) = want AS ok
  FROM (VALUES (1::bigint, 1, 0),
               (42, 57, 43),
               (x'DEAD10CC'::bigint, 1, 0),      -- 3735883980
               (x'DEAD10CC'::bigint, 666, 361),
               (3735928524, 666, 612),           -- 0xDEADBECC
               (256, 1024, 520),
               (-1, 10, 9),                      -- 0xFFFFFFFFFFFFFFFF
               (-1, 1000, 313),
               (-42, 57, 8),
               (-9223372036854775808, 10, 5),
               (-9223372036854775808, 2147483647, 1119800965),
               (9223372036854775807, 10, 8),
               (9223372036854775807, 2147483647, 213047985),
               (0, 2147483647, 0))
       AS t(k, n, want);

-- The text variant hashes the text's bytes with FNV-1a 64 first; 'héllo' is
-- 6 bytes in UTF-8 (the test database's encoding).
SELECT octet_length('héllo') AS hello_bytes;
SELECT k AS key, n AS buckets, shard_coordinator.jump_hash(k, n) AS got, want,
       shard_coordinator.jump_hash(k, n) = want AS ok
  FROM (VALUES ('user-1'::text, 10, 9),
               ('', 10, 1),
               ('héllo', 1000, 962))
       AS t(k, n, want);

-- One bucket: everything goes to bucket 0; results are always in
-- 0 .. buckets-1, also for the largest bucket count.
SELECT bool_and(shard_coordinator.jump_hash(k, 1) = 0) AS one_bucket,
       bool_and(shard_coordinator.jump_hash(k::text, 1) = 0) AS one_bucket_text,
       bool_and(shard_coordinator.jump_hash(k * 7919 - 5000000, n) BETWEEN 0 AND n - 1) AS in_range,
       bool_and(shard_coordinator.jump_hash(k::text, n) BETWEEN 0 AND n - 1) AS in_range_text,
       bool_and(shard_coordinator.jump_hash(k * 1000003, 2147483647) BETWEEN 0 AND 2147483646) AS in_range_max
  FROM generate_series(-1000, 1000) AS k,
       (VALUES (2), (3), (10), (1000)) AS b(n);

-- 2. buckets < 1 is an error (22023 invalid_parameter_value), for both
-- variants and whatever the key.
SELECT stmt, (test_jump_hash.try(stmt)).*
  FROM unnest(ARRAY[
         'SELECT shard_coordinator.jump_hash(1::bigint, 0)',
         'SELECT shard_coordinator.jump_hash(1::bigint, -1)',
         'SELECT shard_coordinator.jump_hash(-9223372036854775808, -2147483648)',
         'SELECT shard_coordinator.jump_hash(''user-1''::text, 0)',
         'SELECT shard_coordinator.jump_hash(''''::text, -5)']) AS stmt;

-- 3. STRICT: a NULL argument gives NULL (and no error, even with a bad
-- bucket count).
SELECT shard_coordinator.jump_hash(NULL::bigint, 10) IS NULL AS null_key,
       shard_coordinator.jump_hash(1::bigint, NULL) IS NULL AS null_buckets,
       shard_coordinator.jump_hash(NULL::text, 10) IS NULL AS null_text_key,
       shard_coordinator.jump_hash('user-1'::text, NULL) IS NULL AS null_text_buckets,
       shard_coordinator.jump_hash(NULL::bigint, 0) IS NULL AS null_key_bad_buckets;

-- 4. Catalog: IMMUTABLE, PARALLEL SAFE, STRICT, returns integer, and
-- executable by PUBLIC.
SELECT p.oid::regprocedure AS function, p.provolatile, p.proparallel,
       p.proisstrict, p.prorettype::regtype AS returns,
       EXISTS (SELECT 1 FROM aclexplode(p.proacl) AS a
                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_execute
  FROM pg_proc AS p
 WHERE p.pronamespace = 'shard_coordinator'::regnamespace AND p.proname = 'jump_hash'
 ORDER BY 1::text;

-- 5. Movement: when the bucket count grows from n to n+1, a key either
-- stays in its bucket or moves to the new bucket n, and about 1/(n+1) of
-- the keys move (here within 5 standard deviations of 10000/(n+1)).
WITH keys AS (SELECT k FROM generate_series(1, 10000) AS k),
     steps AS (SELECT n FROM generate_series(1, 20) AS n
               UNION ALL SELECT 99 UNION ALL SELECT 1000),
     moves AS (
       SELECT s.n,
              count(*) FILTER (WHERE shard_coordinator.jump_hash(k, s.n + 1)
                                     <> shard_coordinator.jump_hash(k, s.n)) AS moved,
              bool_and(shard_coordinator.jump_hash(k, s.n + 1) = shard_coordinator.jump_hash(k, s.n)
                       OR shard_coordinator.jump_hash(k, s.n + 1) = s.n) AS only_to_new_bucket
         FROM keys, steps AS s
        GROUP BY s.n)
SELECT n AS from_buckets, n + 1 AS to_buckets, only_to_new_bucket,
       abs(moved - 10000.0 / (n + 1))
         <= 5 * sqrt(10000.0 * (1.0 / (n + 1)) * (1 - 1.0 / (n + 1))) AS about_1_in_n_plus_1
  FROM moves
 ORDER BY n;

-- Unlike hash % n: from 9 to 10 buckets, jump_hash moves about 1000 of the
-- 10000 keys, the modulo about 9000.
SELECT count(*) FILTER (WHERE shard_coordinator.jump_hash(k, 10)
                              <> shard_coordinator.jump_hash(k, 9)) < 1200 AS jump_moves_few,
       count(*) FILTER (WHERE k % 10 <> k % 9) > 8000 AS modulo_moves_most
  FROM generate_series(1, 10000) AS k;

-- The same for the text variant, n = 9 -> 10 over the texts 'key-1' ..
-- 'key-10000'.
SELECT bool_and(a = b OR b = 9) AS only_to_new_bucket,
       abs(count(*) FILTER (WHERE a <> b) - 1000) <= 5 * sqrt(10000 * 0.1 * 0.9) AS about_1_in_10
  FROM (SELECT shard_coordinator.jump_hash('key-' || k, 9) AS a,
               shard_coordinator.jump_hash('key-' || k, 10) AS b
          FROM generate_series(1, 10000) AS k) AS t;

-- Balance: over 10 buckets, each holds 1000 +- 5 standard deviations of
-- the 10000 keys.
SELECT count(DISTINCT b) AS buckets_used,
       bool_and(abs(c - 1000) <= 5 * sqrt(10000 * 0.1 * 0.9)) AS balanced
  FROM (SELECT shard_coordinator.jump_hash(k, 10) AS b, count(*) AS c
          FROM generate_series(1, 10000) AS k GROUP BY 1) AS t;

SET client_min_messages = warning;
DROP SCHEMA test_jump_hash CASCADE;
RESET client_min_messages;
