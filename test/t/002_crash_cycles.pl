# Crash cycles: the server is crashed at random moments while members join,
# leave and expire, at least 20 times, in three ways:
#   immediate  pg_ctl stop -m immediate, then start (crash recovery)
#   pm_kill    SIGKILL of the postmaster, wait for its children to go, start
#   bk_kill    SIGKILL of one backend (the background worker or the driver's
#              backend): the postmaster reinitialises by itself
#              (restart_after_crash = on)
# After each restart:
#   - the safety invariant holds on the tables and on the live view: in each
#     cluster the active shards are exactly 0 .. num_shards-1, one member each
#     (checked before each crash on the live view too);
#   - every member that keeps heartbeating keeps its shard (its first
#     heartbeat after the restart returns it);
#   - no cluster epoch and no epoch of a stable member went back (compared
#     with the highest seen in the tables or shared memory before the crash).
#
# Membership is driven by a plpgsql loop in a psql session of its own (the
# "driver"): stable members heartbeat every 20 ms; churn members join, leave
# gracefully or just stop heartbeating (and expire). The driver dies with the
# server and is started again after each restart. Its members do no work:
# each heartbeat acknowledges the epoch the live view shows for the member,
# so that exclusive handovers complete at the next beat.
#
# SC_SEED=<n> reproduces the crash schedule (the seed is printed);
# SC_CRASH_CYCLES=<n> changes the number of cycles (default 22).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);

my $seed = length($ENV{SC_SEED} // '') ? $ENV{SC_SEED} : (time() ^ $$) % 1000000;
srand($seed);
note "seed $seed (SC_SEED=$seed reproduces the crash schedule)";
my $cycles = length($ENV{SC_CRASH_CYCLES} // '') ? $ENV{SC_CRASH_CYCLES} : 22;
my $t_start = time();

my $node = PostgreSQL::Test::Cluster->new('crash_cycles');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n"
	  . "restart_after_crash = on\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION shard_coordinator');

# Cluster a: no cap, immediate reshards. Cluster b: a cap of 4 (so there are
# standbys) and a reshard gate. Both expire a member 3 s after its last
# heartbeat: short enough for expiries to happen during the test, long enough
# for the stable members to heartbeat again after a restart even on a loaded
# machine.
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('a', heartbeat_interval => '500ms',
	         grace_period => '2500ms', reshard_interval => '0');
	SELECT shard_coordinator.configure('b', heartbeat_interval => '1s',
	         grace_period => '2s', reshard_interval => '200ms', max_shards => 4);
});

my @stable = (['a', 'a_s0'], ['a', 'a_s1'], ['a', 'a_s2'], ['b', 'b_s0'], ['b', 'b_s1']);
my $stable_values = join(', ', map { "('$_->[0]', '$_->[1]')" } @stable);

# Stable members join one at a time, so they hold the lowest shards; churn
# members only ever get shards above them, so with stickiness a stable member
# never has a reason to move.
for my $i (0 .. $#stable)
{
	my $so_far = join(', ', map { "($_, '$stable[$_][0]', '$stable[$_][1]')" } 0 .. $i);
	$node->poll_query_until('postgres', qq{
		SELECT bool_and(h.state = 'active' AND h.shard IS NOT NULL) FILTER (WHERE s.i = $i)
		  FROM (VALUES $so_far) AS s(i, c, m),
		       LATERAL shard_coordinator.heartbeat(s.c, s.m, (SELECT v.epoch FROM shard_coordinator.members v WHERE v.cluster = s.c AND v.member = s.m)) AS h})
	  or die "stable member $stable[$i][1] was not assigned";
}

# The driver: one psql running a loop until the server dies under it.
my $driver_sql = qq{
DO \$driver\$
DECLARE
  alive_a text[] := '{}';
  alive_b text[] := '{}';
  c text; m text;
BEGIN
  PERFORM setseed(random() * 2 - 1);
  LOOP
    PERFORM shard_coordinator.heartbeat(s.c, s.m, (SELECT v.epoch FROM shard_coordinator.members v WHERE v.cluster = s.c AND v.member = s.m))
       FROM (VALUES $stable_values) AS s(c, m);
    PERFORM shard_coordinator.heartbeat('a', x, (SELECT v.epoch FROM shard_coordinator.members v WHERE v.cluster = 'a' AND v.member = x)) FROM unnest(alive_a) AS x;
    PERFORM shard_coordinator.heartbeat('b', x, (SELECT v.epoch FROM shard_coordinator.members v WHERE v.cluster = 'b' AND v.member = x)) FROM unnest(alive_b) AS x;
    IF random() < 0.5 THEN
      c := CASE WHEN random() < 0.5 THEN 'a' ELSE 'b' END;
      m := c || '_c' || floor(random() * 8)::int;
      IF m = ANY (alive_a || alive_b) THEN
        -- gone: half of them gracefully, the others just stop (and expire)
        IF random() < 0.5 THEN
          PERFORM shard_coordinator.leave(c, m);
        END IF;
        alive_a := array_remove(alive_a, m);
        alive_b := array_remove(alive_b, m);
      ELSIF c = 'a' THEN
        alive_a := alive_a || m;
      ELSE
        alive_b := alive_b || m;
      END IF;
    END IF;
    PERFORM pg_sleep(0.02);
  END LOOP;
END
\$driver\$;
};
my $driver_backend = q{
	SELECT pid FROM pg_stat_activity WHERE application_name = 'sc_driver' LIMIT 1};

my ($driver, $driver_out, $driver_err);

sub start_driver
{
	$driver_out = '';
	$driver_err = '';
	$driver = IPC::Run::start(
		[
			'psql', '-XAtq', '-d',
			$node->connstr('postgres') . ' application_name=sc_driver',
			'-v', 'ON_ERROR_STOP=1', '-c', $driver_sql
		],
		'<', \undef, '>', \$driver_out, '2>', \$driver_err);
	return;
}

# Waits (bounded) for the driver's psql to exit after the server died under
# it; kills it otherwise.
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

# Everything wrong with the stored tables, one line per problem; '' if the
# invariant holds.
my $table_check = q{
	SELECT coalesce(string_agg(problem, ' / '), '') FROM (
	  SELECT format('table: cluster %s: active shards %s, num_shards %s',
	                c.cluster, s.shards, c.num_shards) AS problem
	    FROM shard_coordinator.cluster_state c,
	         LATERAL (SELECT coalesce(array_agg(m.shard ORDER BY m.shard), '{}') AS shards
	                    FROM shard_coordinator.member_state m
	                   WHERE m.cluster = c.cluster AND m.state = 'active') s
	   WHERE s.shards <> ARRAY(SELECT generate_series(0, c.num_shards - 1))
	  UNION ALL
	  SELECT format('table: member %s/%s: state %s shard %s epoch %s, cluster epoch %s',
	                m.cluster, m.member, m.state, m.shard, m.epoch, c.epoch)
	    FROM shard_coordinator.member_state m JOIN shard_coordinator.cluster_state c USING (cluster)
	   WHERE m.epoch > c.epoch OR (m.state = 'active') <> (m.shard IS NOT NULL)
	  UNION ALL
	  SELECT format('table: cluster %s: %s standby but only %s active, max_shards %s',
	                c.cluster, count(*) FILTER (WHERE m.state = 'standby'),
	                count(*) FILTER (WHERE m.state = 'active'), c.max_shards)
	    FROM shard_coordinator.cluster_state c JOIN shard_coordinator.member_state m USING (cluster)
	   GROUP BY c.cluster, c.max_shards
	  HAVING count(*) FILTER (WHERE m.state = 'standby') > 0
	     AND count(*) FILTER (WHERE m.state = 'active') < coalesce(c.max_shards, 0)
	) p
};

# The same on the live view: expired and leaving members keep their target
# shards until the reshard that hands them on, so the targets are always
# exactly 0 .. num_shards-1; the granted shards (what members may work on,
# behind while an exclusive handover is pending) are distinct shards of the
# one count every member is told.
my $view_check = q{
	SELECT coalesce(string_agg(problem, ' / '), '') FROM (
	  SELECT format('view: cluster %s: targets %s, num_shards %s',
	                m.cluster, coalesce(array_agg(m.target_shard ORDER BY m.target_shard)
	                                    FILTER (WHERE m.target_shard IS NOT NULL), '{}'),
	                c.num_shards) AS problem
	    FROM shard_coordinator.members m JOIN shard_coordinator.clusters c USING (cluster)
	   GROUP BY m.cluster, c.num_shards
	  HAVING coalesce(array_agg(m.target_shard ORDER BY m.target_shard)
	                  FILTER (WHERE m.target_shard IS NOT NULL), '{}')
	         <> ARRAY(SELECT generate_series(0, c.num_shards - 1))
	  UNION ALL
	  SELECT format('view: cluster %s: granted shards %s, counts %s, grant_count %s',
	                m.cluster, array_agg(m.shard ORDER BY m.shard) FILTER (WHERE m.shard IS NOT NULL),
	                array_agg(DISTINCT m.num_shards), c.grant_count)
	    FROM shard_coordinator.members m JOIN shard_coordinator.clusters c USING (cluster)
	   GROUP BY m.cluster, c.grant_count
	  HAVING count(m.shard) <> count(DISTINCT m.shard)
	      OR max(m.shard) >= c.grant_count
	      OR count(DISTINCT m.num_shards) > 1
	      OR min(m.num_shards) <> c.grant_count
	) p
};

# Epochs: "cluster" or "cluster/member" (stable members) -> highest epoch in
# the tables or in shared memory.
my $epoch_query = qq{
	SELECT cluster, max(epoch) FROM (
	  SELECT cluster, epoch FROM shard_coordinator.cluster_state
	  UNION ALL SELECT cluster, epoch FROM shard_coordinator.clusters) e
	GROUP BY cluster
	UNION ALL
	SELECT s.c || '/' || s.m, max(e.epoch)
	  FROM (VALUES $stable_values) AS s(c, m),
	       LATERAL (SELECT greatest(m.epoch, c.num_shards_epoch) AS epoch
	                  FROM shard_coordinator.member_state m
	                  JOIN shard_coordinator.cluster_state c USING (cluster)
	                 WHERE cluster = s.c AND member = s.m
	                UNION ALL
	                SELECT epoch FROM shard_coordinator.members
	                 WHERE cluster = s.c AND member = s.m) e
	 GROUP BY 1};
# The same from the tables only (a member's stored epoch: its row's, or the
# cluster's last change of num_shards if later).
my $stored_epoch_query = qq{
	SELECT cluster, epoch FROM shard_coordinator.cluster_state
	UNION ALL
	SELECT s.c || '/' || s.m, greatest(m.epoch, c.num_shards_epoch)
	  FROM (VALUES $stable_values) AS s(c, m)
	  JOIN shard_coordinator.member_state m ON m.cluster = s.c AND m.member = s.m
	  JOIN shard_coordinator.cluster_state c ON c.cluster = s.c};

sub parse_epochs
{
	my ($rows) = @_;
	my %e;
	for my $line (split /\n/, $rows)
	{
		my ($k, $v) = split /\|/, $line;
		$e{$k} = $v if defined $v && length $v;
	}
	return %e;
}

my %max_epoch;

sub record_epochs
{
	my ($rows) = @_;
	my %e = parse_epochs($rows);
	for my $k (keys %e)
	{
		$max_epoch{$k} = $e{$k} if !defined $max_epoch{$k} || $e{$k} > $max_epoch{$k};
	}
	return;
}

# Epochs stored now that are lower than the highest seen before.
sub epochs_went_back
{
	my ($rows) = @_;
	my %now = parse_epochs($rows);
	return join(' / ',
		map { "$_: epoch " . ($now{$_} // 'none') . " < $max_epoch{$_}" }
		grep { !defined $now{$_} || $now{$_} < $max_epoch{$_} } sort keys %max_epoch);
}

my $heartbeat_stable = qq{
	SELECT string_agg(s.m || '=' || h.state || ':' || coalesce(h.shard::text, '-'), ','
	                  ORDER BY s.c, s.m)
	  FROM (VALUES $stable_values) AS s(c, m),
	       LATERAL shard_coordinator.heartbeat(s.c, s.m) AS h};

my $worker_query =
  "SELECT pid FROM pg_stat_activity WHERE backend_type = 'shard_coordinator'";

# What the tables and views hold, for diagnostics.
sub dump_state
{
	diag $node->safe_psql('postgres', q{
		SELECT 'view', cluster, member, state, shard, num_shards, epoch, expires_at - now()
		  FROM shard_coordinator.members
		UNION ALL
		SELECT 'table', cluster, member, state, shard, NULL, epoch, NULL
		  FROM shard_coordinator.member_state ORDER BY 1, 2, 3});
	diag $node->safe_psql('postgres', q{
		SELECT 'view', cluster, epoch, num_shards, members, active, standby, pending
		  FROM shard_coordinator.clusters
		UNION ALL
		SELECT 'table', cluster, epoch, num_shards, NULL, NULL, NULL, NULL
		  FROM shard_coordinator.cluster_state ORDER BY 1, 2});
	return;
}

# Runs several queries in one psql (in order), returns their outputs.
sub queries
{
	my @q = @_;
	my $out = $node->safe_psql('postgres',
		join("\n", map { "$_;\nSELECT '\@\@';" } @q));
	my @parts = split /^\@\@\n?/m, $out . "\n";
	s/\n\z// for @parts;
	die "expected " . scalar(@q) . " results, got " . scalar(@parts) . ": $out"
	  unless @parts == @q;
	return @parts;
}

# The pids of the processes whose parent is $ppid.
sub children_of
{
	my ($ppid) = @_;
	my @kids;
	for my $stat (glob '/proc/[0-9]*/stat')
	{
		open my $fh, '<', $stat or next;
		my $line = <$fh>;
		close $fh;
		next unless defined $line && $line =~ /^(\d+) \(.*\) \S (\d+)/;
		push @kids, $1 if $2 == $ppid;
	}
	return @kids;
}

# The stable members' shards, which must never change.
my $expected_stable = $node->safe_psql('postgres', $heartbeat_stable);
is($expected_stable, 'a_s0=active:0,a_s1=active:1,a_s2=active:2,b_s0=active:0,b_s1=active:1',
	'stable members hold the lowest shards');
start_driver();
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM shard_coordinator.members WHERE member LIKE '%\\_c%'")
  or die "the driver does not run: $driver_err";

my %kinds_done;
for my $cycle (1 .. $cycles)
{
	# A random moment: the driver runs for 0.1 .. 1.5 s more (this sleep is
	# the fault injection schedule, not synchronisation).
	sleep(0.1 + rand(1.4));

	my $kind = (qw(immediate immediate pm_kill pm_kill bk_kill))[ int(rand(5)) ];
	# each kind at least twice
	$kind = 'pm_kill' if $cycle == 2 || $cycle == 5;
	$kind = 'bk_kill' if $cycle == 3 || $cycle == 6;
	$kinds_done{$kind}++;
	my $victim = '';
	$victim = rand() < 0.5 ? 'worker' : 'driver' if $kind eq 'bk_kill';
	my ($epochs_before, $before, $driver_pid, $worker_pid) =
	  queries($epoch_query, $view_check, $driver_backend, $worker_query);
	record_epochs($epochs_before);
	# The members and clusters views read shared memory one after the
	# other: a step published between the two shows as a mismatch. A real
	# one stays; look again a few times.
	for (my $again = 0; $before ne '' && $again < 5; $again++)
	{
		($before) = queries($view_check);
	}
	# (the driver may not have connected yet: then the worker)
	$victim = 'worker' if $victim eq 'driver' && $driver_pid !~ /^\d+$/;
	my $pid = $victim eq 'driver' ? $driver_pid : $worker_pid;

	if ($kind eq 'immediate')
	{
		$node->stop('immediate');
		reap_driver();
		$node->start;
	}
	elsif ($kind eq 'pm_kill')
	{
		my $pm = $node->{_pid};
		my @kids = children_of($pm);
		$node->kill9;
		reap_driver();
		# The orphaned children notice the postmaster's death and exit; only
		# then can a new postmaster take over the data directory.
		my $deadline = time() + 60;
		sleep(0.05) while time() < $deadline && grep { kill(0, $_) } ($pm, @kids);
		die "children of the killed postmaster did not exit"
		  if grep { kill(0, $_) } ($pm, @kids);
		$node->start;
	}
	else
	{
		# One backend, the worker or the driver's: the postmaster
		# reinitialises shared memory and starts over.
		$kind .= " $victim";
		die "no $victim backend to kill" unless $pid =~ /^\d+$/;
		kill 'KILL', $pid;
		reap_driver();
		$node->poll_query_until('postgres', 'SELECT true')
		  or die "the server did not come back";
	}

	# First thing: the stable members heartbeat and get their old shards.
	my ($got, $tables, $views, $stored) =
	  queries($heartbeat_stable, $table_check, $view_check, $stored_epoch_query);
	start_driver();
	my $epochs = epochs_went_back($stored);
	my $ok = $got eq $expected_stable && $before eq '' && $tables eq ''
	  && $views eq '' && $epochs eq '';
	ok($ok, "cycle $cycle ($kind): invariant, stable shards and epochs hold");
	unless ($ok)
	{
		diag "stable members after restart: $got (expected $expected_stable)"
		  if $got ne $expected_stable;
		diag "before the crash: $before" if $before ne '';
		diag $tables if $tables ne '';
		diag $views if $views ne '';
		diag $epochs if $epochs ne '';
		dump_state();
	}
}

note 'crash kinds: ' . join(', ', map { "$_ $kinds_done{$_}" } sort keys %kinds_done);

# The churn stops: the driver's psql is killed, and its backend, which would
# go on looping without it, terminated. The churn members leave; the clusters
# settle with the stable members still on their shards.
$driver->kill_kill;
$driver->finish;
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	                           WHERE application_name = 'sc_driver') t})
  or die 'the driver backend does not go away';
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.leave(cluster, member) FROM shard_coordinator.members
	 WHERE member LIKE '%\_c%'});
ok( $node->poll_query_until(
		'postgres', qq{
		SELECT (SELECT count(*) FROM (VALUES $stable_values) AS s(c, m),
		               LATERAL shard_coordinator.heartbeat(s.c, s.m, (SELECT v.epoch FROM shard_coordinator.members v WHERE v.cluster = s.c AND v.member = s.m))) = 5
		   AND NOT (SELECT bool_or(handover_pending) FROM shard_coordinator.clusters)
		   AND (SELECT count(*) = 5 AND bool_and(state = 'active')
		          FROM shard_coordinator.members)
		   AND (SELECT count(*) FROM shard_coordinator.member_state) = 5}),
	'after the churn stops, only the stable members remain, all active')
  or dump_state();
is($node->safe_psql('postgres', $heartbeat_stable), $expected_stable,
	'the stable members still hold their shards');
is($node->safe_psql('postgres', $table_check . ' UNION ALL ' . $view_check . ' EXCEPT SELECT \'\''),
	'', 'final invariant on the tables and the view');
is(epochs_went_back($node->safe_psql('postgres', $stored_epoch_query)), '',
	'no epoch went back');
my $epochs = $node->safe_psql('postgres',
	"SELECT string_agg(cluster || '=' || epoch, ', ' ORDER BY cluster) FROM shard_coordinator.cluster_state");
note "final epochs: $epochs";
is($node->safe_psql('postgres', "SELECT count(*) FROM ($worker_query) w"),
	'1', 'the background worker runs');
$node->stop;
note sprintf('%d crash cycles in %.1f s', $cycles, time() - $t_start);

done_testing();
