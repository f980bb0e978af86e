# A reshard held up by fence() goes before new fences: overlapping fences
# cannot starve it. And settings are stored while a fence is open.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

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
$node->poll_query_until('postgres',
	"SELECT count(*) = 3 FROM shard_coordinator.members "
	  . "WHERE cluster = 'p' AND state = 'active'")
  or die 'members were not assigned';

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

# s2's new fence must wait for the held-up reshard.
my $s2 = $node->background_psql('postgres', on_error_stop => 0);
$s2->query_safe("BEGIN");
$s2->{stdin} .= "SELECT shard_coordinator.fence('p', 'b', $epoch_b);\n"
  . "\\echo s2-done\n";
$s2->{run}->pump_nb();
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE query LIKE '%fence(''p'', ''b''%' AND wait_event_type = 'Extension'")
  or die 'the second fence did not wait';
pass('a new fence waits while a reshard is held up');
is( $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'p'"),
	$cluster_epoch,
	'... and the reshard has not happened yet');

# s1 ends: the reshard runs first, then s2's fence finds b's assignment
# changed (num_shards went from 3 to 2).
$s1->query_safe("COMMIT");
$node->poll_query_until('postgres',
	"SELECT epoch > $cluster_epoch FROM shard_coordinator.clusters WHERE cluster = 'p'")
  or die 'no reshard after the fence ended';
pass('the reshard ran once the first fence ended');
pump_until($s2->{run}, $s2->{timeout}, \$s2->{stdout}, qr/s2-done/);
like($s2->{stderr}, qr/no longer current/,
	'the waiting fence then fails: its assignment changed');
$s2->query("ROLLBACK");
$s1->quit;
$s2->quit;
is( $node->safe_psql('postgres',
		"SELECT fenced FROM shard_coordinator.clusters WHERE cluster = 'p'"),
	'f', 'nothing is held up any more');

$node->stop;
done_testing();
