# Capacity limits and what is stored:
#   - a configure() refused for want of a free slot set creates no cluster;
#   - shard_coordinator.max_members lowered across a restart: the stored
#     members that no longer fit are dropped by the load (named in the log,
#     rows deleted); what they were granted stays held (pending releases)
#     until their promises have surely ended, one full lease after the
#     start, so that nobody else gets it meanwhile; the cluster stays
#     consistent: later reshards work;
#   - shard_coordinator.max_clusters lowered across a restart: the clusters
#     that do not fit are named in the log and left as stored; the others
#     work.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = SCTest::new_node('capacity_restart',
	'shard_coordinator.max_members = 10',
	'shard_coordinator.max_clusters = 4',
	'shard_coordinator.max_slot_clusters = 1');
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE st text; msg text;
	BEGIN
	  EXECUTE stmt;
	  RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
	  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
	  RETURN st || ' | ' || msg;
	END $$;
});

# --- configure() refused: no cluster is left behind ------------------------
is( $node->safe_psql('postgres',
		q{SELECT public.try($$SELECT shard_coordinator.configure('s1', slots => '{1,2}')$$)}),
	'ok', 'the first slot set is given');
like(
	$node->safe_psql('postgres',
		q{SELECT public.try($$SELECT shard_coordinator.configure('s2', slots => '{1}')$$)}),
	qr/^53400 \| .*all 1 slot sets are in use/,
	'a second one is refused (max_slot_clusters = 1)');
is( $node->safe_psql('postgres', q{
		SELECT (SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = 's2')
		     + (SELECT count(*) FROM shard_coordinator.cluster_state WHERE cluster = 's2')}),
	'0', '... and no cluster s2 exists, neither live nor stored');

# --- max_members lowered ----------------------------------------------------
# Cluster big: m1..m8 join one at a time (shards 0..7); m1 leaves, so m8
# moves to shard 0; m9 joins (shard 7). Stored in join order: m2..m6 hold
# shards 1..5, m7 6, m8 0, m9 7.
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('big', heartbeat_interval => '1 hour',
	         reshard_interval => '0');
	SELECT shard_coordinator.configure(c, heartbeat_interval => '1 hour')
	  FROM unnest(ARRAY['c2', 'c3']) c;
});
# m joins; the cluster settles with n members, all active (the members
# acknowledging what they are asked to release).
sub join_one
{
	my ($m, $n) = @_;
	$node->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('big', '$m')");
	SCTest::settle($node, 'big', $n) or die "$m was not assigned";
	return;
}
join_one("m$_", $_) for 1 .. 8;
$node->safe_psql('postgres', q{SELECT shard_coordinator.leave('big', 'm1')});
ok(SCTest::wait_for_assignment($node, 'big', 'm2=1,m3=2,m4=3,m5=4,m6=5,m7=6,m8=0'),
	'm1 left: m8 moved to shard 0');
join_one('m9', 8);
ok(SCTest::wait_for_assignment($node, 'big', 'm2=1,m3=2,m4=3,m5=4,m6=5,m7=6,m8=0,m9=7'),
	'm9 joined with shard 7');

$node->stop;
$node->append_conf('postgresql.conf', "shard_coordinator.max_members = 5\n");
my $pos = SCTest::log_position($node);
$node->start;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 5 FROM shard_coordinator.members WHERE cluster = 'big'})
  or die 'the members were not loaded';
my $log = SCTest::log_since($node, $pos);
like($log, qr/WARNING:.*no room for stored member "m7" of cluster "big"/,
	'the log names m7, which does not fit');
like($log, qr/WARNING:.*no room for stored member "m8" of cluster "big"/, '... m8');
like($log, qr/WARNING:.*no room for stored member "m9" of cluster "big"/, '... and m9');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member, ',' ORDER BY member) FROM shard_coordinator.member_state
		 WHERE cluster = 'big'}),
	'm2,m3,m4,m5,m6', 'their rows are deleted');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || shard || '/' || num_shards, ',' ORDER BY member)
		  FROM shard_coordinator.pending_release
		 WHERE cluster = 'big' AND member IN ('m7', 'm8', 'm9')}),
	'm7=6/8,m8=0/8,m9=7/8',
	'... and what they were granted is a pending release');
ok(SCTest::wait_for_targets($node, 'big', 'm2=1,m3=2,m4=3,m5=4,m6=0'),
	'the cluster is consistent again: targets 0..4, the tables agree');
# The dropped members may work on until their promises end: m6 does not
# get m8's shard 0, and the others keep their shards at the old count.
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || coalesce(shard::text, '-') || '/' || num_shards,
		                  ',' ORDER BY member)
		  FROM shard_coordinator.members WHERE cluster = 'big'}),
	'm2=1/8,m3=2/8,m4=3/8,m5=4/8,m6=-/8',
	'... but m8\'s shard 0 is withheld, the others keep their grants of 8');
is( $node->safe_psql('postgres', q{
		SELECT handover_pending AND release_until_ok
		  FROM shard_coordinator.clusters,
		       LATERAL (SELECT bool_and(release_until IS NULL) AS release_until_ok
		                  FROM shard_coordinator.members WHERE cluster = 'big') r
		 WHERE cluster = 'big'}),
	't', '... a handover pending on the dropped members\' releases');
is( $node->safe_psql('postgres',
		q{SELECT num_shards FROM shard_coordinator.cluster_state WHERE cluster = 'big'}),
	'5', '... num_shards 5 in the table');

# A later reshard works (before the fix, it failed on the unique constraint
# for ever: m6 moving to shard 0 collided with m8's stale row).
$node->safe_psql('postgres', q{SELECT shard_coordinator.leave('big', 'm2')});
ok(SCTest::wait_for_targets($node, 'big', 'm3=2,m4=3,m5=1,m6=0'),
	'a later leave reshards');
$node->safe_psql('postgres', q{SELECT shard_coordinator.heartbeat('big', 'm10')});
ok(SCTest::wait_for_targets($node, 'big', 'm10=4,m3=2,m4=3,m5=1,m6=0'),
	'a later join reshards');

# --- max_clusters lowered -----------------------------------------------------
$node->stop;
$node->append_conf('postgresql.conf', "shard_coordinator.max_clusters = 2\n");
$pos = SCTest::log_position($node);
$node->start;
$node->poll_query_until('postgres',
	q{SELECT count(*) = 5 FROM shard_coordinator.members WHERE cluster = 'big'})
  or die 'the members were not loaded';
$log = SCTest::log_since($node, $pos);
like($log, qr/WARNING:.*no room for stored cluster "c3"/, 'the log names cluster c3, which does not fit');
like($log, qr/WARNING:.*no room for stored cluster "s1"/, '... and s1');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(cluster, ',' ORDER BY cluster) FROM shard_coordinator.clusters}),
	'big,c2', 'clusters big and c2 are loaded');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(cluster, ',' ORDER BY cluster) FROM shard_coordinator.cluster_state}),
	'big,c2,c3,s1', '... and the others stay stored');
$node->safe_psql('postgres', q{SELECT shard_coordinator.leave('big', 'm3')});
ok(SCTest::wait_for_targets($node, 'big', 'm10=2,m4=3,m5=1,m6=0'), 'big still reshards');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || shard || '/' || num_shards, ',' ORDER BY member)
		  FROM shard_coordinator.pending_release
		 WHERE cluster = 'big' AND member IN ('m7', 'm8', 'm9')}),
	'm7=6/8,m8=0/8,m9=7/8',
	'the dropped members\' releases are still pending (their lease: an hour)');

$node->stop;
done_testing();
