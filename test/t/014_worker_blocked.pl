# A reshard that cannot complete never holds up coordination for good:
#
#   - a write blocked on a row lock times out (the worker's lock_timeout),
#     is logged and retried, and other clusters reshard meanwhile;
#   - a worker killed in the middle of a reshard (here: while blocked) leaves
#     nothing half-done behind: the next worker redoes the reshard, and the
#     member that was leaving is removed and can heartbeat again;
#   - a write that fails in one cluster (a trigger raises) does not stop the
#     reshards of the others.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = SCTest::new_node('worker_blocked');
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure(c, heartbeat_interval => '500ms',
	         grace_period => '1500ms', reshard_interval => '0')
	  FROM unnest(ARRAY['k', 'other', 'bad', 'g1', 'g2', 'g3', 'g4', 'g5', 'g6']) c;
	INSERT INTO public.alive VALUES ('k', 'm1'), ('k', 'm2'), ('k', 'm3'), ('k', 'm4');
});
my $driver = SCTest::start_driver($node);
ok(SCTest::wait_for_assignment($node, 'k', 'm1=0,m2=1,m3=2,m4=3')
	  || SCTest::wait_for_assignment($node, 'k',
		$node->safe_psql('postgres', q{
			SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
			  FROM shard_coordinator.members WHERE cluster = 'k'})),
	'four members of k are assigned');
my $before = SCTest::live($node, 'k');
note "k: $before";

# --- A blocked write times out and is retried; other clusters go on -------
my $locker = $node->background_psql('postgres');
$locker->query_safe(q{
	BEGIN;
	SELECT count(*) FROM (SELECT FROM shard_coordinator.member_state
	                        WHERE cluster = 'k' FOR UPDATE) locked});
my $pos = SCTest::log_position($node);
$node->safe_psql('postgres', q{
	DELETE FROM public.alive WHERE cluster = 'k' AND member = 'm4';
	SELECT shard_coordinator.leave('k', 'm4')});
ok( $node->poll_query_until('postgres', q{
		SELECT wait_event_type = 'Lock' FROM pg_stat_activity
		 WHERE backend_type = 'shard_coordinator'}),
	"the worker's reshard of k waits for the row lock");

$node->safe_psql('postgres', q{INSERT INTO public.alive VALUES ('other', 'o1')});
ok( $node->poll_query_until('postgres', q{
		SELECT state = 'active' FROM shard_coordinator.members
		 WHERE cluster = 'other' AND member = 'o1'}),
	'another cluster reshards while k is blocked');
ok( $node->poll_query_until('postgres', q{
		SELECT state = 'leaving' FROM shard_coordinator.members
		 WHERE cluster = 'k' AND member = 'm4'}),
	'... and m4 is still leaving');
my $deadline = time() + 60;
my $log = '';
while (time() < $deadline)
{
	$log = SCTest::log_since($node, $pos);
	last if $log =~ /shard_coordinator: reshard of cluster "k" failed.*lock timeout/;
	sleep(0.05);
}
like($log, qr/shard_coordinator: reshard of cluster "k" failed.*lock timeout/,
	'the blocked write was logged as a lock timeout');

# --- The worker dies in the middle of the reshard --------------------------
ok( $node->poll_query_until('postgres', q{
		SELECT wait_event_type = 'Lock' FROM pg_stat_activity
		 WHERE backend_type = 'shard_coordinator'}),
	'the worker is back in the reshard of k, waiting for the lock');
my $pid = SCTest::worker_pid($node);
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
  or die 'the worker did not exit';
$locker->query_safe('ROLLBACK');
$locker->quit;

ok(SCTest::wait_for_assignment($node, 'k', 'm1=0,m2=1,m3=2'),
	'the next worker redoes the reshard: m4 is removed')
  or diag SCTest::live($node, 'k');
my $row = $node->safe_psql('postgres', q{
	SELECT state FROM shard_coordinator.heartbeat('k', 'm4')});
is($row, 'pending', 'm4 can heartbeat again (it registers anew)');
$node->safe_psql('postgres', q{SELECT shard_coordinator.leave('k', 'm4')});
ok(SCTest::wait_for_assignment($node, 'k', 'm1=0,m2=1,m3=2'), '... and leave again');

# --- A write that fails in one cluster --------------------------------------
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.refuse_bad() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
	  IF NEW.cluster = 'bad' THEN
	    RAISE EXCEPTION 'refusing a write of cluster bad';
	  END IF;
	  RETURN NEW;
	END $$;
	CREATE TRIGGER refuse_bad BEFORE INSERT OR UPDATE ON shard_coordinator.member_state
	  FOR EACH ROW EXECUTE FUNCTION public.refuse_bad();
	INSERT INTO public.alive VALUES ('bad', 'b1');
});
$pos = SCTest::log_position($node);
$deadline = time() + 60;
while (time() < $deadline)
{
	last if SCTest::log_since($node, $pos) =~ /refusing a write of cluster bad/;
	sleep(0.05);
}
like(SCTest::log_since($node, $pos), qr/refusing a write of cluster bad/,
	'the reshard of cluster bad fails');
$node->safe_psql('postgres', q{
	INSERT INTO public.alive SELECT 'g' || i, 'x' FROM generate_series(1, 6) i});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 6 FROM shard_coordinator.members
		 WHERE cluster LIKE 'g_' AND state = 'active'}),
	'six other clusters reshard while cluster bad keeps failing')
  or diag $node->safe_psql('postgres', q{
		SELECT string_agg(cluster || ':' || state, ',') FROM shard_coordinator.members
		 WHERE cluster LIKE 'g_'});
is( $node->safe_psql('postgres', q{
		SELECT state FROM shard_coordinator.members WHERE cluster = 'bad'}),
	'pending', '... and b1 is still pending');
$node->safe_psql('postgres', q{DROP TRIGGER refuse_bad ON shard_coordinator.member_state});
ok( $node->poll_query_until('postgres', q{
		SELECT state = 'active' FROM shard_coordinator.members WHERE cluster = 'bad'}),
	'once the write works again, cluster bad reshards');

SCTest::stop_driver($node, $driver);
$node->stop;
done_testing();
