# PgBouncer in transaction pooling mode in front of the coordinator.
#
# Heartbeats are single statements, so they work through any pooling mode.
# LISTEN does not: in transaction mode the LISTEN runs on whichever server
# connection the pooler lends for that one transaction, and a notification
# reaches whatever client happens to be using that server connection later
# (or nobody). The agent must therefore converge from its heartbeat rows
# alone. Two phases:
#
# 1. plain transaction pooling (two server connections for all clients):
#    psql heartbeats and leave through the pooler; three agents, a join, a
#    SIGKILL: each time every agent's child ends up with the assignment the
#    server holds;
# 2. the pooler restarted with server_reset_query = 'UNLISTEN *' run after
#    every transaction, so no LISTEN survives: the agents reconnect, and after
#    a graceful stop and a configure change they still converge, with no
#    notification received at all (their -vv logs show none).
#
# Needs the Debian package pgbouncer. PgBouncer refuses to run as root; the
# TAP tests run as the postgres user (scripts/run-tap.sh).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

sub find_program
{
	my ($name, @fallback) = @_;
	for my $dir (split(/:/, $ENV{PATH} // ''), @fallback)
	{
		return "$dir/$name" if -x "$dir/$name";
	}
	return undef;
}

my $pgbouncer = find_program('pgbouncer', '/usr/sbin', '/usr/bin');
my $agent = find_program('shard-coordinator', '/usr/local/bin', '/usr/bin');
if (!$pgbouncer)
{
	fail('pgbouncer is installed (Debian package pgbouncer)');
	done_testing();
	exit 0;
}
if (!$agent)
{
	fail('shard-coordinator is installed (make install-client)');
	done_testing();
	exit 0;
}

my $timeout = $PostgreSQL::Test::Utils::timeout_default;
my $hb_ms = 300;

my $node = PostgreSQL::Test::Cluster->new('pgbouncer_backend');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION shard_coordinator');
$node->safe_psql('postgres',
	"SELECT shard_coordinator.configure('pb', heartbeat_interval => '${hb_ms}ms', "
	  . "grace_period => '1s', reshard_interval => '0')");

# ---- PgBouncer ----

my $dir = PostgreSQL::Test::Utils::tempdir();
my $bport = PostgreSQL::Test::Cluster::get_free_port();
my $user = getpwuid($>);
my $bouncer;

sub start_bouncer
{
	my ($extra) = @_;
	append_to_file("$dir/userlist.txt", qq{"$user" ""\n})
	  unless -e "$dir/userlist.txt";
	my $host = $node->host;
	my $port = $node->port;
	open(my $fh, '>', "$dir/pgbouncer.ini") or die $!;
	print $fh <<"EOF";
[databases]
postgres = host=$host port=$port dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 100
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
$extra
EOF
	close($fh);
	$bouncer = IPC::Run::start([ $pgbouncer, "$dir/pgbouncer.ini" ],
		'<', \undef, '>>', "$dir/pgbouncer.out", '2>&1');
	# Up when a query goes through.
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my ($rc) = bpsql('SELECT 1');
		return if $rc == 0;
		usleep(50_000);
	}
	die "pgbouncer did not start: " . slurp_file("$dir/pgbouncer.log");
}

sub stop_bouncer
{
	return unless $bouncer;
	$bouncer->signal('TERM');    # immediate shutdown
	$bouncer->finish;
	undef $bouncer;
}

# psql through PgBouncer, the statements on stdin (so each one is its own
# transaction): (exit code, stdout, stderr)
sub bpsql
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
			'-h', '127.0.0.1', '-p', $bport, '-d', 'postgres', '-U', $user
		],
		'<', \$sql, '>', \$out, '2>', \$err);
	my $rc = $? >> 8;
	chomp $out;
	return ($rc, $out, $err);
}

sub wait_until
{
	my ($what, $check) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my $value = $check->();
		return $value if $value;
		usleep(20_000);
	}
	diag("timed out waiting for $what");
	return undef;
}

start_bouncer('');

# ---- heartbeats through the pooler ----

my ($rc, $out, $err) = bpsql(
	"SELECT state FROM shard_coordinator.heartbeat('pb', 'via-psql')");
is($rc, 0, 'a heartbeat through PgBouncer in transaction mode works');
like($out, qr/^(pending|active)$/, '... and registers the member');
ok( wait_until(
		'the psql member to become active',
		sub {
			my (undef, $o) = bpsql(
				"SELECT state || '|' || shard || '|' || num_shards "
				  . "FROM shard_coordinator.heartbeat('pb', 'via-psql')");
			return $o eq 'active|0|1';
		}),
	'heartbeats through PgBouncer return the assignment (shard 0 of 1)');
is( $node->safe_psql('postgres',
		"SELECT member || '=' || state FROM shard_coordinator.members "
		  . "WHERE cluster = 'pb'"),
	'via-psql=active',
	'the server sees the member');
# Ten heartbeats, each its own transaction, on whichever server connection.
my $many = join('', map { "SELECT shard FROM shard_coordinator.heartbeat('pb', 'via-psql');\n" } 1 .. 10);
($rc, $out) = bpsql($many);
is($out, join("\n", ('0') x 10), 'ten pooled heartbeats in a row all answer');
($rc, $out) = bpsql("SELECT shard_coordinator.leave('pb', 'via-psql')");
is($out, 't', 'leave through PgBouncer works');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM shard_coordinator.members WHERE cluster = 'pb'"),
	'... and removes the member');

# ---- agents through the pooler ----

my $child = "$dir/child.sh";
append_to_file($child, <<'EOF');
#!/bin/sh
echo "$$ $SHARD_MEMBER $SHARD_INDEX $SHARD_COUNT $SHARD_EPOCH" > "$SC_TEST_DIR/child.$$.tmp" &&
  mv "$SC_TEST_DIR/child.$$.tmp" "$SC_TEST_DIR/child.$$"
exec sleep 3600
EOF
chmod 0755, $child;
my $dsn = "host=127.0.0.1 port=$bport dbname=postgres user=$user";
my %agents;    # member -> pid, of the running agents
my %logs;      # member -> log file, of every agent started

sub start_agent
{
	my ($member) = @_;
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDIN, '<', '/dev/null');
		open(STDOUT, '>>', "$dir/agent-$member.log");
		open(STDERR, '>&', \*STDOUT);
		$ENV{SC_TEST_DIR} = $dir;
		delete $ENV{PGAPPNAME};    # the agent's own name, as in production
		exec($agent, '-vv', 'run', '--cluster', 'pb', '--member', $member,
			'--dsn', $dsn, '--kill-timeout', '500ms', '--', $child)
		  or POSIX::_exit(127);
	}
	$agents{$member} = $pid;
	$logs{$member} = "$dir/agent-$member.log";
}

sub alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	return $stat !~ /\) [ZX] /;
}

# Live children: member -> "index|count|epoch"
sub children
{
	my %found;
	opendir(my $dh, $dir) or die $!;
	for my $name (readdir $dh)
	{
		next unless $name =~ /^child\.(\d+)$/;
		next unless alive($1);
		my $line = slurp_file("$dir/$name");
		my ($pid, $member, $index, $count, $epoch) = split(' ', $line);
		$found{$member} = "$index|$count|$epoch";
	}
	closedir $dh;
	return \%found;
}

# The server's view: member -> "shard|num_shards|epoch" of active members.
sub view
{
	my %view;
	my $rows = $node->safe_psql('postgres',
		"SELECT member, state, shard, num_shards, epoch "
		  . "FROM shard_coordinator.members WHERE cluster = 'pb'");
	for my $row (split /\n/, $rows)
	{
		my ($member, $state, $shard, $n, $epoch) = split /\|/, $row;
		return undef if $state ne 'active';    # not settled
		$view{$member} = "$shard|$n|$epoch";
	}
	return \%view;
}

# True once the members are exactly @members, all active with shards
# 0..n-1, and each agent's (only) child has the server's assignment.
sub converged
{
	my @members = sort @_;
	my $view = view() or return 0;
	return 0 unless join(',', sort keys %$view) eq join(',', @members);
	my @shards = sort { $a <=> $b } map { (split /\|/)[0] } values %$view;
	return 0 unless "@shards" eq join(' ', 0 .. $#members);
	my $kids = children();
	return 0 unless join(',', sort keys %$kids) eq join(',', @members);
	for my $m (@members)
	{
		return 0 unless $kids->{$m} eq $view->{$m};
	}
	return 1;
}

sub describe_state
{
	my $view = view() // {};
	my $kids = children();
	return 'view: '
	  . join(', ', map { "$_=$view->{$_}" } sort keys %$view)
	  . '; children: '
	  . join(', ', map { "$_=$kids->{$_}" } sort keys %$kids);
}

sub cluster_epoch
{
	return $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'pb'");
}

# Time from the server's reshard (epoch change seen) to convergence.
sub timed_convergence
{
	my ($what, $epoch_before, @members) = @_;
	my $resharded = wait_until("a reshard after $what",
		sub { cluster_epoch() > $epoch_before ? time : 0 });
	my $done = wait_until("convergence after $what",
		sub { converged(@members) ? time : 0 });
	ok($done, "agents through PgBouncer converge after $what")
	  or diag(describe_state());
	note(sprintf("%s: converged %.0f ms after the reshard was visible",
			$what, 1000 * ($done - $resharded)))
	  if $done && $resharded;
}

sub log_count
{
	my ($pattern, $from) = @_;
	my $n = 0;
	for my $m (sort keys %logs)
	{
		my $log = slurp_file($logs{$m});
		$log = substr($log, $from->{$m} // 0);
		$n += () = $log =~ /$pattern/g;
	}
	return $n;
}

sub log_sizes
{
	return { map { $_ => -s $logs{$_} } keys %logs };
}

start_agent($_) for qw(a1 a2 a3);
ok(wait_until('three agents', sub { converged(qw(a1 a2 a3)) }),
	'three agents through PgBouncer get shards 0..2 of 3')
  or diag(describe_state());

my $epoch = cluster_epoch();
start_agent('a4');
timed_convergence('a fourth agent joined', $epoch, qw(a1 a2 a3 a4));

# SIGKILL: the survivors learn after the expiry.
my $victim = (grep { (split /\|/, children()->{$_})[0] eq '1' } keys %agents)[0];
$epoch = cluster_epoch();
kill 'KILL', $agents{$victim};
waitpid($agents{$victim}, 0);
delete $agents{$victim};
my @left = sort keys %agents;
timed_convergence("SIGKILL of $victim (shard 1)", $epoch, @left);

my $notes = log_count(qr/ debug: notification: /);
my $beats = log_count(qr/ debug: heartbeat: /);
note("phase 1: the agents logged $notes notifications for themselves "
	  . "and $beats heartbeats");

# ---- phase 2: no LISTEN survives its transaction ----

# PgBouncer drops a notification that arrives on an idle server connection,
# with a warning in its log.
my $dropped = () = slurp_file("$dir/pgbouncer.log") =~ /got packet 'A' from server when not linked/g;
note("phase 1: PgBouncer dropped $dropped notifications (\"got packet 'A' from server when not linked\")");

stop_bouncer();
my $bouncer_log_from = -s "$dir/pgbouncer.log";
start_bouncer("server_reset_query = UNLISTEN *\nserver_reset_query_always = 1\n");
my $reconnected = wait_until(
	'the agents to reconnect',
	sub {
		for my $m (keys %agents)
		{
			my $n = () = slurp_file("$dir/agent-$m.log") =~ /connected to /g;
			return 0 if $n < 2;
		}
		return 1;
	});
ok($reconnected, 'the agents reconnect after a PgBouncer restart');
ok(wait_until('convergence after the restart', sub { converged(@left) }),
	'... and keep their assignments')
  or diag(describe_state());
my $from = log_sizes();

# A graceful stop: the agent leaves, the others are told (by heartbeat).
my $leaver = $left[0];
$epoch = cluster_epoch();
kill 'TERM', $agents{$leaver};
waitpid($agents{$leaver}, 0);
is($? >> 8, 0, "the agent $leaver exits 0 after SIGTERM (left through PgBouncer)");
delete $agents{$leaver};
@left = sort keys %agents;
timed_convergence('a graceful leave (heartbeats only)', $epoch, @left);

# A join, so the remaining members' count changes once more.
$epoch = cluster_epoch();
start_agent('a5');
$from->{a5} = 0;
@left = sort keys %agents;
timed_convergence('a join (heartbeats only)', $epoch, @left);

is(log_count(qr/ debug: notification: /, $from), 0,
	'no notification reached any agent: they converged by heartbeat alone');
ok(log_count(qr/ debug: heartbeat: /, $from) > 0,
	'... from their heartbeat rows');
is( scalar(() = substr(slurp_file("$dir/pgbouncer.log"), $bouncer_log_from)
		  =~ /got packet 'A'/g),
	0,
	'with UNLISTEN * as reset query PgBouncer has no notification to drop');
is(log_count(qr/ (warning|error): /, $from), 0,
	'the agents logged no warning or error meanwhile')
  or diag(join('', map { slurp_file($logs{$_}) } sort keys %logs));

# Stop everyone gracefully.
for my $m (sort keys %agents)
{
	kill 'TERM', $agents{$m};
	waitpid($agents{$m}, 0);
	is($? >> 8, 0, "agent $m exits 0");
	delete $agents{$m};
}
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM shard_coordinator.members WHERE cluster = 'pb'"),
	'every agent left through PgBouncer');

stop_bouncer();
$node->stop;

END
{
	kill 'KILL', values %agents if %agents;
	$bouncer->kill_kill if $bouncer;
}

done_testing();
