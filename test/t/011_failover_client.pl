# Failover seen from the agents: `shard-coordinator run` with a multi-host
# connection string (host=H,H port=P1,P2 target_session_attrs=read-write).
#
# 1. The primary crashes (immediate stop), the standby is promoted: the
#    agents find the new primary by themselves, keep their shards with the
#    same epoch (no reshard; the cluster's epoch goes on in the new
#    timeline's range), and their children keep running (this failover is
#    shorter than the lease: grace_period is 30 s).
# 2. A second failover that outlasts the lease (grace_period 1.5 s): with no
#    primary the agents fence themselves and stop their children; the next
#    primary (a standby on the first primary's port) reloads the same
#    assignment, and the agents restart their children with the same shard,
#    count and epoch.
# 3. The last primary coordinates: a graceful leave reshards the others.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use POSIX ();
use Time::HiRes qw(time usleep);

my $agent;
for my $d (split(/:/, $ENV{PATH} // ''), '/usr/local/bin', '/usr/bin')
{
	if (-x "$d/shard-coordinator") { $agent = "$d/shard-coordinator"; last; }
}
if (!$agent)
{
	fail('shard-coordinator is installed (make install-client)');
	done_testing();
	exit 0;
}
my $timeout = $PostgreSQL::Test::Utils::timeout_default;

my $primary = PostgreSQL::Test::Cluster->new('fo_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION shard_coordinator');
$primary->safe_psql('postgres',
	"SELECT shard_coordinator.configure('fo', heartbeat_interval => '500ms', "
	  . "grace_period => '30s', reshard_interval => '0')");
$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('fo_standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;

my $dir = PostgreSQL::Test::Utils::tempdir();
my $child = "$dir/child.sh";
append_to_file($child, <<'EOF');
#!/bin/sh
echo "$$ $SHARD_MEMBER $SHARD_INDEX $SHARD_COUNT $SHARD_EPOCH" > "$SC_TEST_DIR/child.$$.tmp" &&
  mv "$SC_TEST_DIR/child.$$.tmp" "$SC_TEST_DIR/child.$$"
exec sleep 3600
EOF
chmod 0755, $child;

my $dsn = sprintf(
	'host=%s,%s port=%s,%s dbname=postgres target_session_attrs=read-write',
	$primary->host, $standby->host, $primary->port, $standby->port);
my %agents;    # member -> pid

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
		exec($agent, '-v', 'run', '--cluster', 'fo', '--member', $member,
			'--dsn', $dsn, '--kill-timeout', '2s', '--', $child)
		  or POSIX::_exit(127);
	}
	$agents{$member} = $pid;
}

sub alive
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/stat") or return 0;
	my $stat = <$fh>;
	return $stat !~ /\) [ZX] /;
}

# Live children: member -> "pid|index|count|epoch"
sub children
{
	my %found;
	opendir(my $dh, $dir) or die $!;
	for my $name (readdir $dh)
	{
		next unless $name =~ /^child\.(\d+)$/;
		next unless alive($1);
		my ($pid, $member, $index, $count, $epoch) =
		  split(' ', slurp_file("$dir/$name"));
		$found{$member} = "$pid|$index|$count|$epoch";
	}
	closedir $dh;
	return \%found;
}

# Active members on $node: member -> "shard|num_shards|epoch"; undef while
# anyone is not active.
sub view
{
	my ($node) = @_;
	my %view;
	my $rows = $node->safe_psql('postgres',
		"SELECT member, state, shard, num_shards, epoch "
		  . "FROM shard_coordinator.members WHERE cluster = 'fo'");
	for my $row (split /\n/, $rows)
	{
		my ($member, $state, $shard, $n, $epoch) = split /\|/, $row;
		return undef if $state ne 'active';
		$view{$member} = "$shard|$n|$epoch";
	}
	return \%view;
}

sub converged
{
	my ($node, @members) = @_;
	@members = sort @members;
	my $view = view($node) or return 0;
	return 0 unless join(',', sort keys %$view) eq join(',', @members);
	my @shards = sort { $a <=> $b } map { (split /\|/)[0] } values %$view;
	return 0 unless "@shards" eq join(' ', 0 .. $#members);
	my $kids = children();
	return 0 unless join(',', sort keys %$kids) eq join(',', @members);
	for my $m (@members)
	{
		my (undef, @env) = split /\|/, $kids->{$m};
		return 0 unless join('|', @env) eq $view->{$m};
	}
	return 1;
}

sub wait_until
{
	my ($what, $check) = @_;
	my $deadline = time + $timeout;
	while (time < $deadline)
	{
		my $value = $check->();
		return $value if $value;
		usleep(50_000);
	}
	diag("timed out waiting for $what");
	return undef;
}

sub describe_state
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(member || '=' || state || ':' || coalesce(shard::text, '-') "
		  . "|| '/' || coalesce(epoch::text, '-'), ', ' ORDER BY member) "
		  . "FROM shard_coordinator.members WHERE cluster = 'fo'")
	  . '; children: '
	  . join(', ', map { "$_=" . children()->{$_} } sort keys %{ children() });
}

sub epoch_of
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'fo'");
}

sub log_of { return slurp_file("$dir/agent-$_[0].log"); }

start_agent($_) for qw(f1 f2 f3);
ok(wait_until('three agents on the primary', sub { converged($primary, qw(f1 f2 f3)) }),
	'three agents with a multi-host DSN get shards 0..2 on the primary')
  or diag(describe_state($primary));
my $before = children();
my $view_before = view($primary);
my $epoch_before = epoch_of($primary);
like($_, qr/connected to \Q${\ $primary->host}\E:${\ $primary->port}/,
	'the agent connected to the primary')
  for map { log_of($_) } sort keys %agents;

$primary->wait_for_catchup($standby);
is_deeply(
	{
		map { my @f = split /\|/; ($f[0] => "$f[1]|$f[2]|$f[3]") }
		  split /\n/,
		$standby->safe_psql('postgres',
			"SELECT member, shard, num_shards, epoch FROM shard_coordinator.members "
			  . "WHERE cluster = 'fo'")
	},
	$view_before,
	'the standby has the assignment');

# Failover.
my %log_offset = map { $_ => length(log_of($_)) } keys %agents;
my $t_crash = time;
$primary->stop('immediate');
$standby->promote;
my $t_promoted = time;

my $standby_at = quotemeta($standby->host . ':' . $standby->port);
my $reconnected = wait_until(
	'every agent to connect to the new primary',
	sub {
		for my $m (keys %agents)
		{
			return 0
			  unless substr(log_of($m), $log_offset{$m}) =~ /connected to $standby_at/;
		}
		return time;
	});
ok($reconnected, 'every agent found the new primary through its multi-host DSN');
note(sprintf('crash to promoted: %.1f s; crash to all agents reconnected: %.1f s',
		$t_promoted - $t_crash, ($reconnected // time) - $t_crash));

# Every agent heartbeats on the new primary (loading the tables stamps the
# members too, so: a heartbeat after all three are connected).
ok( $standby->poll_query_until('postgres',
		"SELECT count(*) = 3 FROM pg_stat_activity "
		  . "WHERE application_name = 'shard-coordinator'"),
	'the three agents are connected to the new primary');
my $connected_at = $standby->safe_psql('postgres', 'SELECT now()');
ok( $standby->poll_query_until('postgres',
		"SELECT count(*) = 3 FROM shard_coordinator.members "
		  . "WHERE cluster = 'fo' AND last_heartbeat > '$connected_at'"),
	'every agent heartbeats on the new primary');
is_deeply(view($standby), $view_before,
	'the same members keep the same shards on the new primary');
# No reshard: the members' epochs are the same; the cluster's goes on in
# the promoted server's timeline range (timeline 2: from 1 << 32 on, above
# anything the old primary could have published).
is(epoch_of($standby), (1 << 32) - 1,
	'... no reshard; the cluster epoch goes on in the new timeline\'s range');
ok(wait_until('the children', sub { converged($standby, qw(f1 f2 f3)) }),
	'the children run with the assignment of the new primary')
  or diag(describe_state($standby));
is_deeply(children(), $before,
	'the children kept running through the failover (same pids, same environment)');
for my $m (sort keys %agents)
{
	my $after = substr(log_of($m), $log_offset{$m});
	unlike($after, qr/assignment: /,
		"agent $m reported no assignment change through the failover");
	ok(alive($agents{$m}), "agent $m is still running");
}

# ---- A second failover, longer than the lease ----
# Shorter settings now: the agents fence themselves (children stopped) while
# no primary is reachable. The next primary (a standby of the current one, on
# the port of the first primary, which is in the DSN) reloads the same
# assignment and gives every member a full expiry period: the agents get it
# back from their first heartbeat and restart their children with the same
# shard and epoch.
$standby->safe_psql('postgres',
	"SELECT shard_coordinator.configure('fo', heartbeat_interval => '300ms', "
	  . "grace_period => '1500ms')");
ok( wait_until(
		'the agents to take the new interval',
		sub {
			$standby->safe_psql('postgres',
				"SELECT count(*) = 3 FROM shard_coordinator.members "
				  . "WHERE cluster = 'fo' AND expires_at - last_heartbeat < '2s'");
		}),
	'the agents heartbeat at the new interval');
ok(wait_until('convergence', sub { converged($standby, qw(f1 f2 f3)) }),
	'the assignment is unchanged after configure')
  or diag(describe_state($standby));
$view_before = view($standby);
$epoch_before = epoch_of($standby);
$before = children();

$standby->backup('b2');
my $third = PostgreSQL::Test::Cluster->new('fo_third', port => $primary->port);
$third->init_from_backup($standby, 'b2', has_streaming => 1);
$third->start;
$standby->wait_for_catchup($third);

%log_offset = map { $_ => length(log_of($_)) } keys %agents;
$standby->stop('immediate');
ok( wait_until(
		'the agents to fence themselves',
		sub {
			for my $m (keys %agents)
			{
				return 0
				  unless substr(log_of($m), $log_offset{$m}) =~ /assignment: lost/;
			}
			return !%{ children() };
		}),
	'with no primary, every agent fences itself: its lease ran out, its child is stopped')
  or diag(describe_state($third));
$third->promote;
ok( wait_until(
		'the agents on the third primary',
		sub { converged($third, qw(f1 f2 f3)) }),
	'after the promotion the agents run their children again')
  or diag(describe_state($third));
is_deeply(view($third), $view_before,
	'... with the same shards as before the failover');
is(epoch_of($third), (2 << 32) - 1,
	'... no reshard; the cluster epoch goes on in timeline 3\'s range');
my $after = children();
is_deeply(
	{ map { my @f = split /\|/, $after->{$_}; ($_ => "@f[1..3]") } keys %$after },
	{ map { my @f = split /\|/, $before->{$_}; ($_ => "@f[1..3]") } keys %$before },
	'the new children have the same SHARD_INDEX, SHARD_COUNT, SHARD_EPOCH');
for my $m (sort keys %agents)
{
	my $log = substr(log_of($m), $log_offset{$m});
	my @changes = $log =~ /assignment: (\w+)/g;
	is("@changes", 'lost active',
		"agent $m: lost, then active again (no other assignment change)")
	  or diag($log);
}

# The new primary coordinates: a graceful leave reshards the others.
my ($leaver) = grep { (split /\|/, $view_before->{$_})[0] eq '1' } keys %$view_before;
kill 'TERM', $agents{$leaver};
waitpid($agents{$leaver}, 0);
is($? >> 8, 0, "agent $leaver leaves and exits 0 on the new primary");
delete $agents{$leaver};
my @left = sort keys %agents;
ok(wait_until('a reshard on the new primary', sub { converged($third, @left) }),
	'the others are resharded by the new primary')
  or diag(describe_state($third));
# An exclusive handover: the member that moves releases its old shard at
# one epoch and is granted the leaver's at the next.
is(epoch_of($third), (2 << 32) + 1, '... in one handover (two epochs)');

for my $m (sort keys %agents)
{
	kill 'TERM', $agents{$m};
	waitpid($agents{$m}, 0);
	is($? >> 8, 0, "agent $m exits 0");
	delete $agents{$m};
}
$third->stop;

END
{
	kill 'KILL', values %agents if %agents;
}

done_testing();
