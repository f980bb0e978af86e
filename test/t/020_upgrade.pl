# Upgrading a live server from 1.0 (issue 17):
#   - the extension is created at version 1.0 from its own script, and its
#     tables hold what the 1.0 library stored (a plain cluster with a
#     standby, a slot cluster);
#   - this library with that 1.0 catalog refuses clearly: every coordinating
#     call of 1.0 (two-argument heartbeat, leave, configure, fence) fails at
#     once with a hint to ALTER EXTENSION ... UPDATE; the worker says so once
#     in the log and leaves the tables alone; channel(), jump_hash() and the
#     views still work;
#   - ALTER EXTENSION shard_coordinator UPDATE while members heartbeat (with
#     1.0's two-argument heartbeat): everyone keeps shard, keys and epoch,
#     and epochs never go back;
#   - 1.1 works afterwards: applied_epoch, release_within, handover modes,
#     pending_release, a handover to a new member;
#   - pg_dump of the database restored into a fresh server keeps clusters
#     and members.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(sleep time);

my $conf = "shared_preload_libraries = 'shard_coordinator'\n"
  . "shard_coordinator.database = 'postgres'\n";
my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', $conf);
$node->start;

# --- A 1.0 catalog, as the 1.0 library left it ------------------------------
$node->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator VERSION '1.0';
	CREATE TABLE public.alive (cluster text, member text, PRIMARY KEY (cluster, member));
	-- What each heartbeat of the driver below returned.
	CREATE TABLE public.seen (at timestamptz, cluster text, member text,
	                          shard integer, epoch bigint, state text, slots integer[]);
	-- SQLSTATE | message | hint of a statement, or 'ok'.
	CREATE FUNCTION public.try(stmt text) RETURNS text LANGUAGE plpgsql AS $$
	DECLARE st text; msg text; hint text;
	BEGIN
	  EXECUTE stmt;
	  RETURN 'ok';
	EXCEPTION WHEN OTHERS THEN
	  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
	                          hint = PG_EXCEPTION_HINT;
	  RETURN st || ' | ' || msg || ' | ' || hint;
	END $$;
});
is( $node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'shard_coordinator'"),
	'1.0', 'the extension is created at version 1.0');

# The rows the 1.0 worker stores: plain cluster "jobs" (max_shards 3: w4 is
# standby; the count last changed at epoch 9, w3 and w4 moved at 12) and
# slot cluster "isl" (keys 10..40 over two members).
$node->safe_psql('postgres', q{
	INSERT INTO shard_coordinator.cluster_state (cluster, heartbeat_interval,
	    grace_period, reshard_interval, max_shards, epoch, num_shards,
	    num_shards_epoch, resharded_at, slots)
	VALUES ('jobs', '1s', '4s', '0', 3, 12, 3, 9, now() - interval '1 hour', NULL),
	       ('isl', '1s', '4s', '0', NULL, 5, 2, 5, now() - interval '1 hour',
	        '{10,20,30,40}');
	INSERT INTO shard_coordinator.member_state (cluster, member, state, shard,
	    epoch, join_seq, joined_at, slots)
	VALUES ('jobs', 'w1', 'active', 0, 4, 1, now() - interval '2 hours', NULL),
	       ('jobs', 'w2', 'active', 1, 9, 2, now() - interval '2 hours', NULL),
	       ('jobs', 'w3', 'active', 2, 12, 6, now() - interval '1 hour', NULL),
	       ('jobs', 'w4', 'standby', NULL, 12, 7, now() - interval '1 hour', NULL),
	       ('isl', 'i1', 'active', 0, 5, 3, now() - interval '2 hours', '{10,30}'),
	       ('isl', 'i2', 'active', 1, 5, 4, now() - interval '2 hours', '{20,40}');
	INSERT INTO public.alive
	SELECT cluster, member FROM shard_coordinator.member_state;
});

# member=shard/epoch/state/slots of every member, from the members view.
my $view_sql = q{
	SELECT string_agg(cluster || '.' || member || '=' || coalesce(shard::text, '-')
	                  || '/' || epoch || '/' || state || '/' || coalesce(slots::text, '-'),
	                  ',' ORDER BY cluster, member)
	  FROM shard_coordinator.members};
# Everything the tables hold, for comparisons.
my $tables_sql = q{
	SELECT (SELECT string_agg(format('%s %s %s %s %s %s %s', cluster, heartbeat_interval,
	                                 grace_period, max_shards, epoch, num_shards, slots),
	                          ',' ORDER BY cluster)
	          FROM shard_coordinator.cluster_state)
	    || ' | ' ||
	       (SELECT string_agg(format('%s %s %s %s %s %s %s', cluster, member, state, shard,
	                                 epoch, join_seq, slots), ',' ORDER BY cluster, member)
	          FROM shard_coordinator.member_state)};
my $stored = 'isl.i1=0/5/active/{10,30},isl.i2=1/5/active/{20,40},'
  . 'jobs.w1=0/9/active/-,jobs.w2=1/9/active/-,jobs.w3=2/12/active/-,'
  . 'jobs.w4=-/12/standby/-';
is($node->safe_psql('postgres', $view_sql),
	$stored, 'the 1.0 view shows the stored assignments');
my $tables_before = $node->safe_psql('postgres', $tables_sql);

# --- This library with the 1.0 catalog: refused clearly ---------------------
my $refused = qr/^55000 \| shard_coordinator's catalog is at version 1\.0, older than the library \(1\.1\) \| Run ALTER EXTENSION shard_coordinator UPDATE\.$/;
my $start = time;
like(
	$node->safe_psql('postgres',
		q{SELECT public.try($$SELECT * FROM shard_coordinator.heartbeat('jobs', 'w1')$$)}),
	$refused, "1.0's heartbeat(cluster, member) of a stored member is refused clearly");
like(
	$node->safe_psql('postgres',
		q{SELECT public.try($$SELECT * FROM shard_coordinator.heartbeat('new', 'n1')$$)}),
	$refused, '... and so is a registration');
cmp_ok(time - $start, '<', 5,
	'... at once (no waiting for a worker that will not load)');
for my $call (
	q{SELECT shard_coordinator.leave('jobs', 'w1')},
	q{SELECT shard_coordinator.configure('jobs', heartbeat_interval => '2s')},
	q{SELECT shard_coordinator.fence('jobs', 'w1', 9)})
{
	like($node->safe_psql('postgres', "SELECT public.try(\$\$$call\$\$)"),
		$refused, "$call is refused clearly");
}
is( $node->safe_psql('postgres', q{
		SELECT shard_coordinator.channel('jobs', 'w1') ~ '^sc_jobs_w1_[0-9a-f]{16}$',
		       shard_coordinator.jump_hash(42::bigint, 10) BETWEEN 0 AND 9}),
	't|t', 'channel() and jump_hash() work');
is($node->safe_psql('postgres', $view_sql),
	$stored, 'the views still show the stored assignments');

# The driver: 1.0 clients, heartbeating every member of public.alive with
# the two-argument heartbeat every 100 ms from outside the server (each
# heartbeat its own statement), whatever the answer. What the heartbeats
# return goes into public.seen; errors to a file.
my $errfile = "$PostgreSQL::Test::Utils::tmp_check/upgrade_driver.err";
my $query = 'INSERT INTO public.seen SELECT clock_timestamp(), a.cluster, a.member, '
  . 'h.shard, h.epoch, h.state, h.slots FROM public.alive a, '
  . 'LATERAL shard_coordinator.heartbeat(a.cluster, a.member) h;';
my $driver = IPC::Run::start(
	[
		'bash', '-c',
		"while echo \"$query\"; do sleep 0.1; done | psql -XAtq -d '"
		  . $node->connstr('postgres')
		  . " application_name=sc_driver'"
	],
	'<', \undef, '>', '/dev/null', '2>', $errfile);
$node->poll_query_until('postgres',
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'sc_driver'")
  or die 'the driver did not start';
# Two seconds of refused heartbeats (20 rounds): the worker looks at the
# catalog every second meanwhile.
my $refusals = sub { my @e = (slurp_file($errfile) =~ /^ERROR:/mg); scalar @e };
my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
sleep 0.1 while $refusals->() < 20 && time < $deadline;
cmp_ok($refusals->(), '>=', 20, 'the driver heartbeats, refused');
my $log = slurp_file($node->logfile);
my @said = ($log =~ /WARNING:  shard_coordinator: the extension's catalog is at version 1\.0, older than the library \(1\.1\); nothing is coordinated until it is updated/g);
is(scalar(@said), 1, 'the worker says once that the catalog is too old');
like($log, qr/HINT:  Run ALTER EXTENSION shard_coordinator UPDATE in database "postgres"\./,
	'... with the hint');
unlike($log, qr/loading state failed|could not read/,
	'... and does not try to load the 1.0 tables');
like(slurp_file($errfile),
	qr/ERROR:  shard_coordinator's catalog is at version 1\.0, older than the library \(1\.1\)\n.*\nHINT:  Run ALTER EXTENSION shard_coordinator UPDATE\./,
	"the driver's heartbeats are refused with the hint");
is($node->safe_psql('postgres', 'SELECT count(*) FROM public.seen'),
	'0', '... every one of them');
is($node->safe_psql('postgres', $tables_sql),
	$tables_before, 'the tables are left alone');

# --- ALTER EXTENSION ... UPDATE while they heartbeat -------------------------
$node->safe_psql('postgres', 'ALTER EXTENSION shard_coordinator UPDATE');
is( $node->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'shard_coordinator'"),
	'1.1', 'updated to 1.1');
# Every member answered at least 10 times.
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 6 FROM (SELECT member FROM public.seen
		                           GROUP BY cluster, member HAVING count(*) >= 10) s}),
	'the heartbeats succeed once the catalog is updated');
# Each member's rows, all alike: its stored shard, keys, epoch and state
# (nothing moved, no epoch went back).
is( $node->safe_psql('postgres', q{
		SELECT string_agg(r, ',' ORDER BY r) FROM (
		  SELECT DISTINCT cluster || '.' || member || '=' || coalesce(shard::text, '-')
		         || '/' || epoch || '/' || state || '/' || coalesce(slots::text, '-')
		    FROM public.seen) s(r)}),
	$stored, 'every heartbeat row gives each member its stored assignment and epoch');
is($node->safe_psql('postgres', $view_sql), $stored,
	'the views show the same after the update');
SCTest::stop_driver($node, $driver);
my %errors = map { $_ => 1 } (slurp_file($errfile) =~ /^ERROR:  (.*)$/mg);
is(join("\n", sort keys %errors),
	"shard_coordinator's catalog is at version 1.0, older than the library (1.1)",
	'the driver met no other error, during the update or after it');
my $worker_failed = qr/shard_coordinator: .* failed/;
unlike(slurp_file($node->logfile), $worker_failed, 'no step of the worker failed');

# --- 1.1 works ---------------------------------------------------------------
# From now on 1.1 clients keep everyone alive: three-argument heartbeats,
# each acknowledging the epoch the view shows.
$driver = SCTest::start_client_driver($node, interval => 0.1);
is( $node->safe_psql('postgres',
		"SELECT to_regclass('shard_coordinator.pending_release') IS NOT NULL"),
	't', 'pending_release exists');
is( $node->safe_psql('postgres', q{
		SELECT shard || '/' || epoch || '/' || acknowledged_epoch || '/'
		       || (release_within IS NULL) || '/' || (lease_remaining > '0')
		  FROM shard_coordinator.heartbeat('jobs', 'w1', applied_epoch => 9,
		                                   incarnation => 4242)}),
	'0/9/9/true/true',
	'the four-argument heartbeat acknowledges; nothing to release; a lease');
is( $node->safe_psql('postgres',
		"SELECT incarnation FROM shard_coordinator.members WHERE member = 'w1'"),
	'4242', 'the incarnation is kept');
$node->safe_psql('postgres',
	"SELECT shard_coordinator.configure('jobs', handover => 'barrier')");
ok( $node->poll_query_until('postgres',
		"SELECT handover = 'barrier' FROM shard_coordinator.cluster_state WHERE cluster = 'jobs'"),
	'configure(handover => barrier) is stored');
$node->safe_psql('postgres', q{
	SELECT shard_coordinator.configure('jobs', handover => 'exclusive', clear_max_shards => true)});
# The standby w4 becomes active: 3 -> 4 shards, an exclusive handover that
# the acknowledging heartbeats of settle() complete.
ok(SCTest::settle($node, 'jobs', 4), 'jobs settles with 4 active members');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || shard || '/' || num_shards, ',' ORDER BY member)
		  FROM shard_coordinator.members WHERE cluster = 'jobs'}),
	'w1=0/4,w2=1/4,w3=2/4,w4=3/4',
	'the old members keep their shards, the standby gets the new one');
cmp_ok(
	$node->safe_psql('postgres',
		"SELECT min(epoch) FROM shard_coordinator.members WHERE cluster = 'jobs'"),
	'>', 12, 'the epochs went on from the stored ones');
ok( $node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM shard_coordinator.pending_release}),
	'nothing is left to release');
is( $node->safe_psql('postgres', q{
		BEGIN;
		SELECT shard_coordinator.fence('isl', 'i1', 5, '{10}');
		COMMIT;
		SELECT 'fenced'}),
	"\nfenced", 'fence() with keys works');

# --- pg_dump, restored into a fresh server -----------------------------------
ok(SCTest::settle($node, 'isl', 2), 'isl is settled');
my $dump_view = $node->safe_psql('postgres', $view_sql);
my $dump_tables = $node->safe_psql('postgres', $tables_sql);
my $dumpfile = "$PostgreSQL::Test::Utils::tmp_check/upgrade.sql";
$node->command_ok(
	[ 'pg_dump', '-d', $node->connstr('postgres'), '-f', $dumpfile ],
	'pg_dump of the database');
is($node->safe_psql('postgres', $tables_sql),
	$dump_tables, 'nothing changed while it was dumped');
SCTest::stop_driver($node, $driver);
unlike(slurp_file($node->logfile), $worker_failed, 'no step of the worker failed');

my $copy = PostgreSQL::Test::Cluster->new('upgrade_restored');
$copy->init;
$copy->append_conf('postgresql.conf', $conf);
$copy->start;
# In one transaction (README, "Upgrading"): the worker loads the tables
# once the extension is there, and they are complete by then.
$copy->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '--single-transaction',
	  '-d', $copy->connstr('postgres'), '-f', $dumpfile ],
	'the dump is restored into a fresh server with the library preloaded');
is($copy->safe_psql('postgres', $tables_sql),
	$dump_tables, 'the restored tables hold the same clusters and members');
is( $copy->safe_psql('postgres',
		"SELECT extversion FROM pg_extension WHERE extname = 'shard_coordinator'"),
	'1.1', 'at version 1.1');
# Each member heartbeats on the restored server: its shard and epoch are
# those it had.
my $restored = $copy->safe_psql('postgres', q{
	SELECT string_agg(a.cluster || '.' || a.member || '=' || coalesce(h.shard::text, '-')
	                  || '/' || h.epoch || '/' || h.state || '/' || coalesce(h.slots::text, '-'),
	                  ',' ORDER BY a.cluster, a.member)
	  FROM public.alive a,
	       LATERAL shard_coordinator.heartbeat(a.cluster, a.member,
	         (SELECT m.epoch FROM shard_coordinator.member_state m
	           WHERE m.cluster = a.cluster AND m.member = a.member)) h});
is($restored, $dump_view, 'every member gets its shard, keys and epoch back');
ok( $copy->poll_query_until('postgres', $view_sql, $dump_view),
	'the views of the restored server show them');
unlike(slurp_file($copy->logfile), $worker_failed, 'no step of its worker failed');

$copy->stop;
$node->stop;
done_testing();
