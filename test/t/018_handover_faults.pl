# Exclusive handovers under faults of one server (issue 12): a member A
# holds every key, B joins; the server revokes the keys of B's shard from A
# (A's row shows its smaller grant and release_within, at a new epoch) and
# grants them to B only once A acknowledged, or its promise ended.
#
#   0. A control: under handover => 'immediate' B gets its keys while A's
#      promise lasts, and the checker below reports it (so it can fail).
#      And max_lease, the "longest lease ever promised" that every deadline
#      after a restart waits: the configured lease.
#   1. The background worker is killed (pg_terminate_backend) after the
#      revocation was published, before A acknowledged. A keeps its
#      promise; an acknowledgement after the new worker loaded releases at
#      once (cluster wka); without one (clusters wkn, and wks in slot mode)
#      B is granted one full lease after the new worker's start, never
#      before A's promise ended.
#   2. Crash restart (immediate shutdown) in the same place: the pending
#      releases survive (pending_release rows), the release deadline is one
#      full lease from the new worker's start (clusters crn, crs in slot
#      mode: B granted then, not before), and an acknowledgement after the
#      restart releases at once (cluster cra).
#   3. In-flight acknowledgement: a session holds LOCK TABLE member_state,
#      so the worker's store of the step that revokes A's keys blocks; A
#      acknowledges that step's epoch meanwhile. The acknowledgement counts
#      only once the step is published (cluster ifa: B is then granted
#      without another heartbeat of A); when the store fails after the
#      worker's lock_timeout (1 s), the held acknowledgement is discarded and
#      the step redone at the same epoch (cluster iff: B stays withheld
#      until A acknowledges again). The same when the worker is killed
#      while its store waits (cluster ifk): that attempt never commits,
#      and the acknowledgement held for it must not count for the step the
#      next worker redoes.
#
# The members are simulated protocol clients (lib/SCFleet.pm) that record
# every row they receive; "no key granted twice" compares every member's
# promises (keys, from receiving a row to the end of its promise, cut short
# by its acknowledgements) across the faults.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use SCFleet;
use Time::HiRes qw(sleep);

my $LEASE = 5;    # heartbeat_interval 500 ms + grace_period 4500 ms
# Clusters made by first heartbeats or by configure() start from these
# (see "max_lease" below for why it matters here).
my $node = SCTest::new_node('handover_faults', 'restart_after_crash = on',
	"shard_coordinator.heartbeat_interval = '500ms'",
	"shard_coordinator.grace_period = '4500ms'");
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure(c, heartbeat_interval => '500ms',
	         grace_period => '4500ms', reshard_interval => '0')
	  FROM unnest(ARRAY['wka', 'wkn', 'wks', 'cra', 'crn', 'crs']) c;
	SELECT shard_coordinator.configure(c, slots => ARRAY(SELECT generate_series(1, 12)))
	  FROM unnest(ARRAY['wks', 'crs']) c;
	SELECT shard_coordinator.configure(c, heartbeat_interval => '10s',
	         grace_period => '50s', reshard_interval => '0')
	  FROM unnest(ARRAY['ifa', 'iff', 'ifk']) c;
});
my $fleet = SCFleet->new($node);
my $now = \&SCFleet::now;

# After a restart every release waits one full lease, "the longest ever
# promised" (cluster_state.max_lease), from the worker's start. Here that
# is the configured 5 s.
is( $fleet->sql(q{
		SELECT string_agg(DISTINCT max_lease::text, ',') FROM shard_coordinator.cluster_state
		 WHERE cluster IN ('wka', 'wkn', 'wks', 'cra', 'crn', 'crs')}),
	'00:00:05', 'max_lease is the configured lease, 5 s');
# A cluster made by configure() with a shorter lease than the settings'
# defaults has never promised more than its own lease either.
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('ml', heartbeat_interval => '200ms',
	         grace_period => '800ms', reshard_interval => '0')});
is( $fleet->sql(q{SELECT max_lease FROM shard_coordinator.cluster_state WHERE cluster = 'ml'}),
	'00:00:01',
	'a cluster made by configure() with a 1 s lease has max_lease 1 s (nothing was promised for longer)');

sub worker_pid
{
	return $fleet->sql(
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'");
}

sub cluster_epoch
{
	my ($c) = @_;
	return $fleet->sql("SELECT epoch FROM shard_coordinator.clusters WHERE cluster = '$c'");
}

sub pending_releases
{
	my ($c) = @_;
	return $fleet->sql(
		"SELECT count(*) FROM shard_coordinator.pending_release WHERE cluster = '$c'");
}

# ---- 0. The checker can fail ---------------------------------------------
# handover => 'immediate' grants B its shard in the step that revokes it
# from A, while A's promise lasts: the record shows that overlap.
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('ctl', reshard_interval => '0', handover => 'immediate')});
$fleet->add('ctl', 'A');
$fleet->poll('A granted in ctl', sub { $fleet->granted('ctl', 'A') }) or die;
$fleet->set_ack('ctl', 'A', 'hold');
$fleet->add('ctl', 'B');
$fleet->poll('B granted in ctl', sub { $fleet->granted('ctl', 'B') }) or die;
my @control = $fleet->overlaps('ctl');
ok(@control == 1 && $control[0] =~ /^ctl\/A and ctl\/B both on \d+ keys/,
	'control: an immediate handover shows as keys promised to two members at once')
  or diag(join("\n", @control));
$fleet->leave('ctl', $_) for ('A', 'B');

# ---- 1. The worker killed mid-handover -----------------------------------
$fleet->revoke_from_holder('wka', 'wkn', [ 'wks', 12 ]);
my $a_promise = $fleet->promise_end_of('wka', 'A', { map { $_ => 1 } @{ $fleet->moving('wka') } });
is(join('/', map { pending_releases($_) } ('wka', 'wkn', 'wks')), '1/1/1',
	'the revocations are stored (pending_release)');
my $pid = worker_pid();
my $t_kill = $now->();
$fleet->sql("SELECT pg_terminate_backend($pid)");
$fleet->event('worker terminated');
ok( $fleet->poll('a new worker',
		sub { my $p = worker_pid(); $p ne '' && $p ne $pid }),
	'a new worker starts');
ok( $fleet->poll('the new worker to load the state', sub {
			$fleet->sql(q{
				SELECT count(*) = 3 FROM shard_coordinator.members
				 WHERE cluster IN ('wka', 'wkn', 'wks') AND member = 'A'
				   AND releasing IS NOT NULL AND release_until IS NOT NULL})
		}),
	'the new worker has A releasing in every cluster');
ok(!grep({ $fleet->granted($_, 'B') } ('wka', 'wkn', 'wks')),
	'B is not granted after the worker restart (A has not acknowledged)');

# wka: A acknowledges now; B is granted before A's promise would have
# ended, so it was the acknowledgement that released the keys.
$fleet->set_ack('wka', 'A', 'auto');
my $t_ack = $now->();
ok($fleet->poll('B granted in wka', sub { $fleet->granted('wka', 'B') }),
	'wka: B is granted once A acknowledges');
my $row = $fleet->check_b_grant('wka');
ok($row && $row->{t_recv} < $a_promise,
	sprintf('wka: ... at once (%.2f s after the acknowledgement, before A\'s promise ended)',
		$row ? $row->{t_recv} - $t_ack : -1));

# wkn (plain mode), wks (slot mode): A never acknowledges but goes on
# heartbeating; its hold ends one full lease after the new worker's start
# (which came after the kill).
ok( $fleet->poll('B granted in wkn and wks',
		sub { $fleet->granted('wkn', 'B') && $fleet->granted('wks', 'B') }, 30),
	'wkn, wks: B is granted without an acknowledgement');
for my $c ('wkn', 'wks')
{
	$row = $fleet->check_b_grant($c);
	ok($row && $row->{t_recv} >= $t_kill + $LEASE,
		sprintf('%s: ... not before one full lease from the new worker\'s start '
			  . '(%.2f s after the kill; lease %d s)',
			$c, $row ? $row->{t_recv} - $t_kill : -1, $LEASE));
	ok($row && $row->{t_recv} < $t_kill + $LEASE + 10, "$c: ... and not long after");
}
for my $c ('wka', 'wkn', 'wks')
{
	$fleet->check_no_overlap("worker killed, $c", $c);
	$fleet->check_epochs_monotonic("worker killed, $c", $c);
	$fleet->leave($c, $_) for ('A', 'B');
}

# ---- 2. Crash restart mid-handover ----------------------------------------
$fleet->revoke_from_holder('cra', 'crn', [ 'crs', 12 ]);
is(join('/', map { pending_releases($_) } ('cra', 'crn', 'crs')), '1/1/1',
	'the revocations are stored (pending_release)');
$fleet->disconnect;
$fleet->event('immediate shutdown');
$node->stop('immediate');
my $t_start = $now->();
$node->start;
$fleet->connect_to($node);
is(join('/', map { pending_releases($_) } ('cra', 'crn', 'crs')), '1/1/1',
	'after the crash the pending releases are still stored');
ok( $fleet->poll('the worker to load the state', sub {
			$fleet->sql(q{
				SELECT count(*) = 3 FROM shard_coordinator.members
				 WHERE cluster IN ('cra', 'crn', 'crs') AND member = 'A'
				   AND releasing IS NOT NULL AND release_until IS NOT NULL})
		}),
	'after the crash A is releasing in every cluster');
for my $c ('crn', 'crs')
{
	my $deadline = $fleet->sql(qq{
		SELECT round(extract(epoch FROM m.release_until - a.backend_start) * 1000)
		  FROM shard_coordinator.members m,
		       pg_stat_activity a
		 WHERE m.cluster = '$c' AND m.member = 'A'
		   AND a.backend_type = 'shard_coordinator'}) / 1000.0;
	ok($deadline >= $LEASE - 0.05 && $deadline <= $LEASE + 1,
		"$c: the release deadline is one full lease from the worker's start ($deadline s)");
}
ok(!grep({ $fleet->granted($_, 'B') } ('cra', 'crn', 'crs')),
	'B is not granted after the restart (A has not acknowledged)');

# cra: the acknowledgement after the restart releases at once.
$fleet->set_ack('cra', 'A', 'auto');
$t_ack = $now->();
ok($fleet->poll('B granted in cra', sub { $fleet->granted('cra', 'B') }),
	'cra: B is granted once A acknowledges after the restart');
$row = $fleet->check_b_grant('cra');
ok($row && $row->{t_recv} < $t_start + $LEASE,
	sprintf('cra: ... at once (%.2f s after the acknowledgement, before the deadline)',
		$row ? $row->{t_recv} - $t_ack : -1));

# crn (plain mode), crs (slot mode): no acknowledgement: one full lease
# from the worker's start (which came after $t_start).
ok( $fleet->poll('B granted in crn and crs',
		sub { $fleet->granted('crn', 'B') && $fleet->granted('crs', 'B') }, 30),
	'crn, crs: B is granted without an acknowledgement');
for my $c ('crn', 'crs')
{
	$row = $fleet->check_b_grant($c);
	ok($row && $row->{t_recv} >= $t_start + $LEASE,
		sprintf('%s: ... not before one full lease from the worker\'s start '
			  . '(%.2f s after the start)', $c, $row ? $row->{t_recv} - $t_start : -1));
	ok($row && $row->{t_recv} < $t_start + $LEASE + 10, "$c: ... and not long after");
}
is(join('/', map { pending_releases($_) } ('cra', 'crn', 'crs')), '0/0/0',
	'the pending releases are gone');
for my $c ('cra', 'crn', 'crs')
{
	$fleet->check_no_overlap("crash restart, $c", $c);
	$fleet->check_epochs_monotonic("crash restart, $c", $c);
	$fleet->leave($c, $_) for ('A', 'B');
}

# ---- 3. An acknowledgement of the step being stored -----------------------
# In the locking session (it alone can read the views while it holds the
# lock): B joins, and once the worker waits for the lock, A acknowledges
# the epoch of the step being stored. Returns what A's row and the view
# said, and how long after the worker blocked that was.
$node->safe_psql('postgres', q{
	CREATE FUNCTION public.ack_in_flight(c text, inc_a bigint, inc_b bigint, ack bigint)
	RETURNS text LANGUAGE plpgsql AS $$
	DECLARE
	  give_up timestamptz := clock_timestamp() + interval '30 s';
	  blocked_at timestamptz;
	  h record;
	  waiting boolean;
	BEGIN
	  PERFORM shard_coordinator.heartbeat(c, 'B', NULL, inc_b);
	  LOOP
	    EXIT WHEN EXISTS (SELECT FROM pg_locks
	                       WHERE NOT granted
	                         AND relation = 'shard_coordinator.member_state'::regclass);
	    IF clock_timestamp() > give_up THEN
	      RAISE EXCEPTION 'the worker never waited for the lock';
	    END IF;
	    PERFORM pg_sleep(0.001);
	  END LOOP;
	  blocked_at := clock_timestamp();
	  SELECT * INTO h FROM shard_coordinator.heartbeat(c, 'A', ack, inc_a);
	  waiting := EXISTS (SELECT FROM pg_locks
	                      WHERE NOT granted
	                        AND relation = 'shard_coordinator.member_state'::regclass);
	  RETURN concat_ws(' ', h.acknowledged_epoch,
	    (SELECT acknowledged_epoch FROM shard_coordinator.members
	      WHERE cluster = c AND member = 'A'),
	    (SELECT epoch FROM shard_coordinator.clusters WHERE cluster = c),
	    waiting, round(extract(epoch FROM clock_timestamp() - blocked_at) * 1000));
	END $$;
});
my $locker = $node->background_psql('postgres', on_error_stop => 0);
$locker->set_query_timer_restart;

# 3a. ifa: the lock is let go within the lock_timeout: the step is
# published, and the acknowledgement it held counts then.
$fleet->add('ifa', 'A');
$fleet->add('ifa', 'B', alive => 0);
$fleet->poll('A granted in ifa', sub { $fleet->granted('ifa', 'A') }) or die;
$fleet->set_alive('ifa', 'A', 0);
my $e = cluster_epoch('ifa');
my $pos = SCTest::log_position($node);
my $t_sent = $now->();
my $out = $locker->query_safe(
	"BEGIN; LOCK TABLE shard_coordinator.member_state; "
	  . "SELECT public.ack_in_flight('ifa', " . $fleet->incarnation('ifa', 'A') . ', '
	  . $fleet->incarnation('ifa', 'B') . ', ' . ($e + 1) . '); COMMIT;');
my ($row_ack, $view_ack, $epoch_then, $waiting, $ms) = split / /, $out;
note "ifa: A acknowledged epoch " . ($e + 1) . " while it was stored: $out";
$fleet->acknowledged_outside('ifa', 'A', $t_sent, SCFleet::keyset(0, 2));
ok($row_ack < $e + 1 && $view_ack < $e + 1 && $epoch_then == $e,
	"ifa: an acknowledgement of the step being stored does not count before it is published "
	  . "(row $row_ack, view $view_ack, cluster epoch $epoch_then)");
is($waiting, 't', 'ifa: ... the worker was still waiting for the lock');
$fleet->set_alive('ifa', 'B', 1);
ok($fleet->poll('B granted in ifa', sub { $fleet->granted('ifa', 'B') }, 30),
	'ifa: once the step is published, the held acknowledgement releases: B is granted '
	  . 'without another heartbeat of A');
is($fleet->sql(q{SELECT acknowledged_epoch FROM shard_coordinator.members
                  WHERE cluster = 'ifa' AND member = 'A'}),
	$e + 1, "ifa: A's acknowledged epoch is the step's");
is($fleet->first_grant('ifa', 'B')->{epoch}, $e + 2, 'ifa: B is granted at the next epoch');
unlike(SCTest::log_since($node, $pos), qr/reshard of cluster "ifa" failed/,
	'ifa: the step did not fail (the lock was let go in time: '
	  . ($ms // '?') . ' ms after the worker blocked)');

# 3b. iff: the store fails after the worker's lock_timeout; the
# acknowledgement it held is discarded; the step is redone.
$fleet->add('iff', 'A');
$fleet->add('iff', 'B', alive => 0);
$fleet->poll('A granted in iff', sub { $fleet->granted('iff', 'A') }) or die;
$fleet->set_alive('iff', 'A', 0);
$e = cluster_epoch('iff');
$pos = SCTest::log_position($node);
$locker->query_safe('BEGIN; LOCK TABLE shard_coordinator.member_state;');
my $t_blocked = $now->();
$fleet->acknowledged_outside('iff', 'A', $t_blocked, SCFleet::keyset(0, 2));
$out = $locker->query_safe(
	"SELECT public.ack_in_flight('iff', " . $fleet->incarnation('iff', 'A') . ', '
	  . $fleet->incarnation('iff', 'B') . ', ' . ($e + 1) . ')');
($row_ack, $view_ack, $epoch_then, $waiting) = split / /, $out;
ok($row_ack < $e + 1 && $view_ack < $e + 1 && $epoch_then == $e,
	"iff: the acknowledgement of the step being stored does not count yet ($out)");
my $failed = '';
while ($now->() < $t_blocked + 30)
{
	$failed = SCTest::log_since($node, $pos);
	last if $failed =~ /reshard of cluster "iff" failed.*lock timeout/;
	sleep(0.02);
}
my $t_failed = $now->();
like($failed, qr/reshard of cluster "iff" failed.*lock timeout/,
	'iff: the store fails on the lock timeout');
ok($t_failed - $t_blocked >= 0.9 && $t_failed - $t_blocked < 10,
	sprintf('iff: ... after the worker\'s lock_timeout of 1 s (%.2f s)', $t_failed - $t_blocked));
$out = $locker->query_safe(q{
	SELECT acknowledged_epoch FROM shard_coordinator.members
	 WHERE cluster = 'iff' AND member = 'A'});
ok($out < $e + 1, "iff: after the failure A's acknowledgement still does not count ($out)");
$locker->query_safe('ROLLBACK');
$fleet->set_alive('iff', 'B', 1);
ok( $fleet->poll('the step redone', sub { cluster_epoch('iff') >= $e + 1 }, 30),
	'iff: the step is redone once the lock is gone');
# Let the worker look again (grant steps follow releases at once) while B
# heartbeats and A does not.
$fleet->run_for(1.5);
is(cluster_epoch('iff'), $e + 1, 'iff: ... at the same epoch, and no grant step followed');
ok(!$fleet->granted('iff', 'B'),
	'iff: B is not granted: the acknowledgement held for the failed store was discarded');
is( $fleet->sql(q{
		SELECT (acknowledged_epoch < releasing_epoch)::text || ' ' || (releasing IS NOT NULL)::text
		  FROM (SELECT acknowledged_epoch, release_epoch AS releasing_epoch, releasing
		          FROM shard_coordinator.members WHERE cluster = 'iff' AND member = 'A') m}),
	'true true', "iff: A still has to release (its acknowledgement is below the revocation)");
$fleet->set_alive('iff', 'A', 1);
ok($fleet->poll('B granted in iff', sub { $fleet->granted('iff', 'B') }, 30),
	'iff: once A acknowledges the redone step, B is granted');

# 3c. ifk: the worker is killed while its store waits for the lock (the
# step never commits, like a failed one); the next worker loads the tables
# and redoes the step at the same epoch. The acknowledgement held for the
# killed attempt must not count for the redone step either.
$fleet->add('ifk', 'A');
$fleet->add('ifk', 'B', alive => 0);
$fleet->poll('A granted in ifk', sub { $fleet->granted('ifk', 'A') }) or die;
$fleet->set_alive('ifk', 'A', 0);
$e = cluster_epoch('ifk');
$pid = worker_pid();
$pos = SCTest::log_position($node);
$t_blocked = $now->();
$fleet->acknowledged_outside('ifk', 'A', $t_blocked, SCFleet::keyset(0, 2));
$out = $locker->query_safe(
	"BEGIN; LOCK TABLE shard_coordinator.member_state; "
	  . "SELECT public.ack_in_flight('ifk', " . $fleet->incarnation('ifk', 'A') . ', '
	  . $fleet->incarnation('ifk', 'B') . ', ' . ($e + 1) . '); '
	  . "SELECT pg_terminate_backend($pid);");
($row_ack, $view_ack, $epoch_then, $waiting) = split /[ \n]/, $out;
ok($row_ack < $e + 1 && $view_ack < $e + 1 && $epoch_then == $e && $waiting eq 't',
	"ifk: the acknowledgement of the step being stored does not count yet ($out)");
$fleet->event('worker terminated while its store waits for the lock');
ok( $fleet->poll('the worker to exit',
		sub { $fleet->sql("SELECT count(*) FROM pg_stat_activity WHERE pid = $pid") eq '0' }),
	'ifk: the worker exits while its store waits');
$locker->query_safe('ROLLBACK');
unlike(SCTest::log_since($node, $pos), qr/reshard of cluster "ifk" failed/,
	'ifk: ... before its lock_timeout (the step did not fail by itself)');
$fleet->set_alive('ifk', 'B', 1);
ok( $fleet->poll('the step redone by the next worker', sub {
			my $p = worker_pid();
			$p ne '' && $p ne $pid && cluster_epoch('ifk') >= $e + 1;
		}, 30),
	'ifk: the next worker redoes the step');
$fleet->run_for(1.5);
is(cluster_epoch('ifk'), $e + 1, 'ifk: ... at the same epoch, and no grant step followed');
my $ifk_members = q{
	SELECT string_agg(format('%s: shard %s of %s, epoch %s, acknowledged %s, releasing %s at %s',
	                         member, shard, num_shards, epoch, acknowledged_epoch,
	                         releasing, release_epoch), '; ' ORDER BY member)
	  FROM shard_coordinator.members WHERE cluster = 'ifk'};
ok(!$fleet->granted('ifk', 'B'),
	'ifk: B is not granted: the acknowledgement held for the killed attempt was discarded')
  or diag('members: ' . $fleet->sql($ifk_members) . "\n" . $fleet->history('ifk'));
is( $fleet->sql(q{
		SELECT (coalesce(acknowledged_epoch, 0) < release_epoch) IS TRUE
		  FROM shard_coordinator.members WHERE cluster = 'ifk' AND member = 'A'}),
	't', "ifk: A still has to release (its acknowledgement is below the revocation)");
$fleet->set_alive('ifk', 'A', 1);
ok($fleet->poll('B granted in ifk', sub { $fleet->granted('ifk', 'B') }, 30),
	'ifk: once A acknowledges the redone step, B is granted');
for my $c ('ifa', 'iff', 'ifk')
{
	$fleet->check_no_overlap("acknowledgement in flight, $c", $c);
	$fleet->check_epochs_monotonic("acknowledgement in flight, $c", $c);
}
$locker->quit;

$fleet->disconnect;
$node->stop;
done_testing();
