# A step of the server's wall clock moves no deadline: leases, the reshard
# gate and expiry run on the monotonic clock.
#
# The server runs under libfaketime (Debian's libfaketime), which offsets
# the wall clock of every server process by what a file says and leaves
# CLOCK_MONOTONIC alone. Five members heartbeat every 100 ms (heartbeat 1 s,
# grace 1 s); the wall clock steps an hour forward, then two hours back.
# Nobody may expire and no shard may move; the views go on showing sane
# times (expires_at a lease after last_heartbeat).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);

my $faketime = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
plan skip_all => "libfaketime is not installed ($faketime)" unless -e $faketime;

my $offset_file = PostgreSQL::Test::Utils::tempdir() . '/faketime';
sub set_offset
{
	my ($offset) = @_;
	open(my $fh, '>', $offset_file) or die "cannot write $offset_file: $!";
	print $fh "$offset\n";
	close($fh);
	return;
}
set_offset('+0');
my $node;
{
	# Only the server runs under libfaketime (the test's own clock is real).
	# It reads the offset file again at most every second.
	local $ENV{LD_PRELOAD} = $faketime;
	local $ENV{FAKETIME_TIMESTAMP_FILE} = $offset_file;
	local $ENV{FAKETIME_CACHE_DURATION} = '1';
	local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = '1';
	local $ENV{FAKETIME_DONT_RESET} = '1';
	$node = SCTest::new_node('wall_clock_step');
}
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('w', heartbeat_interval => '1s',
	         grace_period => '1s', reshard_interval => '0');
	INSERT INTO public.alive SELECT 'w', 'm' || i FROM generate_series(1, 5) i;
});
# pg_sleep() follows the wall clock: the heartbeats come from outside.
my $driver = SCTest::start_client_driver($node, interval => 0.1);
$node->poll_query_until('postgres', q{
	SELECT count(*) = 5 FROM shard_coordinator.members WHERE cluster = 'w' AND state = 'active'})
  or die 'the members were not assigned';

my $assignment = q{
	SELECT (SELECT epoch FROM shard_coordinator.clusters WHERE cluster = 'w') || ' '
	       || string_agg(member || '=' || shard || '/' || state, ',' ORDER BY member)
	  FROM shard_coordinator.members WHERE cluster = 'w'};
my $sane_times = q{
	SELECT bool_and(expires_at - last_heartbeat = interval '2 s')
	  FROM shard_coordinator.members WHERE cluster = 'w'};

my $current_offset = 0;
for my $step ([ 3600, 'an hour forward' ], [ -3600, 'two hours back' ])
{
	my ($offset, $what) = @$step;
	my $delta = $offset - $current_offset;
	$current_offset = $offset;
	my $before = $node->safe_psql('postgres', $assignment);
	my $server_now = $node->safe_psql('postgres', 'SELECT extract(epoch FROM clock_timestamp())');
	set_offset(sprintf('%+d', $offset));
	$node->poll_query_until('postgres',
		"SELECT abs(extract(epoch FROM clock_timestamp()) - $server_now - ($delta)) < 60")
	  or die "the server's wall clock did not step";
	# Every member heartbeats again; then nothing may have moved, looking
	# for 2 s more (the expiry would come within milliseconds).
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 5 FROM shard_coordinator.members
		 WHERE cluster = 'w' AND last_heartbeat > clock_timestamp() - interval '200 ms'})
	  or die 'the members do not heartbeat';
	my $after = $node->safe_psql('postgres', $assignment);
	my $until = time() + 2;
	while (time() < $until && $after eq $before)
	{
		sleep(0.05);
		$after = $node->safe_psql('postgres', $assignment);
	}
	is($after, $before, "wall clock $what: no member expired, no shard moved");
	is($node->safe_psql('postgres', $sane_times), 't',
		"... and the members view shows expires_at a lease after last_heartbeat");
}

# Coordination goes on: a leave reshards at once.
$node->safe_psql('postgres', q{
	DELETE FROM public.alive WHERE member = 'm5';
	SELECT shard_coordinator.leave('w', 'm5')});
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 4 FROM shard_coordinator.members WHERE cluster = 'w' AND state = 'active'}),
	'a leave reshards after the steps');

SCTest::stop_driver($node, $driver);
$node->stop;
done_testing();
