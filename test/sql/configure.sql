-- configure(): creates a cluster with the settings' defaults, NULL keeps a
-- setting, the settings show in the clusters view and in cluster_state at
-- once; heartbeat_interval and the lease follow them; the reshard gate
-- (batching, immediate first reshard, reset when empty, not bypassed by
-- configure). Clusters: reg_cfg, reg_cfg_auto, reg_gate, reg_gate_cfg.
-- Helpers of this test (schema test_helpers, dropped at the end).
SET client_min_messages = warning;
\set ECHO none
\i test/sql/helpers/common.psql
\set ECHO all
RESET client_min_messages;

-- configure() creates a cluster with the defaults of the settings
-- shard_coordinator.heartbeat_interval, grace_period and reshard_interval,
-- and returns once the background worker has stored it: the row is in
-- cluster_state at once.
SELECT current_setting('shard_coordinator.heartbeat_interval') AS heartbeat_interval,
       current_setting('shard_coordinator.grace_period') AS grace_period,
       current_setting('shard_coordinator.reshard_interval') AS reshard_interval;
SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg');
SELECT cluster, heartbeat_interval, grace_period, reshard_interval, max_shards,
       epoch, num_shards, members, active, standby, pending, resharded_at
  FROM shard_coordinator.clusters WHERE cluster = 'reg_cfg';
SELECT cluster, heartbeat_interval, grace_period, reshard_interval, max_shards,
       epoch, num_shards, resharded_at
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT test_helpers.check('reg_cfg');

-- Each argument changes its own setting; NULL keeps a setting.
SELECT shard_coordinator.configure('reg_cfg', heartbeat_interval => '2 s');
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg', grace_period => '3 s', reshard_interval => '0');
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg', max_shards => 4);
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg', NULL, NULL, NULL, NULL, NULL);
SELECT shard_coordinator.configure('reg_cfg', heartbeat_interval => NULL, max_shards => NULL);
SELECT shard_coordinator.configure('reg_cfg', clear_max_shards => false);
SELECT shard_coordinator.configure('reg_cfg', clear_max_shards => NULL);
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.clusters WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg', clear_max_shards => true);
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
-- Sub-second and limit values: stored as given (1 day is the upper limit).
SELECT shard_coordinator.configure('reg_cfg', heartbeat_interval => '1 day',
                                   grace_period => '1 day', reshard_interval => '1 day');
SELECT heartbeat_interval = interval '1 day' AS hb_day, grace_period = interval '1 day' AS grace_day,
       reshard_interval = interval '1 day' AS reshard_day
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg', heartbeat_interval => '1.5 s',
                                   grace_period => '0', reshard_interval => '10 ms');
SELECT heartbeat_interval, grace_period, reshard_interval
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.configure('reg_cfg', heartbeat_interval => '2 s',
                                   grace_period => '3 s', reshard_interval => '0');
-- None of this resharded the (empty) cluster.
SELECT test_helpers.check('reg_cfg');

-- A heartbeat reports the cluster's heartbeat_interval, and its lease is
-- heartbeat_interval + grace_period.
SELECT state, heartbeat_interval FROM shard_coordinator.heartbeat('reg_cfg', 'm1');
SELECT test_helpers.wait_settled('reg_cfg', 1);
SELECT test_helpers.check('reg_cfg');
SELECT shard, num_shards, state, heartbeat_interval,
       expires_at BETWEEN statement_timestamp() + interval '5 s'
                      AND clock_timestamp() + interval '5 s' AS expires_ok
  FROM shard_coordinator.heartbeat('reg_cfg', 'm1');
SELECT expires_at - last_heartbeat AS lease
  FROM shard_coordinator.members WHERE cluster = 'reg_cfg';
-- Changing intervals applies at once and does not reshard.
SELECT shard_coordinator.configure('reg_cfg', heartbeat_interval => '4 s', grace_period => '6 s');
SELECT shard, num_shards, state, heartbeat_interval,
       expires_at BETWEEN statement_timestamp() + interval '10 s'
                      AND clock_timestamp() + interval '10 s' AS expires_ok
  FROM shard_coordinator.heartbeat('reg_cfg', 'm1');
SELECT expires_at - last_heartbeat AS lease
  FROM shard_coordinator.members WHERE cluster = 'reg_cfg';
SELECT test_helpers.check('reg_cfg');
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards
  FROM shard_coordinator.clusters WHERE cluster = 'reg_cfg';
SELECT shard_coordinator.leave('reg_cfg', 'm1');
SELECT test_helpers.wait_settled('reg_cfg', 0);
SELECT test_helpers.check('reg_cfg');

-- A cluster that comes into being on a first heartbeat gets the defaults
-- from the settings, and is stored at its first reshard.
SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = 'reg_cfg_auto';
SELECT state, heartbeat_interval FROM shard_coordinator.heartbeat('reg_cfg_auto', 'm1');
SELECT test_helpers.wait_settled('reg_cfg_auto', 1);
SELECT test_helpers.check('reg_cfg_auto');
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, epoch, num_shards
  FROM shard_coordinator.clusters WHERE cluster = 'reg_cfg_auto';
SELECT heartbeat_interval, grace_period, reshard_interval, max_shards, epoch, num_shards
  FROM shard_coordinator.cluster_state WHERE cluster = 'reg_cfg_auto';
-- configure() of an existing cluster keeps its members and assignment.
SELECT shard_coordinator.configure('reg_cfg_auto', heartbeat_interval => '3 s');
SELECT shard, num_shards, state, heartbeat_interval
  FROM shard_coordinator.heartbeat('reg_cfg_auto', 'm1');
SELECT test_helpers.check('reg_cfg_auto');
SELECT shard_coordinator.leave('reg_cfg_auto', 'm1');
SELECT test_helpers.wait_settled('reg_cfg_auto', 0);
SELECT test_helpers.check('reg_cfg_auto');

-- The reshard gate: at most one reshard per reshard_interval (2 s here).
-- The first reshard of an empty cluster is immediate; joins that arrive
-- within the interval are batched into one reshard.
SELECT shard_coordinator.configure('reg_gate', reshard_interval => '2 s');
SELECT clock_timestamp() AS t0 \gset
SELECT state FROM shard_coordinator.heartbeat('reg_gate', 'a');
SELECT test_helpers.wait_settled('reg_gate', 1);
SELECT clock_timestamp() - :'t0'::timestamptz < interval '1 s' AS immediate;
SELECT test_helpers.check('reg_gate');
SELECT epoch, resharded_at AS first_reshard FROM shard_coordinator.clusters
 WHERE cluster = 'reg_gate' \gset
SELECT :epoch AS epoch;
SELECT m, h.state FROM unnest(ARRAY['b', 'c']) AS m, shard_coordinator.heartbeat('reg_gate', m) AS h;
SELECT test_helpers.wait_settled('reg_gate', 3);
SELECT test_helpers.check('reg_gate');
SELECT epoch, resharded_at - :'first_reshard'::timestamptz >= interval '2 s' AS gated
  FROM shard_coordinator.clusters WHERE cluster = 'reg_gate';
SELECT member, shard, num_shards, epoch, state
  FROM shard_coordinator.members WHERE cluster = 'reg_gate' ORDER BY member;
-- When the last member goes, the gate resets: the next join is served at
-- once, not 2 s after the previous reshard.
SELECT shard_coordinator.leave('reg_gate', m) FROM unnest(ARRAY['a', 'b', 'c']) AS m;
SELECT test_helpers.wait_settled('reg_gate', 0);
SELECT test_helpers.check('reg_gate');
SELECT clock_timestamp() AS t1 \gset
SELECT state FROM shard_coordinator.heartbeat('reg_gate', 'd');
SELECT test_helpers.wait_settled('reg_gate', 1);
SELECT clock_timestamp() - :'t1'::timestamptz < interval '1 s' AS immediate_after_reset;
SELECT test_helpers.check('reg_gate');
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_gate' ORDER BY member;
SELECT shard_coordinator.configure('reg_gate', reshard_interval => '0');
SELECT shard_coordinator.leave('reg_gate', 'd');
SELECT test_helpers.wait_settled('reg_gate', 0);
SELECT test_helpers.check('reg_gate');

-- The gate holds when configure() changes an unrelated setting while a
-- join waits for it: configure() stores the setting but must not reshard
-- before the gate opens.
SELECT shard_coordinator.configure('reg_gate_cfg', reshard_interval => '1 day');
SELECT state FROM shard_coordinator.heartbeat('reg_gate_cfg', 'a');
SELECT test_helpers.wait_settled('reg_gate_cfg', 1);
SELECT state FROM shard_coordinator.heartbeat('reg_gate_cfg', 'b');
SELECT test_helpers.check('reg_gate_cfg');
SELECT shard_coordinator.configure('reg_gate_cfg', heartbeat_interval => '6 s');
SELECT heartbeat_interval FROM shard_coordinator.cluster_state WHERE cluster = 'reg_gate_cfg';
-- b is still pending, the epoch unchanged.
SELECT member, shard, num_shards, state
  FROM shard_coordinator.members WHERE cluster = 'reg_gate_cfg' ORDER BY member;
SELECT test_helpers.check('reg_gate_cfg');
-- Opening the gate assigns b.
SELECT shard_coordinator.configure('reg_gate_cfg', reshard_interval => '0');
SELECT test_helpers.wait_settled('reg_gate_cfg', 2);
SELECT test_helpers.check('reg_gate_cfg');
SELECT shard_coordinator.leave('reg_gate_cfg', m) FROM unnest(ARRAY['a', 'b']) AS m;
SELECT test_helpers.wait_settled('reg_gate_cfg', 0);
SELECT test_helpers.check('reg_gate_cfg');

SET client_min_messages = warning;
DROP SCHEMA test_helpers CASCADE;
RESET client_min_messages;
