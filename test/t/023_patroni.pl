# High availability under Patroni (issue 17): Debian's patroni and
# etcd-server. One etcd and two PostgreSQL 15 nodes managed by Patroni, all
# on loopback ports of their own; shared_preload_libraries and the
# extension's settings come from Patroni's configuration (the DCS's
# postgresql.parameters); primary_start_timeout = 0, so that a crashed
# primary is failed over instead of restarted in place; use_pg_rewind, so
# that the old primary rejoins. The agents (`shard-coordinator run`) connect
# with a multi-host string (host=127.0.0.1,127.0.0.1 port=P1,P2
# target_session_attrs=read-write). Their children record their grant; the
# agents log (-v) each child's start and the end of its process tree on
# CLOCK_MONOTONIC, from which the test rebuilds, per key (plain mode: the
# keys 0..1023 with jump_hash(key, n) = shard), the intervals in which some
# child worked on it, as the chaos checker does: no key may be worked on by
# two children at once.
#
# 1. synchronous_mode: true. Three agents hold shards 0..2 and the steps
#    were stored synchronously replicated (cluster_state.synchronous). The
#    primary's postmaster gets SIGKILL: Patroni promotes the synchronous
#    standby; the agents find it by themselves; every member keeps its
#    shard and epoch (no reshard, children not restarted: the failover is
#    shorter than the lease); the cluster's epoch goes on in timeline 2's
#    range; no grant is held (every promise survived). A fourth agent joins
#    the promoted server and is granted at once after the others' releases.
#    The old primary rejoins as a (synchronous) standby and has the state.
# 2. synchronous_mode: false (changed through Patroni's REST API). A holds
#    every key. The walsender to the standby is stopped (SIGSTOP: a
#    partition between the two servers), and B, whose connection string
#    names only the primary (a client partitioned with it), joins and is
#    granted shard 1 of 2 after A released it; the standby never receives
#    it. The primary's postmaster gets SIGKILL; Patroni promotes the
#    standby, which has only A. B cannot reach it and stops its child when
#    its lease ends. C joins the promoted server and is placed on B's shard,
#    but the promoted server grants nothing for one full lease after its
#    start (clusters.grants_held_until), so C's child starts only after B's
#    stopped. The old primary, which diverged, rejoins (pg_rewind) as a
#    standby.
#
# Epochs: per agent, the epochs of the assignments it reports and of its
# children never go back; the promoted servers publish above anything the
# old primary did.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC usleep);

sub now { return clock_gettime(CLOCK_MONOTONIC); }

sub find_program
{
	my ($name, @more) = @_;
	for my $d (split(/:/, $ENV{PATH} // ''), @more, '/usr/local/bin', '/usr/bin')
	{
		return "$d/$name" if -x "$d/$name";
	}
	return undef;
}
my %bin = (
	agent => find_program('shard-coordinator'),
	patroni => find_program('patroni'),
	etcd => find_program('etcd', '/usr/sbin'),
	pgbin => '/usr/lib/postgresql/15/bin');
my @missing = grep { !$bin{$_} } sort keys %bin;
if (@missing)
{
	fail("installed: @missing (make deps; make install-client for the agent)");
	done_testing();
	exit 0;
}

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $dir = PostgreSQL::Test::Utils::tempdir();
my $sockets = PostgreSQL::Test::Utils::tempdir_short();
my $logs = "$PostgreSQL::Test::Utils::log_path/023_patroni";
mkdir $logs;
my $http = HTTP::Tiny->new(timeout => 5);

my %port = map { $_ => PostgreSQL::Test::Cluster::get_free_port() }
  qw(etcd_client etcd_peer node1 node2 rest1 rest2);
my @nodes = ('node1', 'node2');
my %rest = (node1 => $port{rest1}, node2 => $port{rest2});

# ---- processes; everything is stopped in the END block ----------------------

my %procs;    # name -> pid, of the processes this test started

sub spawn
{
	my ($name, $log, @cmd) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', $log) or POSIX::_exit(127);
		open(STDERR, '>&', \*STDOUT);
		# Their own names and servers, not the test framework's.
		delete @ENV{qw(PGAPPNAME PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGDATA PGSERVICE)};
		delete @ENV{ grep { /^(ETCD|PATRONI)_/ } keys %ENV };    # settings of etcd, Patroni
		exec(@cmd) or POSIX::_exit(127);
	}
	$procs{$name} = $pid;
	return $pid;
}

sub alive
{
	my ($pid) = @_;
	return 0 unless $pid;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh> // '';
	return $stat !~ /\) [ZX] /;
}

# Waits up to $secs for our child $pid to exit: its wait status, or undef.
sub reap
{
	my ($pid, $secs) = @_;
	my $deadline = now() + $secs;
	while (now() < $deadline)
	{
		my $r = waitpid($pid, POSIX::WNOHANG());
		return $? if $r == $pid;
		return 0 if $r < 0;    # not ours, or gone already
		usleep(50_000);
	}
	return undef;
}

sub stop_proc
{
	my ($name, $secs) = @_;
	my $pid = delete $procs{$name} or return undef;
	kill 'TERM', $pid;
	my $status = reap($pid, $secs);
	if (!defined $status)
	{
		diag("$name (pid $pid) did not stop within $secs s: SIGKILL");
		kill 'KILL', $pid;
		reap($pid, 5);
	}
	return $status;
}

sub postmaster_pid
{
	my ($node) = @_;
	open(my $fh, '<', "$dir/$node/data/postmaster.pid") or return undef;
	my $pid = <$fh>;
	chomp $pid if defined $pid;
	return $pid && alive($pid) ? $pid : undef;
}

my @stopped;    # processes we SIGSTOPped (resumed or killed in the END)

sub cleanup
{
	kill 'KILL', @stopped if @stopped;
	# Agents first (they stop their children and leave), then Patroni (it
	# stops its PostgreSQL), then anything Patroni left behind, then etcd.
	stop_proc($_, 10) for grep { /^agent/ } keys %procs;
	my @patroni = grep { /^patroni/ } keys %procs;
	kill 'TERM', map { $procs{$_} } @patroni;
	stop_proc($_, 30) for @patroni;
	for my $node (@nodes)
	{
		my $pm = postmaster_pid($node) or next;
		kill 'QUIT', $pm;
		my $deadline = now() + 10;
		usleep(100_000) while alive($pm) && now() < $deadline;
		kill 'KILL', $pm if alive($pm);
	}
	stop_proc($_, 10) for keys %procs;
	return;
}

END
{
	my $status = $?;
	cleanup();
	$? = $status;
}
# exit, not die: an eval around the statement at hand would catch a die.
$SIG{INT} = $SIG{TERM} = sub { diag('killed by a signal: cleaning up'); exit 1; };

# ---- helpers ---------------------------------------------------------------

sub wait_until
{
	my ($what, $check, $secs) = @_;
	my $deadline = now() + ($secs // $timeout);
	while (now() < $deadline)
	{
		my $value = $check->();
		return $value if $value;
		usleep(100_000);
	}
	diag("timed out waiting for $what");
	return undef;
}

# Runs SQL on a node (each statement in a transaction of its own): its output (chomped), or undef if it failed ($psql_error
# says why).
my $psql_error = '';

sub psql
{
	my ($node, $sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run(
			[
				"$bin{pgbin}/psql", '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d',
				"host=127.0.0.1 port=$port{$node} dbname=postgres user=postgres "
				  . 'connect_timeout=3 application_name=sc_test'
			],
			'<', \$sql, '>', \$out, '2>', \$err, IPC::Run::timeout(30));
	};
	$psql_error = $ok ? '' : ($@ || $err);
	return undef unless $ok;
	chomp $out;
	return $out;
}

sub psql_ok
{
	my ($node, $sql) = @_;
	my $out = psql($node, $sql);
	die "on $node: $sql failed: $psql_error" unless defined $out;
	return $out;
}

sub rest_get
{
	my ($node, $path) = @_;
	my $r = $http->get("http://127.0.0.1:$rest{$node}$path");
	return undef unless $r->{status} == 200 || $r->{status} == 503;
	return eval { decode_json($r->{content}) };
}

# Patroni's view of the cluster: name -> {role, state, timeline, ...}.
sub members_of_cluster
{
	for my $node (@nodes)
	{
		my $c = rest_get($node, '/cluster') or next;
		return { map { $_->{name} => $_ } @{ $c->{members} // [] } };
	}
	return {};
}

sub describe_cluster
{
	my $m = members_of_cluster();
	return join(', ',
		map { "$_: " . ($m->{$_}{role} // '?') . '/' . ($m->{$_}{state} // '?')
			  . ' tl ' . ($m->{$_}{timeline} // '?') } sort keys %$m);
}

sub is_primary
{
	my ($node) = @_;
	return (psql($node, 'SELECT pg_is_in_recovery()') // '') eq 'f';
}

sub other { return $_[0] eq 'node1' ? 'node2' : 'node1'; }

# The standby has replayed everything the primary had written when asked.
sub caught_up
{
	my ($primary, $standby) = @_;
	my $lsn = psql_ok($primary, 'SELECT pg_current_wal_lsn()');
	return wait_until("$standby to replay up to $lsn",
		sub { (psql($standby, "SELECT pg_last_wal_replay_lsn() >= '$lsn'") // '') eq 't' });
}

# The old primary $node is back as a standby of $primary, streaming on the
# primary's timeline (a standby that has diverged connects and streams the
# old timeline for a moment before it finds that it cannot follow).
sub rejoined
{
	my ($node, $primary, $sync) = @_;
	my $tl = psql_ok($primary,
		q{SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int});
	return wait_until(
		"$node to rejoin as a standby of $primary",
		sub {
			my $m = members_of_cluster();
			return 0 unless ($m->{$primary}{role} // '') eq 'leader';
			return 0 unless ($m->{$node}{role} // '') =~ /^(replica|sync_standby)$/;
			return 0 unless (psql($node, q{SELECT pg_is_in_recovery() AND status = 'streaming'
				                                 AND received_tli = } . $tl
				  . ' FROM pg_stat_wal_receiver') // '') eq 't';
			my $state = psql($primary,
				"SELECT state || ' ' || sync_state FROM pg_stat_replication "
				  . "WHERE application_name = '$node'") // '';
			return $state eq ($sync ? 'streaming sync' : 'streaming async');
		},
		2 * $timeout);
}

# ---- etcd and Patroni --------------------------------------------------------

mkdir "$dir/etcd";
spawn('etcd', "$logs/etcd.log", $bin{etcd},
	'--name', 'sc', '--data-dir', "$dir/etcd",
	'--listen-client-urls', "http://127.0.0.1:$port{etcd_client}",
	'--advertise-client-urls', "http://127.0.0.1:$port{etcd_client}",
	'--listen-peer-urls', "http://127.0.0.1:$port{etcd_peer}",
	'--initial-advertise-peer-urls', "http://127.0.0.1:$port{etcd_peer}",
	'--initial-cluster', "sc=http://127.0.0.1:$port{etcd_peer}",
	'--initial-cluster-state', 'new', '--initial-cluster-token', 'sc-test');
ok( wait_until('etcd',
		sub {
			my $r = $http->get("http://127.0.0.1:$port{etcd_client}/health");
			$r->{success} && $r->{content} =~ /"health":\s*"true"/;
		}),
	"etcd answers on its own port ($port{etcd_client})")
  or die 'etcd does not start: ' . slurp_file("$logs/etcd.log");

my $LEASE_SYNC = 15.5;    # cluster ps: heartbeat_interval 500 ms + grace_period 15 s
my $LEASE = 4;            # cluster pa: heartbeat_interval 500 ms + grace_period 3500 ms

# The settings that matter are in bootstrap.dcs (Patroni's dynamic
# configuration, the same for every node): synchronous_mode,
# primary_start_timeout, use_pg_rewind and postgresql.parameters with
# shared_preload_libraries and the extension's settings.
sub patroni_config
{
	my ($node) = @_;
	mkdir "$dir/$node";
	mkdir "$sockets/$node";
	return <<"EOF";
scope: sc_patroni
name: $node
log:
  level: INFO
restapi:
  listen: 127.0.0.1:$rest{$node}
  connect_address: 127.0.0.1:$rest{$node}
etcd3:
  host: 127.0.0.1:$port{etcd_client}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    primary_start_timeout: 0
    maximum_lag_on_failover: 16777216
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        shared_preload_libraries: shard_coordinator
        shard_coordinator.database: postgres
        shard_coordinator.heartbeat_interval: 500ms
        shard_coordinator.grace_period: 3500ms
        wal_log_hints: 'on'    # for pg_rewind (Patroni sets it anyway)
  initdb:
  - encoding: UTF8
  - locale: C.UTF-8
  pg_hba:
  - local all all trust
  - host replication all 127.0.0.1/32 trust
  - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:$port{$node}
  connect_address: 127.0.0.1:$port{$node}
  data_dir: $dir/$node/data
  bin_dir: $bin{pgbin}
  pgpass: $dir/$node/pgpass
  authentication:
    superuser:
      username: postgres
    replication:
      username: replicator
    rewind:
      username: postgres
  parameters:
    unix_socket_directories: '$sockets/$node'
    logging_collector: 'on'
    log_directory: '$logs'
    log_filename: 'postgresql-$node.log'
    log_min_messages: log
tags: {}
EOF
}

sub start_patroni
{
	my ($node) = @_;
	append_to_file("$dir/$node.yml", patroni_config($node));
	spawn("patroni-$node", "$logs/patroni-$node.log", $bin{patroni}, "$dir/$node.yml");
	return;
}

start_patroni('node1');
ok( wait_until('node1 to bootstrap the cluster',
		sub { (members_of_cluster()->{node1}{role} // '') eq 'leader' && is_primary('node1') }),
	'Patroni bootstraps node1 as the primary')
  or die 'node1: ' . slurp_file("$logs/patroni-node1.log");
start_patroni('node2');
ok( wait_until(
		'node2 to be the synchronous standby',
		sub {
			(members_of_cluster()->{node2}{role} // '') eq 'sync_standby'
			  && (psql('node1', "SELECT sync_state FROM pg_stat_replication "
					  . "WHERE application_name = 'node2'") // '') eq 'sync';
		},
		2 * $timeout),
	'node2 joins as the synchronous standby (synchronous_mode)')
  or die 'node2: ' . describe_cluster() . "\n" . slurp_file("$logs/patroni-node2.log");
for my $node (@nodes)
{
	is( psql($node, q{SELECT current_setting('shared_preload_libraries') || ' '
		                  || current_setting('shard_coordinator.database') || ' '
		                  || current_setting('shard_coordinator.grace_period')}),
		'shard_coordinator postgres 3500ms',
		"$node preloads the extension with its settings from Patroni's postgresql.parameters");
}
psql_ok('node1', q{
	CREATE EXTENSION shard_coordinator;
	SELECT shard_coordinator.configure('ps', heartbeat_interval => '500ms',
	                                   grace_period => '15s', reshard_interval => '0');
	SELECT shard_coordinator.configure('pa', heartbeat_interval => '500ms',
	                                   grace_period => '3500ms', reshard_interval => '0');
});

# ---- agents ----------------------------------------------------------------

my $child = "$dir/child.sh";
append_to_file($child, <<'EOF');
#!/bin/sh
echo "$$ $SHARD_CLUSTER $SHARD_MEMBER $SHARD_INDEX $SHARD_COUNT $SHARD_EPOCH" > "$SC_TEST_DIR/child.$$.tmp" &&
  mv "$SC_TEST_DIR/child.$$.tmp" "$SC_TEST_DIR/child.$$"
exec sleep 3600
EOF
chmod 0755, $child;
mkdir "$dir/children";

my $multi_dsn = "host=127.0.0.1,127.0.0.1 port=$port{node1},$port{node2} "
  . 'dbname=postgres user=postgres target_session_attrs=read-write connect_timeout=2';
my %agent_log;    # member -> log file

sub start_agent
{
	my ($cluster, $member, $dsn) = @_;
	$agent_log{$member} = "$logs/agent-$member.log";
	local $ENV{SC_TEST_DIR} = "$dir/children";
	spawn("agent-$member", $agent_log{$member}, $bin{agent}, '-v', 'run',
		'--cluster', $cluster, '--member', $member, '--dsn', $dsn // $multi_dsn,
		'--kill-timeout', '1s', '--', $child);
	return;
}

sub log_of
{
	my ($member) = @_;
	return -e $agent_log{$member} ? slurp_file($agent_log{$member}) : '';
}

# Live children: member -> {pid, cluster, shard, count, epoch}.
sub children
{
	my %found;
	opendir(my $dh, "$dir/children") or die $!;
	for my $name (readdir $dh)
	{
		next unless $name =~ /^child\.(\d+)$/;
		next unless alive($1);
		my ($pid, $cluster, $member, $shard, $count, $epoch) =
		  split(' ', slurp_file("$dir/children/$name"));
		$found{$member} = {
			pid => $pid, cluster => $cluster, shard => $shard,
			count => $count, epoch => $epoch };
	}
	closedir $dh;
	return \%found;
}

# Members of a cluster on a node: member -> "state shard/num_shards epoch".
sub view
{
	my ($node, $cluster) = @_;
	my $rows = psql($node,
		"SELECT member, state, coalesce(shard::text, '-'), num_shards, epoch "
		  . "FROM shard_coordinator.members WHERE cluster = '$cluster'") // return {};
	my %view;
	for (split /\n/, $rows)
	{
		my ($m, $state, $shard, $n, $epoch) = split /\|/;
		$view{$m} = "$state $shard/$n $epoch";
	}
	return \%view;
}

# Every listed member is active and granted on $node, nobody else is a
# member, no handover is pending, and each member's child runs its grant
# (its shard and count; its epoch, that of the grant when it started, may be
# older than the member's).
sub converged
{
	my ($node, $cluster, @members) = @_;
	my $view = view($node, $cluster);
	return 0 unless join(',', sort keys %$view) eq join(',', sort @members);
	return 0 if (psql($node, "SELECT handover_pending FROM shard_coordinator.clusters "
			  . "WHERE cluster = '$cluster'") // 't') ne 'f';
	my $kids = children();
	for my $m (@members)
	{
		my $k = $kids->{$m} or return 0;
		my ($state, $grant, $epoch) = split ' ', $view->{$m};
		# A child is not restarted when only the epoch of its grant moved.
		return 0 unless $state eq 'active' && $grant eq "$k->{shard}/$k->{count}"
		  && $k->{epoch} <= $epoch;
	}
	return 1;
}

# The stored assignment of a cluster (a standby's view shows the tables):
# "member=shard/num_shards epoch,...".
sub assignment
{
	my ($node, $cluster) = @_;
	return psql($node, "SELECT string_agg(member || '=' || coalesce(shard::text, '-') || '/' "
		  . "|| num_shards || ' ' || epoch, ',' ORDER BY member) "
		  . "FROM shard_coordinator.members WHERE cluster = '$cluster'");
}

sub describe_state
{
	my ($node, $cluster) = @_;
	my $v = view($node, $cluster);
	my $k = children();
	return "$node: " . join(', ', map { "$_=$v->{$_}" } sort keys %$v)
	  . '; children: '
	  . join(', ', map { "$_=$k->{$_}{shard}/$k->{$_}{count} $k->{$_}{epoch}" } sort keys %$k);
}

# ---- the checker: the children's lives, from the agents' logs ---------------

my %keyset;    # "shard/count" -> {key => 1}, keys 0..1023

sub keys_of
{
	my ($node, $shard, $count) = @_;
	my $id = "$shard/$count";
	$keyset{$id} //= {
		map { $_ => 1 } split /\n/,
		psql_ok($node,
			"SELECT k FROM generate_series(0, 1023) k "
			  . "WHERE shard_coordinator.jump_hash(k, $count) = $shard")
	};
	return $keyset{$id};
}

# Children of the given members: [{member, pid, start, end, shard, count,
# epoch}], end undef while it runs.
sub lives
{
	my @members = @_;
	my @lives;
	for my $m (@members)
	{
		my %open;
		for my $line (split /\n/, log_of($m))
		{
			if ($line =~ /started pid (\d+) \(CLOCK_MONOTONIC (\d+\.\d+)\): shard (\d+) of (\d+), epoch (\d+)/)
			{
				my $life = {
					member => $m, pid => $1, start => $2,
					shard => $3, count => $4, epoch => $5 };
				push @lives, $life;
				$open{$1} = $life;
			}
			elsif ($line =~ /pid (\d+) and its process tree are gone \(CLOCK_MONOTONIC (\d+\.\d+)\)/)
			{
				my $life = delete $open{$1} or next;
				$life->{end} = $2;
			}
		}
	}
	return @lives;
}

# No key worked on by two children at once (nor two children of one agent
# at once); and work did move: the number of handovers (a key's next child
# belongs to another member) is at least $min_handovers.
sub check_no_overlap
{
	my ($what, $node, $min_handovers, @members) = @_;
	my @lives = lives(@members);
	my $t = now();
	my @overlaps;
	my $handovers = 0;
	my %last;    # key -> member of the latest child that worked on it
	for my $life (sort { $a->{start} <=> $b->{start} } @lives)
	{
		for my $k (keys %{ keys_of($node, $life->{shard}, $life->{count}) })
		{
			$handovers++ if defined $last{$k} && $last{$k} ne $life->{member};
			$last{$k} = $life->{member};
		}
	}
	for my $i (0 .. $#lives)
	{
		for my $j ($i + 1 .. $#lives)
		{
			my ($a, $b) = @lives[ $i, $j ];
			my $from = $a->{start} > $b->{start} ? $a->{start} : $b->{start};
			my $to = ($a->{end} // $t) < ($b->{end} // $t) ? ($a->{end} // $t) : ($b->{end} // $t);
			next unless $from < $to;
			my $ka = keys_of($node, $a->{shard}, $a->{count});
			my $kb = keys_of($node, $b->{shard}, $b->{count});
			my $shared = grep { $kb->{$_} } keys %$ka;
			next unless $shared || $a->{member} eq $b->{member};
			push @overlaps,
			  sprintf('%s pid %d (shard %d of %d, epoch %d) and %s pid %d (shard %d of %d, '
				  . 'epoch %d): %d keys for %.3f s',
				@$a{qw(member pid shard count epoch)}, @$b{qw(member pid shard count epoch)},
				$shared, $to - $from);
		}
	}
	ok(!@overlaps, "$what: no key worked on by two children at once ("
		  . scalar(@lives) . " children, $handovers keys handed over)")
	  or diag(join("\n", @overlaps));
	ok($handovers >= $min_handovers, "$what: ... and keys did move from member to member");
	return;
}

# Per agent, the epochs it reports (assignment lines) and its children's
# never go back.
sub check_epochs
{
	my ($what, @members) = @_;
	my @back;
	for my $m (@members)
	{
		my $last = 0;
		for my $line (split /\n/, log_of($m))
		{
			next unless $line =~ /(?:assignment: \w+.*|started pid .*)epoch (\d+)/;
			push @back, "$m: $1 after $last" if $1 < $last;
			$last = $1 if $1 > $last;
		}
	}
	ok(!@back, "$what: no agent's epochs went back") or diag(join("\n", @back));
	return;
}

sub max_epoch_seen
{
	my (@members) = @_;
	my $max = 0;
	for my $m (@members)
	{
		for (log_of($m) =~ /(?:assignment: \w+.*|started pid .*)epoch (\d+)/g)
		{
			$max = $_ if $_ > $max;
		}
	}
	return $max;
}

# The checker's key sets: for each count, the shards' keys partition 0..1023.
my @bad_counts;
for my $n (1 .. 4)
{
	my %seen;
	$seen{$_}++ for map { keys %{ keys_of('node1', $_, $n) } } 0 .. $n - 1;
	push @bad_counts, $n unless keys(%seen) == 1024 && !grep { $_ != 1 } values %seen;
}
ok(!@bad_counts, 'the checker\'s key sets (jump_hash) partition keys 0..1023 for 1 to 4 shards')
  or diag("not for: @bad_counts");

# ---- 1. synchronous_mode: true -----------------------------------------------

my @ps = qw(s1 s2 s3);
start_agent('ps', $_) for @ps;
ok(wait_until('three agents on node1', sub { converged('node1', 'ps', @ps) }),
	'three agents with a multi-host connection string hold shards 0..2 on node1')
  or diag(describe_state('node1', 'ps'));
is( psql('node1', q{
		SELECT c.synchronous::text || ' ' || v.failover_safe
		  FROM shard_coordinator.cluster_state c
		  JOIN shard_coordinator.clusters v USING (cluster) WHERE cluster = 'ps'}),
	'true true',
	'the steps were stored synchronously replicated (failover_safe)');
my $view_before = view('node1', 'ps');
my $kids_before = children();
my $max_before = max_epoch_seen(@ps);
caught_up('node1', 'node2');
is( assignment('node2', 'ps'),
	join(',', map { my @f = split ' ', $view_before->{$_}; "$_=$f[1] $f[2]" } sort @ps),
	'the synchronous standby has the assignment');

my %offset = map { $_ => length(log_of($_)) } @ps;
my $t_kill = now();
my $pm = postmaster_pid('node1');
ok($pm, "node1's postmaster runs (pid " . ($pm // '?') . ')');
kill 'KILL', $pm if $pm;
my $t_promoted = wait_until('Patroni to promote node2',
	sub { is_primary('node2') && (members_of_cluster()->{node2}{role} // '') eq 'leader' && now() });
ok($t_promoted, 'SIGKILL of the primary\'s postmaster: Patroni promotes the synchronous standby')
  or diag(describe_cluster());
my $at2 = quotemeta("127.0.0.1:$port{node2}");
my $t_reconnected = wait_until(
	'every agent to connect to node2',
	sub {
		for my $m (@ps)
		{
			return 0 unless substr(log_of($m), $offset{$m}) =~ /connected to $at2/;
		}
		return now();
	});
ok($t_reconnected, 'every agent found the new primary through its multi-host string');
note(sprintf('SIGKILL to promoted: %.1f s; to every agent reconnected: %.1f s',
		($t_promoted // now()) - $t_kill, ($t_reconnected // now()) - $t_kill));
my $connected_at = psql_ok('node2', 'SELECT now()');
ok( wait_until('heartbeats on node2', sub {
			(psql('node2', "SELECT count(*) = 3 FROM shard_coordinator.members "
				  . "WHERE cluster = 'ps' AND last_heartbeat > '$connected_at'") // '') eq 't' }),
	'every agent heartbeats on the promoted server');
is_deeply(view('node2', 'ps'), $view_before,
	'every member keeps its shard and epoch on the promoted server (no reshard)');
is( psql('node2', q{
		SELECT (epoch >= (1::bigint << 32) - 1)::text || ' ' || (grants_held_until IS NULL)::text
		  FROM shard_coordinator.clusters WHERE cluster = 'ps'}),
	'true true',
	'... the cluster epoch goes on in timeline 2\'s range, and no grant is held back');
is_deeply({ map { $_ => children()->{$_}{pid} } @ps }, { map { $_ => $kids_before->{$_}{pid} } @ps },
	'the children kept running through the failover (same pids)');
for my $m (@ps)
{
	unlike(substr(log_of($m), $offset{$m}), qr/assignment: /,
		"agent $m reported no assignment change through the failover");
}

# A join on the promoted server: a handover with nothing held back.
my $t_join = now();
start_agent('ps', 's4');
push @ps, 's4';
ok(wait_until('four agents on node2', sub { converged('node2', 'ps', @ps) }),
	'a fourth agent joins the promoted server; the others hand over its keys')
  or diag(describe_state('node2', 'ps'));
my ($s4) = grep { $_->{member} eq 's4' } lives('s4');
ok($s4 && $s4->{start} < $t_join + $LEASE_SYNC,
	sprintf('... and it is granted within a lease (%.2f s after it started)',
		$s4 ? $s4->{start} - $t_join : -1));
is(psql('node2', "SELECT num_shards FROM shard_coordinator.clusters WHERE cluster = 'ps'"),
	'4', '... four shards');

ok(rejoined('node1', 'node2', 1),
	'the old primary rejoins as the synchronous standby of the promoted server')
  or diag(describe_cluster());
note('node1 ' . (slurp_file("$logs/patroni-node1.log") =~ /running pg_rewind/ ? 'ran' : 'did not need')
	  . ' pg_rewind');
caught_up('node2', 'node1');
is(assignment('node1', 'ps'), assignment('node2', 'ps'),
	'... and has the assignment of the promoted server');
ok(max_epoch_seen(@ps) >= (1 << 32) && max_epoch_seen(@ps) > $max_before,
	'the epochs of the promoted server are above the old primary\'s');
check_epochs('synchronous failover', @ps);
check_no_overlap('synchronous failover', 'node2', 1, @ps);

for my $m (@ps)
{
	is(stop_proc("agent-$m", 15), 0, "agent $m leaves on SIGTERM and exits 0");
}
is(psql('node2', "SELECT count(*) FROM shard_coordinator.members WHERE cluster = 'ps'"),
	'0', 'every member of ps left');

# ---- 2. synchronous_mode: false -----------------------------------------------

my $r = $http->request('PATCH', "http://127.0.0.1:$rest{node2}/config",
	{ headers => { 'Content-Type' => 'application/json' },
	  content => encode_json({ synchronous_mode => JSON::PP::false }) });
ok($r->{success}, 'synchronous_mode: false through Patroni\'s REST API')
  or diag("$r->{status} $r->{content}");
ok( wait_until('asynchronous replication', sub {
			(psql('node2', "SELECT current_setting('synchronous_standby_names') = '' "
				  . "AND (SELECT sync_state FROM pg_stat_replication "
				  . "     WHERE application_name = 'node1') = 'async'") // '') eq 't' }),
	'Patroni clears synchronous_standby_names: node1 replicates asynchronously');

start_agent('pa', 'A');
ok(wait_until('A on node2', sub { converged('node2', 'pa', 'A') }),
	'A holds every key of pa on node2')
  or diag(describe_state('node2', 'pa'));
is( psql('node2', q{
		SELECT c.synchronous::text || ' ' || v.failover_safe
		  FROM shard_coordinator.cluster_state c
		  JOIN shard_coordinator.clusters v USING (cluster) WHERE cluster = 'pa'}),
	'false false', '... stored without synchronous replication');
caught_up('node2', 'node1');

# A partition between the servers: the walsender to node1 stops sending.
my $walsender = psql_ok('node2',
	"SELECT pid FROM pg_stat_replication WHERE application_name = 'node1'");
kill 'STOP', $walsender;
push @stopped, $walsender;
my $lsn_cut = psql_ok('node2', 'SELECT pg_current_wal_lsn()');
# B reaches node2 only (partitioned with it).
start_agent('pa', 'B', "host=127.0.0.1 port=$port{node2} dbname=postgres user=postgres "
	  . 'target_session_attrs=read-write connect_timeout=2');
ok(wait_until('B granted on node2', sub { converged('node2', 'pa', 'A', 'B') }),
	'B joins node2 and is granted shard 1 of 2 once A released it')
  or diag(describe_state('node2', 'pa'));
my $b_view = view('node2', 'pa');
like($b_view->{B} // '', qr{^active 1/2 }, '... B works on shard 1 of 2');
like(assignment('node1', 'pa'), qr{^A=0/1 \d+$}, 'node1 never received B (it has A holding every key)');
ok((psql('node1', "SELECT pg_last_wal_receive_lsn() < '" . psql_ok('node2', 'SELECT pg_current_wal_lsn()') . "'") // '') eq 't',
	'... its WAL lags behind node2\'s');
$max_before = max_epoch_seen('A', 'B');
# Let B heartbeat on its grant at least once more: its lease runs from there.
my $b_beats = psql_ok('node2', "SELECT last_heartbeat FROM shard_coordinator.members "
	  . "WHERE cluster = 'pa' AND member = 'B'");
wait_until('a heartbeat of B', sub {
		(psql('node2', "SELECT last_heartbeat > '$b_beats' FROM shard_coordinator.members "
			  . "WHERE cluster = 'pa' AND member = 'B'") // '') eq 't' });

%offset = map { $_ => length(log_of($_)) } ('A', 'B');
$t_kill = now();
$pm = postmaster_pid('node2');
ok($pm, "node2's postmaster runs (pid " . ($pm // '?') . ')');
kill 'KILL', $pm if $pm;
# The partitioned walsender goes with its server (its connection closes
# without having sent B's WAL).
kill 'KILL', $walsender;
@stopped = ();
$t_promoted = wait_until('Patroni to promote node1',
	sub { is_primary('node1') && (members_of_cluster()->{node1}{role} // '') eq 'leader' && now() });
ok($t_promoted, 'SIGKILL of the primary\'s postmaster: Patroni promotes the asynchronous standby')
  or diag(describe_cluster());
note(sprintf('SIGKILL to promoted: %.1f s', ($t_promoted // now()) - $t_kill));
my $t_join_c = now();
start_agent('pa', 'C');

my $held;
ok( wait_until('grants held on node1', sub {
			$held = psql('node1', q{
				SELECT round(extract(epoch FROM c.grants_held_until - a.backend_start) * 1000)
				       || ' ' || c.failover_safe
				  FROM shard_coordinator.clusters c, pg_stat_activity a
				 WHERE c.cluster = 'pa' AND a.backend_type = 'shard_coordinator'
				   AND c.grants_held_until IS NOT NULL});
			defined $held && $held ne '';
		}),
	'the promoted server holds its grants (clusters.grants_held_until)');
my ($held_ms, $safe) = split / /, $held // '0 ?';
ok($held_ms >= $LEASE * 1000 - 50 && $held_ms <= $LEASE * 1000 + 1000,
	"... until one full lease after its worker started (${held_ms} ms)");
is($safe, 'false', '... and does not call the cluster failover-safe');
ok( wait_until('C placed', sub {
			(psql('node1', "SELECT state FROM shard_coordinator.members "
				  . "WHERE cluster = 'pa' AND member = 'C'") // '') eq 'active' }),
	'C joins the promoted server and is placed');

ok(wait_until('A and C on node1', sub { converged('node1', 'pa', 'A', 'C') }),
	'in the end A and C hold shards 0 and 1 of 2 on node1')
  or diag(describe_state('node1', 'pa'));
my ($c_life) = lives('C');
ok($c_life && $c_life->{start} >= $t_kill + $LEASE,
	sprintf('C\'s child started only one lease after the crash (%.2f s after it)',
		$c_life ? $c_life->{start} - $t_kill : -1));
ok( wait_until('B to fence itself', sub { substr(log_of('B'), $offset{B}) =~ /assignment: lost/ }, 10),
	'B, cut off with the old primary, fenced itself when its lease ended');
my ($b_life) = grep { $_->{shard} == 1 } lives('B');
ok($b_life && defined $b_life->{end}, '... its child is gone');
my $gap = ($b_life && defined $b_life->{end} && $c_life) ? $c_life->{start} - $b_life->{end} : undef;
ok(defined $gap && $gap >= 0,
	'... before C\'s child started on its keys ('
	  . (defined $gap ? sprintf('%.2f s before', $gap) : 'B\'s or C\'s child not found') . ')');
like(view('node1', 'pa')->{A} // '', qr{^active 0/2 }, 'A keeps shard 0');
ok(max_epoch_seen('A', 'C') >= (2 << 32) && max_epoch_seen('A', 'C') > $max_before,
	'the epochs of the promoted server are in timeline 3\'s range, above the old primary\'s');
check_epochs('asynchronous failover', 'A', 'B', 'C');
check_no_overlap('asynchronous failover', 'node1', 2, 'A', 'B', 'C');

ok(rejoined('node2', 'node1', 0),
	'the old primary, which had diverged, rejoins as a standby')
  or diag(describe_cluster());
ok(slurp_file("$logs/patroni-node2.log") =~ /running pg_rewind/, '... after pg_rewind')
  or diag(join("\n", grep { /rewind|diverg|timeline|reinit|crash|starting|follow/i }
		split /\n/, slurp_file("$logs/patroni-node2.log")));
caught_up('node1', 'node2');
like(assignment('node2', 'pa'), qr{^A=0/2 \d+,C=1/2 \d+$}, '... and has the promoted server\'s assignment');

for my $m ('A', 'C')
{
	is(stop_proc("agent-$m", 15), 0, "agent $m leaves on SIGTERM and exits 0");
}
stop_proc('agent-B', 15);
ok(!%{ children() }, 'no child is left');

done_testing();
