# Death of the background worker.
#   SIGTERM: the worker exits cleanly and the postmaster starts a new one after
#     bgw_restart_time (1 s); no crash-restart of the server.
#   SIGKILL: the postmaster treats it as a crash and restarts every backend.
# Each time: nothing is lost (assignments, epochs and settings are identical
# afterwards, with no reshard), and coordination resumes (a leave, an expiry
# and a join reshard afterwards). Also: a join and a leave that arrive while
# no worker runs are picked up by the next one.
#
# Members are kept alive by a "driver": a plpgsql loop in a psql session of
# its own that heartbeats every 20 ms whoever is listed in the table
# public.alive; the test adds and removes rows to make members join and die.
# The members do no work: each heartbeat acknowledges the epoch the previous
# one returned, so exclusive handovers complete at the next beat.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);

my $node = PostgreSQL::Test::Cluster->new('worker_death');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n"
	  . "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator;
	CREATE TABLE public.alive (member text PRIMARY KEY);
	SELECT shard_coordinator.configure('w', heartbeat_interval => '500ms',
	         grace_period => '1500ms', reshard_interval => '0', max_shards => 8);
});

my ($driver, $driver_out, $driver_err) = (undef, '', '');

sub start_driver
{
	$driver = IPC::Run::start(
		[
			'psql', '-XAtq', '-d',
			$node->connstr('postgres') . ' application_name=sc_driver',
			'-v', 'ON_ERROR_STOP=1', '-c', q{
			DO $$
			DECLARE
			  seen jsonb := '{}';  -- member -> epoch its last heartbeat returned
			BEGIN
			  LOOP
			    SELECT coalesce(jsonb_object_agg(a.member, h.epoch), '{}') INTO seen
			      FROM public.alive a,
			           LATERAL shard_coordinator.heartbeat('w', a.member,
			                                               (seen ->> a.member)::bigint) h;
			    PERFORM pg_sleep(0.02);
			  END LOOP;
			END $$}
		],
		'<', \undef, '>', \$driver_out, '2>', \$driver_err);
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'sc_driver'")
	  or die "the driver did not start: $driver_err";
	return;
}

sub reap_driver
{
	my $deadline = time() + 30;
	while ($driver->pumpable && time() < $deadline)
	{
		$driver->pump_nb;
		sleep(0.01);
	}
	$driver->kill_kill if $driver->pumpable;
	$driver->finish;
	return;
}

my $worker_pid_query =
  "SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'";

# member=shard/epoch/state of everyone, from the live view.
sub live
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || coalesce(shard::text, '-') || '/' || epoch
		                  || '/' || state, ',' ORDER BY member)
		  FROM shard_coordinator.members WHERE cluster = 'w'});
}

# The same from the tables, with the cluster row.
sub stored
{
	return $node->safe_psql('postgres', q{
		SELECT (SELECT string_agg(member || '=' || coalesce(shard::text, '-') || '/' || epoch
		                          || '/' || state, ',' ORDER BY member)
		          FROM shard_coordinator.member_state WHERE cluster = 'w')
		       || ' ' || (SELECT format('epoch %s num_shards %s hb %s grace %s reshard %s max %s',
		                                epoch, num_shards, heartbeat_interval, grace_period,
		                                reshard_interval, max_shards)
		                    FROM shard_coordinator.cluster_state WHERE cluster = 'w')});
}

# Waits until the live view shows exactly this member=shard list, everyone
# active, and the tables agree.
sub wait_for_assignment
{
	my ($expected, $what) = @_;
	my $ok = $node->poll_query_until('postgres', qq{
		SELECT (SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		          FROM shard_coordinator.members
		         WHERE cluster = 'w' AND state = 'active') = '$expected'
		   AND (SELECT count(*) FROM shard_coordinator.members WHERE cluster = 'w')
		       = array_length(string_to_array('$expected', ','), 1)
		   AND (SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		          FROM shard_coordinator.member_state
		         WHERE cluster = 'w' AND state = 'active') = '$expected'
		   AND (SELECT num_shards FROM shard_coordinator.cluster_state WHERE cluster = 'w')
		       = array_length(string_to_array('$expected', ','), 1)});
	ok($ok, $what) or diag 'live: ' . live() . "\nstored: " . stored();
	return;
}

sub join_members
{
	$node->safe_psql('postgres',
		join('', map { "INSERT INTO public.alive VALUES ('$_');" } @_));
	return;
}

sub kill_members    # stop heartbeating (they expire)
{
	$node->safe_psql('postgres',
		join('', map { "DELETE FROM public.alive WHERE member = '$_';" } @_));
	return;
}

sub leave_members
{
	$node->safe_psql('postgres',
		join('', map {
			"DELETE FROM public.alive WHERE member = '$_';"
			  . "SELECT shard_coordinator.leave('w', '$_');"
		} @_));
	return;
}

sub log_position { return -s $node->logfile; }

sub log_since
{
	my ($pos) = @_;
	return slurp_file($node->logfile, $pos);
}

start_driver();
# One at a time, so that m1..m4 get shards 0..3.
for my $i (1 .. 4)
{
	join_members("m$i");
	$node->poll_query_until('postgres', qq{
		SELECT state = 'active' FROM shard_coordinator.members
		 WHERE cluster = 'w' AND member = 'm$i'})
	  or die "m$i was not assigned";
}
wait_for_assignment('m1=0,m2=1,m3=2,m4=3', 'm1..m4 joined');

# --- SIGTERM --------------------------------------------------------------
my ($live_before, $stored_before) = (live(), stored());
my $pid = $node->safe_psql('postgres', $worker_pid_query);
like($pid, qr/^\d+$/, 'the worker runs');
my $log_pos = log_position();
kill 'TERM', $pid;
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity "
		  . "WHERE backend_type = 'shard_coordinator' AND pid <> $pid"),
	'SIGTERM: a new worker starts');
# The new worker has loaded the tables once members are visible again.
$node->poll_query_until('postgres',
	"SELECT count(*) = 4 FROM shard_coordinator.members WHERE cluster = 'w'")
  or die 'the new worker did not load the state';
is(live(), $live_before, 'SIGTERM: the live assignment is identical');
is(stored(), $stored_before, 'SIGTERM: the tables are identical (no reshard)');
my $log = log_since($log_pos);
unlike($log, qr/terminated by signal|terminating any other active server processes/,
	'SIGTERM: no crash-restart of the server');
like($log, qr/shard_coordinator: background worker started/,
	'SIGTERM: the log shows the new worker');

leave_members('m2');
wait_for_assignment('m1=0,m3=2,m4=1', 'after SIGTERM: a leave reshards (m4 fills the hole)');
kill_members('m3');
wait_for_assignment('m1=0,m4=1', 'after SIGTERM: an expiry reshards');
join_members('m5');
wait_for_assignment('m1=0,m4=1,m5=2', 'after SIGTERM: a join reshards');

# --- SIGTERM, and a join and a leave while no worker runs ------------------
# In one statement: terminate the worker (SIGTERM), wait until it has gone,
# then m6 joins (a first heartbeat) and m1 leaves, before the next worker
# starts (bgw_restart_time = 1 s).
$pid = $node->safe_psql('postgres', $worker_pid_query);
my $gap = $node->safe_psql('postgres', qq{
	CREATE FUNCTION pg_temp.gap() RETURNS boolean LANGUAGE plpgsql AS \$\$
	DECLARE give_up timestamptz := clock_timestamp() + interval '30 s';
	BEGIN
	  PERFORM pg_terminate_backend($pid);
	  LOOP
	    PERFORM pg_stat_clear_snapshot();
	    EXIT WHEN NOT EXISTS (SELECT FROM pg_stat_activity
	                           WHERE backend_type = 'shard_coordinator');
	    IF clock_timestamp() > give_up THEN
	      RAISE EXCEPTION 'the worker did not exit';
	    END IF;
	    PERFORM pg_sleep(0.001);
	  END LOOP;
	  INSERT INTO public.alive VALUES ('m6');
	  PERFORM shard_coordinator.heartbeat('w', 'm6');
	  DELETE FROM public.alive WHERE member = 'm1';
	  PERFORM shard_coordinator.leave('w', 'm1');
	  PERFORM pg_stat_clear_snapshot();
	  RETURN NOT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'shard_coordinator');
	END \$\$;
	SELECT pg_temp.gap();});
# The window is about one second (bgw_restart_time) and the calls take
# milliseconds: if it was missed, this part tested nothing.
is($gap, 't', 'the join and the leave were made while no worker ran');
wait_for_assignment('m4=1,m5=2,m6=0',
	'a join and a leave while no worker runs are applied by the next worker');

# --- SIGKILL --------------------------------------------------------------
($live_before, $stored_before) = (live(), stored());
$pid = $node->safe_psql('postgres', $worker_pid_query);
$log_pos = log_position();
kill 'KILL', $pid;
reap_driver();    # its backend is terminated by the crash-restart
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity "
		  . "WHERE backend_type = 'shard_coordinator' AND pid <> $pid"),
	'SIGKILL: the server restarts with a new worker');
$log = log_since($log_pos);
like($log, qr/terminated by signal 9/, 'SIGKILL: the postmaster crash-restarted');
# The members heartbeat again (first heartbeats after the restart).
start_driver();
$node->poll_query_until('postgres', q{
	SELECT count(*) = 3 AND bool_and(last_heartbeat > now() - interval '1 s')
	  FROM shard_coordinator.members WHERE cluster = 'w'})
  or die 'the members are not back';
is(live(), $live_before, 'SIGKILL: the live assignment is identical');
is(stored(), $stored_before, 'SIGKILL: the tables are identical (no reshard)');

leave_members('m6');
wait_for_assignment('m4=1,m5=0', 'after SIGKILL: a leave reshards');
kill_members('m4');
wait_for_assignment('m5=0', 'after SIGKILL: an expiry reshards');
join_members('m7', 'm8');
wait_for_assignment('m5=0,m7=1,m8=2', 'after SIGKILL: joins reshard');
$node->safe_psql('postgres', "SELECT shard_coordinator.configure('w', max_shards => 2)");
ok( $node->poll_query_until('postgres', q{
		SELECT string_agg(member || '=' || coalesce(shard::text, state), ',' ORDER BY member)
		       = 'm5=0,m7=1,m8=standby'
		  FROM shard_coordinator.members WHERE cluster = 'w'}),
	'after SIGKILL: configure reshards (m8 becomes standby)');

# Stop the driver: its psql, then its backend.
$driver->kill_kill;
$driver->finish;
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	                           WHERE application_name = 'sc_driver') t})
  or die 'the driver backend does not go away';
$node->stop;
done_testing();
