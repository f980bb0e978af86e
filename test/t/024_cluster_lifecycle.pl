# The life of a cluster (README, "Operations"): drop_cluster() tells the
# members they are removed, keeps the cluster (and refuses it with SC004)
# while a holder's promise is live, then frees its name, shared memory and
# rows, also across a restart; a cluster made by a first heartbeat goes by
# itself once empty for shard_coordinator.empty_cluster_timeout, one made
# by configure() stays.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;

my $node = SCTest::new_node('lifecycle',
	'shard_coordinator.max_clusters = 3',
	'shard_coordinator.empty_cluster_timeout = 1s');

sub sq { return $node->safe_psql('postgres', $_[0]); }

# psql's stderr of a statement that must fail.
sub fails
{
	my ($sql) = @_;
	my ($rc, $out, $err) = $node->psql('postgres',
		"\\set VERBOSITY verbose\n$sql");
	return $rc == 0 ? '' : $err;
}

sub exists_cluster
{
	return sq("SELECT count(*) FROM shard_coordinator.clusters WHERE cluster = '$_[0]'");
}

sub stored_rows
{
	my ($c) = @_;
	return sq("SELECT (SELECT count(*) FROM shard_coordinator.cluster_state WHERE cluster = '$c')"
		  . " + (SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = '$c')"
		  . " + (SELECT count(*) FROM shard_coordinator.pending_release WHERE cluster = '$c')");
}

# 1. Dropping a cluster whose member holds work: a 10 s promise.
sq("SELECT shard_coordinator.configure('d', heartbeat_interval => '5s', "
	  . "grace_period => '5s', reshard_interval => '0')");
sq("SELECT shard_coordinator.heartbeat('d', 'a', NULL, 11)");
sq("SELECT shard_coordinator.heartbeat('d', 'b', NULL, 12)");
SCTest::settle($node, 'd', 2) or die 'the members were not assigned';
my $old_epoch = sq("SELECT epoch FROM shard_coordinator.heartbeat('d', 'a', NULL, 11)");
my $listener = $node->background_psql('postgres');
$listener->query_safe(q{LISTEN "} . sq("SELECT shard_coordinator.channel('d', 'a')") . q{"});
my $pos = SCTest::log_position($node);

like(fails("SELECT shard_coordinator.drop_cluster('nosuch')"),
	qr/42704.*cluster "nosuch" does not exist/s, 'an unknown cluster: 42704');
sq("SELECT shard_coordinator.drop_cluster('d')");
is(sq("SELECT dropping FROM shard_coordinator.clusters WHERE cluster = 'd'"), 't',
	'the clusters view shows it dropping while its holder\'s promise is live');
like(fails("SELECT shard_coordinator.heartbeat('d', 'a', NULL, 11)"),
	qr/SC004.*cannot heartbeat in cluster "d": it is being dropped/s,
	'the holder\'s next heartbeat: SC004');
like(fails("SELECT shard_coordinator.heartbeat('d', 'c')"),
	qr/SC004/, 'a new member: SC004');
like(fails("SELECT shard_coordinator.configure('d', max_shards => 3)"),
	qr/SC004.*cannot configure cluster "d"/s, 'configure(): SC004');
like(fails("SELECT shard_coordinator.freeze('d')"), qr/SC004/, 'freeze(): SC004');
sq("SELECT shard_coordinator.drop_cluster('d')");
pass('a second drop_cluster() is harmless');
is(sq("SELECT count(*) FROM shard_coordinator.members WHERE cluster = 'd'"), '0',
	'its members are removed at once');
# psql prints notifications it received after the next query's result.
my $got = $listener->query_safe('SELECT 1');
like($got . $listener->{stderr}, qr/"state":"removed"/, 'the holder was told "removed"');
$listener->quit;

$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM shard_coordinator.clusters WHERE cluster = 'd')")
  or die 'the dropped cluster was not removed';
pass('the cluster is removed once the promise ended');
is(stored_rows('d'), '0', 'its rows are deleted');
like(SCTest::log_since($node, $pos), qr/cluster "d" removed \(dropped\)/, 'the log says so');
sq("SELECT shard_coordinator.heartbeat('d', 'a', NULL, 13)");
SCTest::settle($node, 'd', 1) or die 'the cluster made anew did not settle';
cmp_ok(sq("SELECT epoch FROM shard_coordinator.heartbeat('d', 'a', NULL, 13)"), '>', $old_epoch,
	'a cluster made anew under the name starts above its old epochs');

# 2. Its shared memory is freed: max_clusters = 3.
sq("SELECT shard_coordinator.configure('x')");
sq("SELECT shard_coordinator.heartbeat('x', 'm')");
sq("SELECT shard_coordinator.configure('c2', reshard_interval => '0')");
like(fails("SELECT shard_coordinator.heartbeat('y', 'm')"),
	qr/53400.*all 3 cluster slots are in use/s, 'all cluster slots in use');
sq("SELECT shard_coordinator.leave('x', 'm')");
sq("SELECT shard_coordinator.drop_cluster('x')");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM shard_coordinator.clusters WHERE cluster = 'x')")
  or die 'x was not removed';
sq("SELECT shard_coordinator.heartbeat('y', 'm')");
pass('after a drop its slot takes another cluster');
is(stored_rows('x'), '0', 'x left no rows');

# 3. Empty clusters: one made by a first heartbeat goes by itself, one made
# by configure() stays. c2 becomes empty first, y after it: when y is gone,
# c2 has been empty longer than the timeout.
sq("SELECT shard_coordinator.heartbeat('c2', 'm')");
SCTest::settle($node, 'c2', 1) or die 'c2 did not settle';
sq("SELECT shard_coordinator.leave('c2', 'm')");
$node->poll_query_until('postgres',
	"SELECT members = 0 FROM shard_coordinator.clusters WHERE cluster = 'c2'")
  or die 'c2 did not become empty';
$pos = SCTest::log_position($node);
sq("SELECT shard_coordinator.leave('y', 'm')");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM shard_coordinator.clusters WHERE cluster = 'y')")
  or die 'the empty cluster y was not removed';
pass('an empty cluster made by a heartbeat is removed by itself');
like(SCTest::log_since($node, $pos), qr/cluster "y" removed \(empty\)/, 'the log says so');
is(exists_cluster('c2'), '1', 'one made by configure() stays');
is(stored_rows('y'), '0', 'y left no rows');

# 0 turns the removal off.
$node->append_conf('postgresql.conf', "shard_coordinator.empty_cluster_timeout = 0\n");
$node->reload;
$node->poll_query_until('postgres',
	"SELECT setting = '0' FROM pg_settings WHERE name = 'shard_coordinator.empty_cluster_timeout'")
  or die 'the setting did not change';
sq("SELECT shard_coordinator.heartbeat('z', 'm')");
SCTest::settle($node, 'z', 1) or die 'z did not settle';
sq("SELECT shard_coordinator.leave('z', 'm')");

# 4. A drop survives a restart: the holder's work stays held for the
# longest lease from the start, then the cluster goes.
sq("SELECT shard_coordinator.leave('d', 'a', 13)");
sq("SELECT shard_coordinator.drop_cluster('c2')");
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM shard_coordinator.clusters WHERE cluster = 'c2')")
  or die 'c2 was not removed';
sq("SELECT shard_coordinator.configure('r', heartbeat_interval => '5s', "
	  . "grace_period => '5s', reshard_interval => '0')");
sq("SELECT shard_coordinator.heartbeat('r', 'a', NULL, 21)");
SCTest::settle($node, 'r', 1) or die 'r did not settle';
sq("SELECT shard_coordinator.drop_cluster('r')");
$node->restart;
$node->poll_query_until('postgres', 'SELECT shard_coordinator._is_live()')
  or die 'the worker did not load';
# The holder's work is held for the longest lease (10 s) from the start:
# the cluster is still there, still dropping.
like(fails("SELECT shard_coordinator.heartbeat('r', 'b')"), qr/SC004/,
	'after a restart the dropped cluster is still refused while its holder\'s work is held');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM shard_coordinator.cluster_state WHERE cluster = 'r')")
  or die 'the dropped cluster did not go after the restart';
pass('the drop completes after the restart');
is(exists_cluster('z'), '1', 'with empty_cluster_timeout = 0 an empty cluster stays');

done_testing();
