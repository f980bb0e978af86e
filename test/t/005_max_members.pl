# Shared memory full: shard_coordinator.max_members = 5 and max_clusters = 3.
#   - the 6th member (in the same or in a new cluster) is refused with SQLSTATE
#     53400 and a hint naming shard_coordinator.max_members; the refused call
#     leaves nothing behind (no member, no cluster, no used slot);
#   - the existing members keep working (heartbeat, fence, views) and keep
#     their shards;
#   - once one leaves and has been removed, a new member can join;
#   - the 4th cluster is refused likewise, naming shard_coordinator.max_clusters.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;

my $node = PostgreSQL::Test::Cluster->new('max_members');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n"
	  . "shard_coordinator.max_members = 5\n"
	  . "shard_coordinator.max_clusters = 3\n");
$node->start;
# Long leases: the members are heartbeated between the steps only.
$node->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator;
	SELECT shard_coordinator.configure('c', heartbeat_interval => '10s',
	         grace_period => '1 min', reshard_interval => '0');
	-- Runs a statement; returns 'ok' or SQLSTATE | message | hint.
	CREATE FUNCTION public.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE st text; msg text; hint text;
	BEGIN
	  EXECUTE stmt;
	  RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
	  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
	                          hint = PG_EXCEPTION_HINT;
	  RETURN st || ' | ' || msg || ' | ' || hint;
	END $$;
});

is( $node->safe_psql('postgres', q{SHOW shard_coordinator.max_members}),
	'5', 'max_members is 5');

for my $i (1 .. 5)
{
	$node->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('c', 'm$i')");
	SCTest::settle($node, 'c', $i) or die "m$i was not assigned";
}
my $assignment_query = q{
	SELECT string_agg(member || '=' || shard || '/' || epoch, ',' ORDER BY member)
	  FROM shard_coordinator.members WHERE cluster = 'c'};
# A stored member's epoch: its row's, or the cluster's last change of
# num_shards if later.
my $stored_query = q{
	SELECT string_agg(m.member || '=' || m.shard || '/' || greatest(m.epoch, c.num_shards_epoch),
	                  ',' ORDER BY m.member)
	  FROM shard_coordinator.member_state m JOIN shard_coordinator.cluster_state c USING (cluster)
	 WHERE cluster = 'c'};
my $before = $node->safe_psql('postgres', $assignment_query);
like($before, qr/^m1=0\/\d+,m2=1\/\d+,m3=2\/\d+,m4=3\/\d+,m5=4\/\d+$/, 'five members hold shards 0..4');
is($node->safe_psql('postgres', $stored_query), $before, '... stored alike');

# The 6th member, in the same cluster and in a new one.
my $refused = $node->safe_psql('postgres',
	q{SELECT public.try($$SELECT shard_coordinator.heartbeat('c', 'm6')$$)});
like($refused, qr/^53400 \| /, 'the 6th member is refused with SQLSTATE 53400');
like($refused, qr/\| [^|]*shard_coordinator\.max_members[^|]*$/,
	'... with a hint naming shard_coordinator.max_members');
note $refused;
$refused = $node->safe_psql('postgres',
	q{SELECT public.try($$SELECT shard_coordinator.heartbeat('other', 'x')$$)});
like($refused, qr/^53400 \|.*shard_coordinator\.max_members/,
	'a 6th member in a new cluster is refused alike');
# Again and again: nothing accumulates.
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM generate_series(1, 50) i,
		       LATERAL public.try(format('SELECT shard_coordinator.heartbeat(%L, %L)',
		                                 CASE WHEN i % 2 = 0 THEN 'c' ELSE 'new' || i END,
		                                 'x' || i)) r
		 WHERE r LIKE '53400 |%'}),
	'50', '50 more refused registrations, all 53400');

is( $node->safe_psql('postgres', q{
		SELECT count(*) FILTER (WHERE cluster <> 'c') || '/' || count(*)
		  FROM shard_coordinator.members}),
	'0/5', 'no refused member is registered');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(cluster, ',') FROM (
		  SELECT cluster FROM shard_coordinator.clusters
		  UNION SELECT cluster FROM shard_coordinator.cluster_state) c}),
	'c', 'no cluster was created by a refused registration');
is( $node->safe_psql('postgres', q{
		SELECT members || '/' || pending FROM shard_coordinator.clusters WHERE cluster = 'c'}),
	'5/0', 'the clusters view counts 5 members, none pending');

# The existing members keep working.
is( $node->safe_psql('postgres', q{
		SELECT string_agg(m || '=' || h.state || ':' || h.shard, ',' ORDER BY m)
		  FROM unnest(ARRAY['m1', 'm2', 'm3', 'm4', 'm5']) AS m,
		       LATERAL shard_coordinator.heartbeat('c', m) AS h}),
	'm1=active:0,m2=active:1,m3=active:2,m4=active:3,m5=active:4',
	'the existing members still heartbeat and keep their shards');
is( $node->safe_psql('postgres', q{
		BEGIN;
		SELECT public.try(format('SELECT shard_coordinator.fence(%L, %L, %s)', 'c', 'm1',
		                         (SELECT epoch FROM shard_coordinator.heartbeat('c', 'm1'))));
		COMMIT;}),
	'ok', 'fence works for an existing member');
is($node->safe_psql('postgres', $assignment_query), $before, 'the live assignment is unchanged');
is($node->safe_psql('postgres', $stored_query), $before, 'the stored assignment is unchanged');

# One leaves; once it has been removed, a new member can join.
is($node->safe_psql('postgres', q{SELECT shard_coordinator.leave('c', 'm5')}),
	't', 'm5 leaves');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 4 FROM shard_coordinator.members WHERE cluster = 'c'}),
	'm5 is removed');
is( $node->safe_psql('postgres', q{SELECT state FROM shard_coordinator.heartbeat('c', 'm6')}),
	'pending', 'now m6 can join');
ok( SCTest::settle($node, 'c', 5)
	  && $node->safe_psql('postgres', q{
		SELECT state = 'active' AND shard = 4 FROM shard_coordinator.heartbeat('c', 'm6')}) eq 't',
	'm6 becomes active with the freed shard 4 (the others acknowledging)');
like( $node->safe_psql('postgres',
		q{SELECT public.try($$SELECT shard_coordinator.heartbeat('c', 'm7')$$)}),
	qr/^53400 \|/, 'and the 6th member is refused again');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		  FROM shard_coordinator.member_state WHERE cluster = 'c'}),
	'm1=0,m2=1,m3=2,m4=3,m6=4', 'the tables agree');

# max_clusters = 3: 'c' exists, two more can be created, the 4th is refused.
is( $node->safe_psql('postgres', q{
		SELECT public.try($$SELECT shard_coordinator.configure('c2')$$)
		       || ',' || public.try($$SELECT shard_coordinator.configure('c3')$$)}),
	'ok,ok', 'clusters c2 and c3 can be created (max_clusters = 3)');
$refused = $node->safe_psql('postgres',
	q{SELECT public.try($$SELECT shard_coordinator.configure('c4')$$)});
like($refused, qr/^53400 \|.*\| [^|]*shard_coordinator\.max_clusters[^|]*$/,
	'the 4th cluster is refused with 53400 and a hint naming shard_coordinator.max_clusters');
note $refused;
# A member leaves to make room, so that only the cluster limit applies.
$node->safe_psql('postgres', q{SELECT shard_coordinator.leave('c', 'm6')});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 4 FROM shard_coordinator.members WHERE cluster = 'c'})
  or die 'm6 was not removed';
like( $node->safe_psql('postgres',
		q{SELECT public.try($$SELECT shard_coordinator.heartbeat('c4', 'x')$$)}),
	qr/^53400 \|.*shard_coordinator\.max_clusters/,
	'a first heartbeat in a 4th cluster is refused alike');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(cluster, ',' ORDER BY cluster) FROM shard_coordinator.clusters}),
	'c,c2,c3', 'the clusters view shows c, c2, c3');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(m || '=' || h.state || ':' || h.shard, ',' ORDER BY m)
		  FROM unnest(ARRAY['m1', 'm2', 'm3', 'm4']) AS m,
		       LATERAL shard_coordinator.heartbeat('c', m) AS h}),
	'm1=active:0,m2=active:1,m3=active:2,m4=active:3',
	'the members of c still work');
is( $node->safe_psql('postgres', q{
		SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'}),
	'1', 'the background worker runs');
$node->stop;
done_testing();
