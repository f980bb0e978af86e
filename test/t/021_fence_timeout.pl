# configure(fence_timeout): a fence() transaction that holds up a reshard
# longer than the cluster's fence_timeout is cancelled, and one that is idle
# (a cancel does nothing to it) terminated after twice that; the reshard
# then goes on and the log says why. Without a timeout it waits as before.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;

my $node = PostgreSQL::Test::Cluster->new('fence_timeout');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION shard_coordinator');
$node->safe_psql('postgres',
	"SELECT shard_coordinator.configure('ft', heartbeat_interval => '1h', "
	  . "grace_period => '1h', reshard_interval => '0', fence_timeout => '1s')");
is( $node->safe_psql('postgres',
		"SELECT fence_timeout FROM shard_coordinator.clusters WHERE cluster = 'ft'"),
	'00:00:01', 'the clusters view shows the fence_timeout');
$node->safe_psql('postgres',
	"SELECT shard_coordinator.heartbeat('ft', m) FROM unnest('{a,b,c}'::text[]) m");
SCTest::settle($node, 'ft', 3) or die 'members were not assigned';

sub cluster_epoch
{
	return $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'ft'");
}

# 1. A fence in a transaction left idle: cancelled after 1 s (no effect on
# an idle session), terminated after 2 s; then the reshard runs.
my $epoch_a = $node->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.heartbeat('ft', 'a')");
my $s1 = $node->background_psql('postgres', on_error_stop => 0);
$s1->query_safe("BEGIN");
$s1->query_safe("SELECT shard_coordinator.fence('ft', 'a', $epoch_a)");
my $s1_pid = $s1->query_safe("SELECT pg_backend_pid()");
my $before = cluster_epoch();
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT shard_coordinator.leave('ft', 'c')");
$node->poll_query_until('postgres',
	"SELECT fenced FROM shard_coordinator.clusters WHERE cluster = 'ft'")
  or die 'the worker did not find the cluster fenced';
pass('the reshard is held up by the idle fence');
$node->poll_query_until('postgres',
	"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $s1_pid)")
  or die 'the idle fence holder was not terminated';
pass('the idle fence holder was terminated');
$node->poll_query_until('postgres',
	"SELECT epoch > $before FROM shard_coordinator.clusters WHERE cluster = 'ft'")
  or die 'no reshard after the holder went';
pass('... and the reshard ran');
my $log = slurp_file($node->logfile, $log_offset);
like($log, qr/cancelling the query of process $s1_pid: its fence\(\) has held up a reshard of cluster "ft"/,
	'the log shows the cancel first');
like($log, qr/terminating process $s1_pid: its fence\(\) has held up a reshard of cluster "ft"/,
	'... then the termination');
$s1->quit;

# 2. A fence whose transaction runs a long query: the cancel ends it.
SCTest::settle($node, 'ft', 2) or die 'the cluster did not settle';
my $epoch_b = $node->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.heartbeat('ft', 'b')");
my $s2 = $node->background_psql('postgres', on_error_stop => 0);
$s2->query_safe("BEGIN");
$s2->query_safe("SELECT shard_coordinator.fence('ft', 'b', $epoch_b)");
my $s2_pid = $s2->query_safe("SELECT pg_backend_pid()");
$s2->query_until(qr/sleeping/, "\\echo sleeping\nSELECT pg_sleep(60);\n");
$before = cluster_epoch();
$node->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('ft', 'd')");
$node->poll_query_until('postgres',
	"SELECT epoch > $before FROM shard_coordinator.clusters WHERE cluster = 'ft'")
  or die 'no reshard after the cancel';
pass('a busy fence holder is cancelled and the reshard runs');
ok( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $s2_pid") == 1,
	'... the cancelled session itself lives on');
$s2->quit;

# 3. Without a fence_timeout, a fence holds the reshard as long as it likes.
$node->safe_psql('postgres',
	"SELECT shard_coordinator.configure('ft', fence_timeout => '0')");
SCTest::settle($node, 'ft', 3) or die 'the cluster did not settle';
my $epoch_d = $node->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.heartbeat('ft', 'd')");
my $s3 = $node->background_psql('postgres');
$s3->query_safe("BEGIN");
$s3->query_safe("SELECT shard_coordinator.fence('ft', 'd', $epoch_d)");
$before = cluster_epoch();
$node->safe_psql('postgres', "SELECT shard_coordinator.leave('ft', 'b')");
$node->poll_query_until('postgres',
	"SELECT fenced FROM shard_coordinator.clusters WHERE cluster = 'ft'")
  or die 'the worker did not find the cluster fenced';
# Well past what fence_timeout was (the worker retries every 10 ms).
$node->safe_psql('postgres', "SELECT pg_sleep(2.5)");
is(cluster_epoch(), $before, 'without a fence_timeout the fence still holds the reshard');
$s3->query_safe("COMMIT");
$node->poll_query_until('postgres',
	"SELECT epoch > $before FROM shard_coordinator.clusters WHERE cluster = 'ft'")
  or die 'no reshard after the fence ended';
pass('... until its transaction ends');
$s3->quit;

$node->stop;
done_testing();
