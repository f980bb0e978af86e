# An acknowledgement that releases a member's newer hold starts a grant step
# even when the member still had an older hold when it arrived.
#
# a holds (0, 1); b joins (epoch E2: a keeps (0, 2), (0, 1) is held); c
# joins (E3: a keeps (0, 3), (0, 2) is held too). a acknowledges E2: a
# grant step starts; while it is being stored (a session holds LOCK TABLE
# member_state), a acknowledges E3. That step, decided before, releases
# only the hold of E2 and grants b; the acknowledgement of E3 must bring
# another step that releases the hold of E3 and grants c at once, not when
# a's promise ends (an hour here). Found by the flaky capacity.sql: the
# server only woke the worker for an acknowledgement that covered the
# member's oldest hold.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = SCTest::new_node('ack_newer_hold');
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('nh', heartbeat_interval => '1h',
	         grace_period => '1h', reshard_interval => '0');
	SELECT shard_coordinator.heartbeat('nh', 'a');
});
SCTest::settle($node, 'nh', 1) or die 'a was not granted';

sub row
{
	my ($member, $cols) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM shard_coordinator.members WHERE cluster = 'nh' AND member = '$member'");
}

# b joins: a's grant shrinks to (0, 2); b waits for (0, 1).
$node->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('nh', 'b')");
$node->poll_query_until('postgres',
	"SELECT release_epoch IS NOT NULL FROM shard_coordinator.members WHERE cluster = 'nh' AND member = 'a'")
  or die 'a was not revoked';
my $e2 = row('a', 'epoch');
# c joins: a's grant shrinks to (0, 3); (0, 2) is held too.
$node->safe_psql('postgres', "SELECT shard_coordinator.heartbeat('nh', 'c')");
$node->poll_query_until('postgres',
	"SELECT epoch > $e2 FROM shard_coordinator.members WHERE cluster = 'nh' AND member = 'a'")
  or die 'a was not revoked again';
my $e3 = row('a', 'epoch');
is(row('a', 'releasing'), 'shard 0 of 1; shard 0 of 2', 'a holds what two steps revoked');
is(row('c', 'withheld'), 't', 'c waits for a');

# The acknowledgements, the second while the step the first started is
# being stored.
my $locker = $node->background_psql('postgres');
my $out = $locker->query_safe(qq{
	BEGIN;
	LOCK TABLE shard_coordinator.member_state;
	DO \$\$
	DECLARE give_up timestamptz := clock_timestamp() + interval '20 s';
	BEGIN
	  PERFORM shard_coordinator.heartbeat('nh', 'a', $e2);
	  LOOP
	    EXIT WHEN EXISTS (SELECT FROM pg_locks WHERE NOT granted
	                       AND relation = 'shard_coordinator.member_state'::regclass);
	    IF clock_timestamp() > give_up THEN
	      RAISE EXCEPTION 'the worker never waited for the lock';
	    END IF;
	    PERFORM pg_sleep(0.001);
	  END LOOP;
	  PERFORM shard_coordinator.heartbeat('nh', 'a', $e3);
	END \$\$;
	COMMIT;
	SELECT 'done';
});
like($out, qr/done/, 'a acknowledged E2, then E3 while the step of E2 was being stored');
$locker->quit;

# Nobody heartbeats any more: only the worker can grant c now.
ok( $node->poll_query_until('postgres',
		"SELECT shard IS NOT NULL FROM shard_coordinator.members WHERE cluster = 'nh' AND member = 'c'"),
	'c is granted at once, not when a\'s promise ends');
is(row('b', 'shard IS NOT NULL'), 't', '... and b too');
is(row('a', 'releasing'), '', '... and a holds nothing');

$node->stop;
done_testing();
