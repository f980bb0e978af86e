# Restarts, crash recovery, a streaming standby and its promotion, and the
# install-time checks (no preload, wrong database).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;

my $preload = "shared_preload_libraries = 'shard_coordinator'\n"
  . "shard_coordinator.database = 'postgres'\n"
  . "restart_after_crash = on\n";

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', $preload);
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION shard_coordinator');
$primary->safe_psql('postgres',
	"SELECT shard_coordinator.configure('c', heartbeat_interval => '1s', "
	  . "grace_period => '5s', reshard_interval => '0')");

sub heartbeat
{
	my ($node, $member) = @_;
	return $node->safe_psql('postgres',
		"SELECT state, shard, num_shards, epoch "
		  . "FROM shard_coordinator.heartbeat('c', '$member')");
}

sub assignment
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(member || '=' || coalesce(shard::text, '-') || '/' "
		  . "|| epoch, ',' ORDER BY member) FROM shard_coordinator.members "
		  . "WHERE cluster = 'c'");
}

heartbeat($primary, $_) for qw(m1 m2 m3);
SCTest::settle($primary, 'c', 3) or die "members were not assigned";
my $before = assignment($primary);
like($before, qr/^m1=0\/\d+,m2=1\/\d+,m3=2\/\d+$/,
	'members joining one at a time get 0, 1, 2');

# Clean restart: the first heartbeat returns the stored assignment.
$primary->restart;
is(heartbeat($primary, 'm2'), 'active|1|3|' . ($before =~ /m2=1\/(\d+)/)[0],
	'first heartbeat after a restart returns the stored assignment');
heartbeat($primary, $_) for qw(m1 m3);
is(assignment($primary), $before, 'a restart reshuffles nobody');

# Crash: immediate stop, then start (crash recovery).
$primary->stop('immediate');
$primary->start;
heartbeat($primary, $_) for qw(m3 m1 m2);
is(assignment($primary), $before, 'crash recovery reshuffles nobody');

# The worker killed alone: the postmaster restarts everything.
my $worker_pid = $primary->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'");
ok($worker_pid =~ /^\d+$/, 'the background worker runs');
kill 'KILL', $worker_pid;
$primary->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity "
	  . "WHERE backend_type = 'shard_coordinator' AND pid <> $worker_pid")
  or die "the worker did not come back";
heartbeat($primary, $_) for qw(m1 m2 m3);
is(assignment($primary), $before, 'after SIGKILL of the worker nobody moves');

# A streaming standby.
$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

my ($rc, $out, $err) = $standby->psql('postgres',
	"SELECT * FROM shard_coordinator.heartbeat('c', 'm1')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/25006/, 'heartbeat on a standby fails with 25006');
like($err, qr/primary/, '... with a hint to use the primary');
($rc, $out, $err) = $standby->psql('postgres',
	"SELECT shard_coordinator.leave('c', 'm1')",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/25006/, 'leave on a standby fails with 25006');
($rc, $out, $err) = $standby->psql('postgres',
	"SELECT shard_coordinator.configure('c', max_shards => 2)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/25006/, 'configure on a standby fails with 25006');
is( $standby->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity "
		  . "WHERE backend_type = 'shard_coordinator'"),
	'0',
	'the worker does not run during recovery');
is(assignment($standby), $before,
	'the standby shows the replicated assignment');

# Promotion: same members keep the same shards, no reshard.
my $epoch_before = $primary->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.cluster_state WHERE cluster = 'c'");
$primary->stop('immediate');
$standby->promote;
heartbeat($standby, $_) for qw(m1 m2 m3);
is(assignment($standby), $before, 'after promotion the same members keep the same shards');
# The epochs go on in the promoted server's timeline's range (timeline 2:
# from 1 << 32 on), above anything the old primary could have published; no
# reshard happened (the epoch is the one just below that range).
is( $standby->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'c'"),
	(1 << 32) - 1,
	'... without a reshard; epochs continue in the new timeline\'s range');
ok($epoch_before < (1 << 32) - 1, '... above the old primary\'s');
# And it coordinates: a leave reshards on the new primary.
$standby->safe_psql('postgres', "SELECT shard_coordinator.leave('c', 'm1')");
SCTest::settle($standby, 'c', 2) or die "no reshard after promotion";
$standby->poll_query_until('postgres',
	"SELECT string_agg(member || '=' || shard, ',' ORDER BY member) = 'm2=1,m3=0' "
	  . "FROM shard_coordinator.members WHERE cluster = 'c'")
  or die "no reshard after promotion";
pass('the promoted server reshards');
$standby->stop;

# Install-time checks.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
($rc, $out, $err) = $plain->psql('postgres', 'CREATE EXTENSION shard_coordinator');
like($err, qr/shared_preload_libraries/,
	'CREATE EXTENSION without preload fails naming shared_preload_libraries');
$plain->stop;

$primary->start;
$primary->safe_psql('postgres', 'CREATE DATABASE other');
($rc, $out, $err) = $primary->psql('other', 'CREATE EXTENSION shard_coordinator');
like($err, qr/shard_coordinator\.database/,
	'CREATE EXTENSION in another database names shard_coordinator.database');
$primary->stop;

done_testing();
