# A query cancel (pg_cancel_backend) of the background worker while its
# commit waits for the synchronous standby must not let it publish a step
# the standby never received: PostgreSQL ends such a wait with a WARNING and
# goes on as if replicated, so the members would be told of a step a
# promoted standby does not know, and it would grant the same work again
# without holding its grants. The worker ignores query cancels; the step
# goes out once the standby has it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $p = PostgreSQL::Test::Cluster->new('sync_cancel_primary');
$p->init(allows_streaming => 1);
$p->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n");
$p->start;
$p->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator;
	SELECT shard_coordinator.configure('x', heartbeat_interval => '1s',
	         grace_period => '20s', reshard_interval => '0');
});
$p->backup('b');
my $s = PostgreSQL::Test::Cluster->new('sync_cancel_standby');
$s->init_from_backup($p, 'b', has_streaming => 1);
$s->start;
$p->safe_psql('postgres',
	"ALTER SYSTEM SET synchronous_standby_names = '*'; SELECT pg_reload_conf();");
$p->poll_query_until('postgres',
	"SELECT sync_state = 'sync' FROM pg_stat_replication")
  or die 'the standby did not become synchronous';

$p->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('x', 'A', NULL, 1)");
$p->poll_query_until('postgres',
	"SELECT shard = 0 FROM shard_coordinator.heartbeat('x', 'A', NULL, 1)")
  or die 'A was not granted';
my $before = $p->safe_psql('postgres',
	"SELECT num_shards || ':' || epoch FROM shard_coordinator.heartbeat('x', 'A', NULL, 1)");
$p->wait_for_catchup($s);

# The standby stops receiving: synchronous commits wait.
$s->safe_psql('postgres',
	"ALTER SYSTEM SET primary_conninfo = ''; SELECT pg_reload_conf();");
$s->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_wal_receiver')
  or die 'the walreceiver did not stop';
$p->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('x', 'B', NULL, 2)");
ok( $p->poll_query_until('postgres',
		"SELECT wait_event = 'SyncRep' FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'"),
	"the worker's commit waits for the synchronous standby");

my $pos = -s $p->logfile;
$p->safe_psql('postgres',
	"SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'");
# A cancel acts within milliseconds; look for a second whether the step
# went out (a check that something does not happen: bounded).
my $after = $before;
for (1 .. 20)
{
	$after = $p->safe_psql('postgres',
		"SELECT num_shards || ':' || epoch FROM shard_coordinator.heartbeat('x', 'A', NULL, 1)");
	last if $after ne $before;
	usleep(50_000);
}
is($after, $before, 'after the cancel A is still told its old grant (the step is not published)');
is($p->safe_psql('postgres',
		"SELECT wait_event FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'"),
	'SyncRep', '... and the worker still waits for the standby');
unlike(slurp_file($p->logfile, $pos), qr/canceling wait for synchronous replication/,
	'no cancelled wait in the log');

# The standby comes back: the step goes out.
$s->safe_psql('postgres', "ALTER SYSTEM RESET primary_conninfo; SELECT pg_reload_conf();");
ok( $p->poll_query_until('postgres',
		"SELECT num_shards || ':' || epoch <> '$before' FROM shard_coordinator.heartbeat('x', 'A', NULL, 1)"),
	'once the standby has the step, A is told of it');
done_testing();
