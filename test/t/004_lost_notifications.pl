# Lost notifications: notifications are an optimisation, the heartbeat row is
# the truth. A member LISTENing on its channel whose connection drops while a
# reshard changes its assignment never gets that NOTIFY; after reconnecting,
# its next heartbeat tells it the same assignment (equal to what
# member_state/cluster_state store, to the live view, and to the payload a
# second listener on the same channel did receive).
#
# Cases:
#   1. the connection drops as the reshard happens (terminated in the same
#      statement that triggers it); the member stays alive meanwhile;
#   2. after reconnecting, LISTEN works again: the next change arrives;
#   3. the connection stays away longer than the expiry: the member is
#      removed (its "removed" NOTIFY is lost too); its next heartbeat
#      registers it anew as pending, never returns the stale assignment.
#
# Members are kept alive by a "driver": a plpgsql loop in a psql session of
# its own that heartbeats every 20 ms whoever is listed in public.alive,
# acknowledging the epoch each member's previous heartbeat returned (they do
# no work). Handovers are exclusive: a member that moves is first told to
# release its shard (shard null, still active), then, at a later epoch, its
# new shard; the tests follow a member to its last notification.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $node = PostgreSQL::Test::Cluster->new('lost_notifications');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'shard_coordinator'\n"
	  . "shard_coordinator.database = 'postgres'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator;
	CREATE TABLE public.alive (member text PRIMARY KEY);
	SELECT shard_coordinator.configure('n', heartbeat_interval => '500ms',
	         grace_period => '1500ms', reshard_interval => '0');
});

my ($driver_out, $driver_err) = ('', '');
my $driver = IPC::Run::start(
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
		           LATERAL shard_coordinator.heartbeat('n', a.member,
		                                               (seen ->> a.member)::bigint) h;
		    PERFORM pg_sleep(0.02);
		  END LOOP;
		END $$}
	],
	'<', \undef, '>', \$driver_out, '2>', \$driver_err);

for my $i (1 .. 3)
{
	$node->safe_psql('postgres', "INSERT INTO public.alive VALUES ('m$i')");
	$node->poll_query_until('postgres', qq{
		SELECT state = 'active' AND shard IS NOT NULL
		   AND NOT (SELECT handover_pending FROM shard_coordinator.clusters WHERE cluster = 'n')
		  FROM shard_coordinator.members
		 WHERE cluster = 'n' AND member = 'm$i'})
	  or die "m$i was not assigned: $driver_err";
}
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || shard, ',' ORDER BY member)
		  FROM shard_coordinator.member_state WHERE cluster = 'n'}),
	'm1=0,m2=1,m3=2',
	'm1, m2, m3 hold shards 0, 1, 2');

my $channel = $node->safe_psql('postgres', "SELECT shard_coordinator.channel('n', 'm3')");
# A change of num_shards alone reaches m3 on the cluster's channel.
my $cluster_channel = $node->safe_psql('postgres', "SELECT shard_coordinator.channel('n')");

# A psql session that LISTENs on m3's channel.
sub listener
{
	my ($appname) = @_;
	local $ENV{PGAPPNAME} = $appname;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	$session->set_query_timer_restart;
	session_query($session, "LISTEN $channel");
	session_query($session, "LISTEN $cluster_channel");
	return $session;
}

# A query on a session whose connection may be gone (psql then exits):
# (output so far, true if it failed).
sub try_query
{
	my ($session, $query) = @_;
	my ($out, $failed) = eval { $session->query($query) };
	return ($session->{stdout} // '', 1) if $@;
	return ($out, $failed);
}

sub close_session
{
	my ($session) = @_;
	eval { $session->quit };
	eval { $session->{run}->kill_kill };
	return;
}

my %queued;    # session -> payloads printed but not returned yet

# Runs a query on a listening session; notifications psql prints with the
# result are queued for next_notification, the rest is returned.
sub session_query
{
	my ($session, $query) = @_;
	my $out = $session->query_safe($query);
	my $queue = $queued{$session} //= [];
	push @$queue, map { decode_json($_) }
	  $out =~ /^Asynchronous notification "(?:$channel|$cluster_channel)" with payload "(.*?)" received.*$/mg;
	$out =~ s/^Asynchronous notification .*\n?//mg;
	$out =~ s/\n\z//;
	return $out;
}

# Waits (bounded) until the session has printed a notification on m3's
# channel; returns the oldest one not returned yet (its decoded payload), or
# undef.
sub next_notification
{
	my ($session) = @_;
	my $queue = $queued{$session} //= [];
	my $deadline = time() + $PostgreSQL::Test::Utils::timeout_default;
	while (!@$queue && time() < $deadline)
	{
		session_query($session, 'SELECT 1');
		sleep(0.05) unless @$queue;
	}
	return shift @$queue;
}

# The notifications of one handover, up to the one on m3's channel that
# settles it: skips those that withhold (active with no shard: release and
# wait) and those on the cluster channel; returns the first with a shard or
# another state (undef if none).
sub next_settled_notification
{
	my ($session) = @_;
	my $n = next_notification($session);
	$n = next_notification($session)
	  while defined $n
	  && (!defined $n->{member}
		|| (($n->{state} // '') eq 'active' && !defined $n->{shard}));
	return $n;
}

# m3's assignment as its heartbeat returns it, as stored, and as the live
# view shows it: "shard/num_shards/epoch/state".
my $heartbeat_query =
  q{SELECT coalesce(shard::text, '-') || '/' || num_shards || '/' || epoch || '/' || state
      FROM shard_coordinator.heartbeat('n', 'm3')};
my $stored_query = q{
	SELECT coalesce(m.shard::text, '-') || '/' || c.num_shards || '/'
	       || greatest(m.epoch, c.num_shards_epoch) || '/' || m.state
	  FROM shard_coordinator.member_state m JOIN shard_coordinator.cluster_state c USING (cluster)
	 WHERE m.cluster = 'n' AND m.member = 'm3'};
my $live_query = q{
	SELECT coalesce(shard::text, '-') || '/' || num_shards || '/' || epoch || '/' || state
	  FROM shard_coordinator.members WHERE cluster = 'n' AND member = 'm3'};

sub payload_string
{
	my ($p) = @_;
	return ($p->{shard} // '-') . "/$p->{num_shards}/$p->{epoch}/$p->{state}";
}

# --- 1. the connection drops as the reshard happens -------------------------
my $member_conn = listener('sc_m3');    # m3's own connection
my $witness = listener('sc_witness');    # another listener on the same channel
is(session_query($member_conn, $heartbeat_query), '2/3/' .
	  $node->safe_psql('postgres', q{
		SELECT greatest(m.epoch, c.num_shards_epoch)
		  FROM shard_coordinator.member_state m JOIN shard_coordinator.cluster_state c USING (cluster)
		 WHERE cluster = 'n' AND member = 'm3'})
	  . '/active',
	'm3 heartbeats over its own connection: shard 2 of 3');

# One statement: m3's connection is terminated and m1 leaves, which moves
# m3 from shard 2 to shard 0 (num_shards 3 -> 2).
$node->safe_psql('postgres', q{
	DELETE FROM public.alive WHERE member = 'm1';
	SELECT pg_terminate_backend(pid), shard_coordinator.leave('n', 'm1')
	  FROM pg_stat_activity WHERE application_name = 'sc_m3'});
my $pushed = next_settled_notification($witness);
ok(defined $pushed, 'the reshard sent notifications on the channel');
is(payload_string($pushed // {}), '0/2/' . ($pushed // {})->{epoch} . '/active',
	'... moving m3 to shard 0 of 2');
# The member's psql learns that its connection has gone (psql exits).
my ($out, $failed) = try_query($member_conn, 'SELECT 1');
ok($failed, "m3's connection is gone")
  or diag "m3's connection still works: $out";
unlike($out, qr/Asynchronous notification/, '... and it did not get the notification');
close_session($member_conn);

# Reconnect, LISTEN again, heartbeat: the row is what was pushed and stored.
$member_conn = listener('sc_m3');
my $row = session_query($member_conn, $heartbeat_query);
is($row, payload_string($pushed // {}),
	"m3's next heartbeat returns the assignment of the missed notification");
is($row, $node->safe_psql('postgres', $stored_query),
	'... which is what member_state and cluster_state store');
is($row, $node->safe_psql('postgres', $live_query), '... and what the members view shows');

# --- 2. after reconnecting, notifications arrive again ----------------------
$node->safe_psql('postgres', q{
	DELETE FROM public.alive WHERE member = 'm2';
	SELECT shard_coordinator.leave('n', 'm2')});
my $again = next_notification($member_conn);
ok(defined $again, 'after reconnecting and LISTEN, m3 gets the next notification');
# m2 left: m3 keeps shard 0, so it is told num_shards 1 on the cluster channel.
is(join('/', map { ($again // {})->{$_} // '-' } qw(member num_shards)), '-/1',
	'... on the cluster channel (m2 left, m3 did not move): num_shards 1');
ok(($again // {})->{epoch} > ($pushed // {})->{epoch}, '... with a higher epoch');
is(session_query($member_conn, $heartbeat_query), '0/1/' . ($again // {})->{epoch} . '/active',
	'... and its heartbeat agrees: shard 0 of 1 at that epoch');
my $seen = next_notification($witness);
$seen = next_notification($witness)
  while defined $seen && $seen->{epoch} < ($again // {})->{epoch};
is(($seen // {})->{epoch}, ($again // {})->{epoch}, 'the witness got it too');

# --- 3. the connection stays away past the expiry ---------------------------
# m3 stops heartbeating and its connection drops; m4 joins meanwhile.
my $epoch_before = $node->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.cluster_state WHERE cluster = 'n'");
$node->safe_psql('postgres', q{
	DELETE FROM public.alive WHERE member = 'm3';
	INSERT INTO public.alive VALUES ('m4');
	SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sc_m3'});
close_session($member_conn);
my $removed = next_notification($witness);
# m4 may join first (its own reshard, m3 unchanged) or together with the removal.
$removed = next_notification($witness)
  while defined $removed && ($removed->{state} // '') ne 'removed';
is(($removed // {})->{state}, 'removed', 'm3 expired: a "removed" notification was sent');
ok( $node->poll_query_until('postgres', q{
		SELECT string_agg(member || '=' || shard, ',') = 'm4=0'
		  FROM shard_coordinator.member_state WHERE cluster = 'n'}),
	'm4 has shard 0');

my $cluster_epoch = $node->safe_psql('postgres',
	"SELECT epoch FROM shard_coordinator.cluster_state WHERE cluster = 'n'");
ok($cluster_epoch > $epoch_before, 'the epoch moved on while m3 was away');
$member_conn = listener('sc_m3');
$row = session_query($member_conn, $heartbeat_query);
is($row, "-/1/$cluster_epoch/pending",
	"m3's next heartbeat registers it anew (pending, the cluster's epoch), not its old shard");
# It gets a shard at the next reshard, by notification and by heartbeat.
my $back = next_settled_notification($member_conn);
is(payload_string($back // {}), '1/2/' . ($back // {})->{epoch} . '/active',
	'the member is told its new shard (1 of 2)');
ok( $node->poll_query_until('postgres', qq{
		SELECT ($heartbeat_query) = '@{[ payload_string($back // {}) ]}'}),
	'... and its heartbeat agrees');
$member_conn->quit;
$witness->quit;

$driver->kill_kill;
$driver->finish;
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
	                           WHERE application_name = 'sc_driver') t})
  or die 'the driver backend does not go away';
$node->stop;
done_testing();
