# Durability of a reshard when the server runs with synchronous_commit = off
# (a common setting for throughput). The background worker publishes a
# reshard to shared memory and sends its NOTIFYs once it has committed; if
# that commit were asynchronous, a crash right after it could lose the
# reshard although members had already been told about it: the epoch would
# go back, a departed member would come back, and a later reshard would hand
# out the same epoch number for a different assignment (breaking fence()).
# So the worker's own commits must be synchronous whatever the server
# setting is.
#
# wal_writer_delay = 10 s keeps the WAL writer from flushing an asynchronous
# commit in the meantime (unless the reshard's WAL happens to fill a WAL page,
# which wakes it; full_page_writes = off keeps that WAL small). A correct
# worker passes every cycle whatever the timing; an asynchronous commit is
# lost in most cycles.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;

my $node = PostgreSQL::Test::Cluster->new('async_commit');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n"
	  . "synchronous_commit = off\n"
	  . "wal_writer_delay = 10s\n"
	  . "full_page_writes = off\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator;
	SELECT shard_coordinator.configure('c', heartbeat_interval => '10s',
	         grace_period => '1 min', reshard_interval => '0');
});
for my $i (1 .. 3)
{
	$node->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('c', 'm$i')");
	SCTest::settle($node, 'c', $i) or die "m$i was not assigned";
}

my $cycles = 4;
for my $cycle (1 .. $cycles)
{
	# Everything so far is on disk.
	$node->safe_psql('postgres', 'CHECKPOINT');
	my $before = $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.cluster_state WHERE cluster = 'c'");
	# A reshard: m3 leaves, or joins again.
	my $leaving = $cycle % 2 == 1;
	$node->safe_psql('postgres',
		$leaving
		? "SELECT shard_coordinator.leave('c', 'm3')"
		: "SELECT shard_coordinator.heartbeat('c', 'm3')");
	# Wait until it is published: members have been told (NOTIFY at commit,
	# shared memory after commit; heartbeats return it).
	$node->poll_query_until('postgres', qq{
		SELECT epoch > $before FROM shard_coordinator.clusters WHERE cluster = 'c'})
	  or die 'no reshard';
	my $told = $node->safe_psql('postgres', q{
		SELECT h.epoch || ' ' || h.num_shards FROM shard_coordinator.heartbeat('c', 'm1') h});
	my ($told_epoch, $told_n) = split / /, $told;

	$node->stop('immediate');
	$node->start;

	my $after = $node->safe_psql('postgres', q{
		SELECT h.epoch || ' ' || h.num_shards FROM shard_coordinator.heartbeat('c', 'm1') h});
	my ($after_epoch, $after_n) = split / /, $after;
	my $stored = $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.cluster_state WHERE cluster = 'c'");
	ok( $stored >= $told_epoch,
		"cycle $cycle: the stored epoch ($stored) is not behind the epoch members were told ($told_epoch)"
	);
	ok( $after_epoch >= $told_epoch && $after_n == $told_n,
		"cycle $cycle: after the crash m1's heartbeat returns epoch $after_epoch, num_shards $after_n "
		  . "(was told epoch $told_epoch, num_shards $told_n)");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM shard_coordinator.members WHERE cluster = 'c' AND member = 'm3'"),
		$leaving ? '0' : '1',
		"cycle $cycle: m3 is " . ($leaving ? 'still gone' : 'still there'));
	# Resynchronise for the next cycle whatever happened.
	$node->safe_psql('postgres',
		"SELECT shard_coordinator.heartbeat('c', m) FROM unnest(ARRAY['m1', 'm2'"
		  . ($leaving ? '' : ", 'm3'") . "]) m");
	$node->safe_psql('postgres', "SELECT shard_coordinator.leave('c', 'm3')") if $leaving;
	SCTest::settle($node, 'c', $leaving ? 2 : 3) or die 'the cluster did not settle';
}

$node->stop;
done_testing();
