# Helpers shared by the TAP tests of shard_coordinator (test/t/*.pl):
#
#   use FindBin; use lib "$FindBin::RealBin/lib"; use SCTest;
#
#   my $node = SCTest::new_node('name', 'shard_coordinator.max_members = 5');
#   my $driver = SCTest::start_driver($node, 'cluster', interval => 0.02);
#   SCTest::stop_driver($node, $driver);
#   my $pos = SCTest::log_position($node); ... SCTest::log_since($node, $pos);
#   SCTest::worker_pid($node);
#
# A "driver" is a psql session of its own running a plpgsql loop that
# heartbeats, every `interval` seconds, each member listed in the table
# public.alive (cluster, member); tests add and remove rows to make members
# join and die. Its application_name is sc_driver. Its members do no work:
# each heartbeat acknowledges (applied_epoch) the epoch the member's previous
# heartbeat returned, so exclusive handovers complete within a beat or two
# (ack => 0: never acknowledge; releases then wait for the leases).
package SCTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);

# A started node with the library preloaded, the extension created in
# database postgres, and the table public.alive for drivers.
sub new_node
{
	my ($name, @conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf',
		join("\n",
			"shared_preload_libraries = 'shard_coordinator'",
			"shard_coordinator.database = 'postgres'", @conf)
		  . "\n");
	$node->start;
	$node->safe_psql('postgres', q{
		CREATE EXTENSION shard_coordinator;
		CREATE TABLE public.alive (cluster text, member text, PRIMARY KEY (cluster, member));
	});
	return $node;
}

sub start_driver
{
	my ($node, %opts) = @_;
	my $interval = $opts{interval} // 0.02;
	my $ack = ($opts{ack} // 1) ? 'true' : 'false';
	my ($out, $err) = ('', '');
	my $driver = IPC::Run::start(
		[
			'psql', '-XAtq', '-d',
			$node->connstr('postgres') . ' application_name=sc_driver',
			'-v', 'ON_ERROR_STOP=1', '-c', qq{
			DO \$\$
			DECLARE
			  seen jsonb := '{}';  -- cluster/member -> epoch last returned
			BEGIN
			  LOOP
			    SELECT coalesce(jsonb_object_agg(a.cluster || '/' || a.member, h.epoch), '{}')
			      INTO seen
			      FROM public.alive a,
			           LATERAL shard_coordinator.heartbeat(a.cluster, a.member,
			             CASE WHEN $ack THEN (seen ->> (a.cluster || '/' || a.member))::bigint END) h;
			    PERFORM pg_sleep($interval);
			  END LOOP;
			END \$\$}
		],
		'<', \undef, '>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'sc_driver'")
	  or die "the driver did not start: $err";
	return $driver;
}

# A driver outside the server: a shell loop that feeds psql one heartbeat
# query for every member in public.alive every `interval` seconds, timed on
# the test's own clock (pg_sleep in a backend follows the server's wall
# clock, which some tests step). Each heartbeat acknowledges the epoch the
# live view shows for the member (it does no work). Stop it with
# stop_driver() as well.
sub start_client_driver
{
	my ($node, %opts) = @_;
	my $interval = $opts{interval} // 0.1;
	my ($out, $err) = ('', '');
	my $query = 'SELECT count(*) FROM public.alive a, '
	  . 'LATERAL shard_coordinator.heartbeat(a.cluster, a.member, '
	  . '(SELECT m.epoch FROM shard_coordinator.members m '
	  . 'WHERE m.cluster = a.cluster AND m.member = a.member)) h;';
	my $driver = IPC::Run::start(
		[
			'bash', '-c',
			# (the loop ends when psql does: echo fails on the closed pipe)
			"while echo \"$query\"; do sleep $interval; done | "
			  . "psql -XAtq -d '"
			  . $node->connstr('postgres')
			  . " application_name=sc_driver'"
		],
		'<', \undef, '>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'sc_driver'")
	  or die "the driver did not start: $err";
	return $driver;
}

# Stops the driver: its backend, then its psql.
sub stop_driver
{
	my ($node, $driver) = @_;
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		                           WHERE application_name = 'sc_driver') t})
	  or die 'the driver backend does not go away';
	$driver->kill_kill;
	$driver->finish;
	return;
}

sub worker_pid
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'");
}

sub log_position
{
	my ($node) = @_;
	return -s $node->logfile;
}

sub log_since
{
	my ($node, $pos) = @_;
	return slurp_file($node->logfile, $pos);
}

# member=shard/epoch/state of every member of cluster c, from the live view.
sub live
{
	my ($node, $c) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(member || '=' || coalesce(shard::text, '-') || '/' || epoch
		                  || '/' || state, ',' ORDER BY member)
		  FROM shard_coordinator.members WHERE cluster = '$c'});
}

# Heartbeats every member of cluster c that is not leaving, acknowledging
# the epoch the live view shows for it (members that do no work), until n
# members are active with their shards granted and no handover is pending.
# Returns true or false.
sub settle
{
	my ($node, $c, $n) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT count(*) FILTER (WHERE h.state = 'active' AND h.shard IS NOT NULL) = $n
		   AND NOT (SELECT handover_pending FROM shard_coordinator.clusters
		             WHERE cluster = '$c')
		  FROM shard_coordinator.members m,
		       LATERAL shard_coordinator.heartbeat(m.cluster, m.member, m.epoch, m.incarnation) h
		 WHERE m.cluster = '$c' AND m.state IN ('active', 'standby', 'pending')});
}

# Waits until the live view of cluster c shows exactly this member=shard
# list, everyone active, and the tables agree. Every poll heartbeats the
# members of the list that are asked to release something, acknowledging
# (they do no work). Returns true or false.
sub wait_for_assignment
{
	my ($node, $c, $expected) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT (SELECT count(shard_coordinator.heartbeat(cluster, member, epoch, incarnation))
		          FROM shard_coordinator.members
		         WHERE cluster = '$c' AND releasing IS NOT NULL
		           AND member = ANY (string_to_array(regexp_replace('$expected', '=[0-9]+', '', 'g'), ','))
		           AND state IN ('active', 'standby', 'pending')) >= 0
		   AND (SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		          FROM shard_coordinator.members
		         WHERE cluster = '$c' AND state = 'active') = '$expected'
		   AND (SELECT count(*) FROM shard_coordinator.members WHERE cluster = '$c')
		       = array_length(string_to_array('$expected', ','), 1)
		   AND (SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		          FROM shard_coordinator.member_state
		         WHERE cluster = '$c' AND state = 'active') = '$expected'});
}

# Like wait_for_assignment, but for the targets (target_shard): what the
# members are assigned, whether or not it has been granted yet.
sub wait_for_targets
{
	my ($node, $c, $expected) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT (SELECT count(shard_coordinator.heartbeat(cluster, member, epoch, incarnation))
		          FROM shard_coordinator.members
		         WHERE cluster = '$c' AND releasing IS NOT NULL
		           AND member = ANY (string_to_array(regexp_replace('$expected', '=[0-9]+', '', 'g'), ','))
		           AND state IN ('active', 'standby', 'pending')) >= 0
		   AND (SELECT string_agg(member || '=' || target_shard, ',' ORDER BY member)
		          FROM shard_coordinator.members
		         WHERE cluster = '$c' AND state = 'active') = '$expected'
		   AND (SELECT count(*) FROM shard_coordinator.members WHERE cluster = '$c')
		       = array_length(string_to_array('$expected', ','), 1)
		   AND (SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		          FROM shard_coordinator.member_state
		         WHERE cluster = '$c' AND state = 'active') = '$expected'});
}

1;
