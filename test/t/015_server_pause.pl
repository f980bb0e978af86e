# A pause of the whole database server expires nobody who heartbeats as soon
# as the server answers again.
#
# Cluster p: heartbeat 1 s, grace 1 s; five members heartbeated every 100 ms
# by a driver (a backend of the same server, so it is paused and resumed
# with it). Every process of the server gets SIGSTOP, 5 s pass (well beyond
# every member's deadline), then SIGCONT. The background worker must see that
# heartbeats could not be served meanwhile and extend its waits by that
# stall: no member may expire and no shard may move. Three times; the
# worker is resumed 200 ms before the other processes (SIGCONT reaches the
# processes of a server one at a time; here the worst order, deliberately),
# so that it would judge every deadline before any heartbeat arrives.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $node = SCTest::new_node('server_pause');
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('p', heartbeat_interval => '1s',
	         grace_period => '1s', reshard_interval => '0');
	INSERT INTO public.alive SELECT 'p', 'm' || i FROM generate_series(1, 5) i;
});
my $driver = SCTest::start_driver($node, interval => 0.1);
# Settled: everybody granted, no handover pending (the driver acknowledges).
$node->poll_query_until('postgres', q{
	SELECT count(*) = 5 FROM shard_coordinator.members
	 WHERE cluster = 'p' AND state = 'active' AND shard IS NOT NULL}) and
$node->poll_query_until('postgres', q{
	SELECT NOT handover_pending FROM shard_coordinator.clusters WHERE cluster = 'p'})
  or die 'the members were not assigned';

# The postmaster and all its children.
sub server_pids
{
	my $pm = (split /\n/, slurp_file($node->data_dir . '/postmaster.pid'))[0];
	my @children = split /\s+/, `pgrep -P $pm`;
	return ($pm, grep { /^\d+$/ } @children);
}

my $assignment = q{
	SELECT (SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'p') || ' '
	       || string_agg(member || '=' || shard || '/' || state, ',' ORDER BY member)
	  FROM shard_coordinator.members WHERE cluster = 'p'};

for my $trial (1 .. 3)
{
	my $before = $node->safe_psql('postgres', $assignment);
	my $worker = SCTest::worker_pid($node);
	my @pids = server_pids();
	kill 'STOP', @pids;
	sleep(5);    # the fault itself: the server is frozen this long
	kill 'CONT', $worker;
	sleep(0.2);    # ... and the worker runs alone this long
	kill 'CONT', reverse @pids;

	# Once every member has heartbeated again, nothing may have moved; look
	# for 2 s more (the worker's expiry would come within milliseconds).
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 5 FROM shard_coordinator.members
		 WHERE cluster = 'p' AND last_heartbeat > now() - interval '200 ms'})
	  or die 'the members do not heartbeat again';
	my $after = $node->safe_psql('postgres', $assignment);
	my $until = time() + 2;
	while (time() < $until && $after eq $before)
	{
		sleep(0.05);
		$after = $node->safe_psql('postgres', $assignment);
	}
	is($after, $before, "trial $trial: no member expired, no shard moved (epoch and shards as before)");
}

SCTest::stop_driver($node, $driver);
$node->stop;
done_testing();
