# The background worker's memory stays flat while several clusters churn in
# the same cycles (members joining and leaving all the time).
#
# PostgreSQL 15 leaves a process in TopMemoryContext after it commits or
# aborts a transaction; whatever the rest of a cycle allocated there (the
# second and later clusters' snapshots and plans) would never be freed. The
# worker's memory is read with pg_log_backend_memory_contexts() (its
# "Grand total" line in the server log) after a warm-up and again after a
# long churn.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);

my $clusters = 5;
my $members = 40;

my $node = PostgreSQL::Test::Cluster->new('worker_memory');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n"
	  . "shard_coordinator.max_members = 2000\n");
$node->start;
$node->safe_psql('postgres', qq{
	CREATE EXTENSION shard_coordinator;
	SELECT shard_coordinator.configure('mem_' || i, heartbeat_interval => '1 hour',
	         reshard_interval => '0')
	  FROM generate_series(1, $clusters) i;
});

my $worker_pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'");
like($worker_pid, qr/^\d+$/, 'the background worker runs');

# Every cluster at once: half of the members join, the other half leave, and
# the other way round, as fast as the worker reshards.
my $churn_sql = qq{
	DO \$\$
	BEGIN
	  FOR round IN 1 .. 1000000 LOOP
	    PERFORM shard_coordinator.heartbeat('mem_' || c, 'm' || m)
	       FROM generate_series(1, $clusters) c, generate_series(1, $members) m
	      WHERE m % 2 = round % 2;
	    PERFORM shard_coordinator.leave('mem_' || c, 'm' || m)
	       FROM generate_series(1, $clusters) c, generate_series(1, $members) m
	      WHERE m % 2 <> round % 2;
	    PERFORM pg_sleep(0.02);
	  END LOOP;
	END \$\$};
my ($out, $err) = ('', '');
my $churn;

sub start_churn
{
	$churn = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres') . ' application_name=sc_churn', '-c', $churn_sql ],
		'<', \undef, '>', \$out, '2>', \$err);
	return;
}

# Stops the churn (its backend too, not only psql) and waits until the
# worker has nothing left to do: then its memory is what it keeps between
# cycles.
sub stop_churn
{
	$node->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sc_churn'");
	$churn->finish;
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM shard_coordinator.members
		 WHERE cluster LIKE 'mem_%' AND state NOT IN ('active', 'standby')})
	  or die 'the clusters do not settle';
	return;
}

# The epochs of all clusters, summed: grows with every reshard.
sub epochs
{
	return $node->safe_psql('postgres',
		"SELECT sum(epoch) FROM shard_coordinator.clusters WHERE cluster LIKE 'mem_%'");
}

# The worker's memory in bytes, from the "Grand total" line that
# pg_log_backend_memory_contexts() writes to the server log. The worker
# writes it at its next interrupt check, which may come in the middle of a
# transaction (whose contexts come and go): the smallest of five reports is
# the memory it keeps.
sub worker_memory_once
{
	my $offset = -s $node->logfile;
	$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($worker_pid)");
	my $deadline = time() + 60;
	while (time() < $deadline)
	{
		my $log = slurp_file($node->logfile, $offset);
		return $1 if $log =~ /Grand total: (\d+) bytes/;
		sleep(0.05);
	}
	die "no memory context report from the worker in the log";
}

sub worker_memory
{
	my @totals = sort { $a <=> $b } map { worker_memory_once() } 1 .. 5;
	return $totals[0];
}

# Warm-up: caches, plans and the cycle context reach their working size.
start_churn();
my $start_epochs = epochs();
my $deadline = time() + 60;
sleep(0.1) while time() < $deadline && epochs() < $start_epochs + 100;
stop_churn();
my $warm = worker_memory();
my $warm_epochs = epochs();
note "after warm-up: $warm bytes, epochs $warm_epochs";

# The churn proper.
start_churn();
$deadline = time() + 120;
sleep(0.1) while time() < $deadline && epochs() < $warm_epochs + 1000;
stop_churn();
my $end_epochs = epochs();
my $after = worker_memory();
note "after the churn: $after bytes, epochs $end_epochs";


cmp_ok($end_epochs - $warm_epochs, '>=', 1000,
	'the clusters resharded at least 1000 times during the measurement');
cmp_ok($after - $warm, '<', 256 * 1024,
	"the worker's memory stays flat: "
	  . sprintf('%.1f kB', ($after - $warm) / 1024)
	  . " more after " . ($end_epochs - $warm_epochs) . " reshards");

# And the worker is still healthy: everybody's leave is served.
$node->safe_psql('postgres', qq{
	SELECT shard_coordinator.leave('mem_' || c, 'm' || m)
	  FROM generate_series(1, $clusters) c, generate_series(1, $members) m});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM shard_coordinator.members WHERE cluster LIKE 'mem_%'})
  or die 'the members did not leave';

$node->stop;
done_testing();
