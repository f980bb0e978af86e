# A reshard held up by fence() goes before new fences: overlapping fences
# cannot starve it. And settings are stored while a fence is open.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;

my $node = PostgreSQL::Test::Cluster->new('fence');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION shard_coordinator');
$node->safe_psql('postgres',
	"SELECT shard_coordinator.configure('p', heartbeat_interval => '1h', "
	  . "grace_period => '1h', reshard_interval => '0')");
$node->safe_psql('postgres',
	"SELECT shard_coordinator.heartbeat('p', m) FROM unnest('{a,b,c}'::text[]) m");
SCTest::settle($node, 'p', 3) or die 'members were not assigned';

sub epoch_of
{
	my ($member) = @_;
	return $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.heartbeat('p', '$member')");
}
my $epoch_a = epoch_of('a');
my $epoch_b = epoch_of('b');
my $cluster_epoch = $node->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'p'");

# s1 fences a and keeps its transaction open.
my $s1 = $node->background_psql('postgres');
$s1->query_safe("BEGIN");
$s1->query_safe("SELECT shard_coordinator.fence('p', 'a', $epoch_a)");

# c leaves: the reshard is due, but the fence holds it.
$node->safe_psql('postgres', "SELECT shard_coordinator.leave('p', 'c')");
$node->poll_query_until('postgres',
	"SELECT fenced FROM shard_coordinator.clusters WHERE cluster = 'p'")
  or die 'the worker did not find the cluster fenced';
pass('the clusters view shows the reshard held up by the fence');

# Settings are stored meanwhile (configure waits for that).
$node->safe_psql('postgres',
	"SELECT shard_coordinator.configure('p', grace_period => '2h')");
is( $node->safe_psql('postgres',
		"SELECT grace_period FROM shard_coordinator.cluster_state WHERE cluster = 'p'"),
	'02:00:00',
	'configure stores settings while a fence is open');

# s2's new fence fails at once while the reshard is held up: the reshard
# goes first, and the fence never waits where the deadlock detector cannot
# see it.
my $s2 = $node->background_psql('postgres', on_error_stop => 0);
$s2->query_safe("BEGIN");
my ($out, $failed) = $s2->query(
	"SELECT shard_coordinator.fence('p', 'b', $epoch_b)");
ok($failed, 'a new fence fails at once while a reshard is held up');
like($s2->{stderr}, qr/a reshard of the cluster is pending/,
	'... saying that a reshard is pending');
$s2->{stderr} = '';
$s2->query_safe("ROLLBACK");
is( $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'p'"),
	$cluster_epoch,
	'... and the reshard has not happened yet');

# s1 ends: the reshard runs first; then b fences with its new epoch.
$s1->query_safe("COMMIT");
$node->poll_query_until('postgres',
	"SELECT epoch > $cluster_epoch FROM shard_coordinator.clusters WHERE cluster = 'p'")
  or die 'no reshard after the fence ended';
pass('the reshard ran once the first fence ended');
$s2->query_safe("BEGIN");
$s2->query_safe(q{
	SELECT shard_coordinator.fence('p', 'b', epoch)
	  FROM shard_coordinator.heartbeat('p', 'b')});
pass('b fences with the epoch of its next heartbeat');
$s2->query_safe("COMMIT");
$s1->quit;
$s2->quit;
is( $node->safe_psql('postgres',
		"SELECT fenced FROM shard_coordinator.clusters WHERE cluster = 'p'"),
	'f', 'nothing is held up any more');

$node->stop;
done_testing();
