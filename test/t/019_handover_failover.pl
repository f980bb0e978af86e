# Exclusive handovers across failovers (issue 12). As in 018: A holds every
# key, B joins, the keys of B's shard are revoked from A and granted to B
# only once A acknowledged or its promise ended. The members are simulated
# protocol clients (lib/SCFleet.pm) that follow the primary and record
# every row they receive from either server.
#
#   1. Promotion of a synchronous standby mid-handover (the primary's
#      synchronous_standby_names = '*'): the standby has the pending
#      releases; after the promotion no grants are held back (every promise
#      survived), an acknowledgement releases at once (cluster sya), without
#      one B is granted one full lease after the start (clusters syn, and
#      sys in slot mode); the
#      epochs go on in the new timeline's range, above the old primary's.
#   2. Asynchronous failover after a grant the standby never received: the
#      standby's walreceiver is stopped (primary_conninfo = ''), the primary
#      grants B its keys, crashes, and the standby is promoted without that
#      WAL. B is gone with the old primary (it may go on working until its
#      lease ends); C joins the new primary and is placed on B's shard. The
#      promoted server grants nothing new for one full lease after its start
#      (the clusters view shows until when), so C gets B's keys only after
#      B's promise from the old primary ended; the epochs go on above the
#      old primary's; C is granted in the end.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib "$FindBin::RealBin/lib";
use SCFleet;
use Time::HiRes qw(sleep);

my $LEASE = 4;    # heartbeat_interval 500 ms + grace_period 3500 ms
my $now = \&SCFleet::now;

my $primary = PostgreSQL::Test::Cluster->new('ho_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'shard_coordinator'
shard_coordinator.database = 'postgres'
shard_coordinator.heartbeat_interval = '500ms'
shard_coordinator.grace_period = '3500ms'
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION shard_coordinator;
	SELECT shard_coordinator.configure(c, reshard_interval => '0')
	  FROM unnest(ARRAY['sya', 'syn', 'sys']) c;
	SELECT shard_coordinator.configure('sys', slots => ARRAY(SELECT generate_series(1, 12)));
});
$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('ho_standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
# Once promoted it has no standby of its own to wait for.
$standby->append_conf('postgresql.conf', "synchronous_standby_names = ''\n");
$standby->start;
$primary->safe_psql('postgres', q{
	ALTER SYSTEM SET synchronous_standby_names = '*';
	SELECT pg_reload_conf();
});
ok( $primary->poll_query_until('postgres',
		"SELECT sync_state = 'sync' FROM pg_stat_replication"),
	'the standby is synchronous');

my $fleet = SCFleet->new($primary);

# The highest epoch any member saw from the given server.
sub highest_epoch_from
{
	my ($node, @clusters) = @_;
	my $max = 0;
	for my $c (@clusters)
	{
		for my $m ('A', 'B')
		{
			for ($fleet->rows($c, $m))
			{
				$max = $_->{epoch} if $_->{node} eq $node->name && $_->{epoch} > $max;
			}
		}
	}
	return $max;
}

# ---- 1. Promotion of a synchronous standby mid-handover -------------------
my @sy = ('sya', 'syn', 'sys');
$fleet->revoke_from_holder('sya', 'syn', [ 'sys', 12 ]);
is( $fleet->sql(q{
		SELECT string_agg(synchronous::text, ',' ORDER BY cluster)
		  FROM shard_coordinator.cluster_state WHERE cluster IN ('sya', 'syn', 'sys')}),
	'true,true,true', 'the revocations were stored synchronously replicated');
is( $fleet->sql(q{
		SELECT string_agg(failover_safe::text, ',' ORDER BY cluster)
		  FROM shard_coordinator.clusters WHERE cluster IN ('sya', 'syn', 'sys')}),
	'true,true,true', 'the clusters view calls them failover-safe');
ok( $standby->poll_query_until('postgres', q{
		SELECT count(*) = 3 FROM shard_coordinator.pending_release
		 WHERE cluster IN ('sya', 'syn', 'sys') AND member = 'A'}),
	'the standby has the pending releases');
my $releasing = q{
	SELECT string_agg(cluster || ' ' || member || ': ' || coalesce(releasing, '-') || ' at '
	                  || release_epoch, ', ' ORDER BY cluster, member)
	  FROM shard_coordinator.members WHERE cluster IN ('sya', 'syn', 'sys') AND member = 'A'};
is($standby->safe_psql('postgres', $releasing), $fleet->sql($releasing),
	'... and its view shows what A must release as the primary\'s does');
my $old_max = highest_epoch_from($primary, @sy);

$fleet->disconnect;
$fleet->event('primary crashes');
$primary->stop('immediate');
my $t_promote = $now->();
$standby->promote;
$fleet->connect_to($standby);
ok( $fleet->poll('the promoted server to load the state', sub {
			$fleet->sql(q{
				SELECT count(*) = 3 FROM shard_coordinator.members
				 WHERE cluster IN ('sya', 'syn', 'sys') AND member = 'A'
				   AND releasing IS NOT NULL AND release_until IS NOT NULL})
		}),
	'the promoted server has A releasing in every cluster');
is( $fleet->sql(q{
		SELECT count(*) FROM shard_coordinator.clusters
		 WHERE cluster IN ('sya', 'syn', 'sys') AND grants_held_until IS NOT NULL}),
	'0', 'no grants are held back after a synchronous failover');
ok(!grep({ $fleet->granted($_, 'B') } @sy),
	'B is not granted after the promotion (A has not acknowledged)');

$fleet->set_ack('sya', 'A', 'auto');
my $t_ack = $now->();
ok($fleet->poll('B granted in sya', sub { $fleet->granted('sya', 'B') }),
	'sya: B is granted once A acknowledges on the promoted server');
my $row = $fleet->check_b_grant('sya');
ok($row && $row->{t_recv} < $t_promote + $LEASE,
	sprintf('sya: ... at once (%.2f s after the acknowledgement, before any deadline)',
		$row ? $row->{t_recv} - $t_ack : -1));
ok($row && $row->{epoch} >= (1 << 32) && $row->{epoch} > $old_max,
	"sya: ... at epoch " . ($row ? $row->{epoch} : '?')
	  . " in timeline 2's range, above the old primary's ($old_max)");

# syn (plain mode), sys (slot mode): no acknowledgement.
ok( $fleet->poll('B granted in syn and sys',
		sub { $fleet->granted('syn', 'B') && $fleet->granted('sys', 'B') }, 30),
	'syn, sys: B is granted without an acknowledgement');
for my $c ('syn', 'sys')
{
	$row = $fleet->check_b_grant($c);
	ok($row && $row->{t_recv} >= $t_promote + $LEASE,
		sprintf('%s: ... not before one full lease from the promoted server\'s start '
			  . '(%.2f s after the promotion began)', $c, $row ? $row->{t_recv} - $t_promote : -1));
	ok($row && $row->{t_recv} < $t_promote + $LEASE + 10, "$c: ... and not long after");
	ok($row && $row->{epoch} >= (1 << 32), "$c: ... in timeline 2's range");
}
for my $c (@sy)
{
	$fleet->check_no_overlap("synchronous failover, $c", $c);
	$fleet->check_epochs_monotonic("synchronous failover, $c", $c);
	$fleet->leave($c, $_) for ('A', 'B');
}

# ---- 2. Asynchronous failover after a grant the standby never received ----
my $old = $standby;    # the primary now (timeline 2), not synchronous
$old->safe_psql('postgres',
	"SELECT shard_coordinator.configure('asy', reshard_interval => '0')");
$fleet->add('asy', 'A');
$fleet->poll('A granted in asy', sub { $fleet->granted('asy', 'A') }) or die;
$old->backup('b2');
my $new = PostgreSQL::Test::Cluster->new('ho_third');
$new->init_from_backup($old, 'b2', has_streaming => 1);
$new->start;
$old->wait_for_catchup($new);
is( $new->safe_psql('postgres', q{
		SELECT string_agg(member || '=' || shard || '/' || num_shards, ',')
		  FROM shard_coordinator.members WHERE cluster = 'asy'}),
	'A=0/1', 'the new standby has A holding every key');
$new->safe_psql('postgres', q{
	ALTER SYSTEM SET primary_conninfo = '';
	SELECT pg_reload_conf();
});
ok($new->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_wal_receiver'),
	"the standby's walreceiver is stopped");
$old->poll_query_until('postgres', 'SELECT count(*) = 0 FROM pg_stat_replication')
  or die 'the standby is still connected';

# The old primary hands shard 1 of 2 over to B (A acknowledges at once).
$fleet->add('asy', 'B');
ok($fleet->poll('B granted in asy', sub { $fleet->granted('asy', 'B') }),
	'the old primary grants B shard 1 of 2');
is_deeply($fleet->grant_keys('asy', 'B'), SCFleet::keyset(1, 2), '... its keys');
is( $fleet->sql(q{SELECT synchronous FROM shard_coordinator.cluster_state WHERE cluster = 'asy'}),
	'f', '... stored without synchronous replication');
$fleet->tick;
$old_max = highest_epoch_from($old, 'asy');
my %b_keys = map { $_ => 1 } @{ SCFleet::keyset(1, 2) };

$fleet->disconnect;
$fleet->event('primary crashes');
$old->stop('immediate');
# B lost its server: it may go on working until its lease ends.
$fleet->set_alive('asy', 'B', 0);
my $b_promise = $fleet->promise_end_of('asy', 'B', \%b_keys);
is( $new->safe_psql('postgres',
		"SELECT count(*) FROM shard_coordinator.member_state WHERE cluster = 'asy'"),
	'1', 'the standby never received B');
$t_promote = $now->();
$new->promote;
$fleet->connect_to($new);
$fleet->add('asy', 'C');
my $held;
ok( $fleet->poll('the promoted server to hold its grants', sub {
			$held = $fleet->sql(q{
				SELECT round(extract(epoch FROM c.grants_held_until - a.backend_start) * 1000)
				       || ' ' || c.failover_safe
				  FROM shard_coordinator.clusters c, pg_stat_activity a
				 WHERE c.cluster = 'asy' AND a.backend_type = 'shard_coordinator'
				   AND c.grants_held_until IS NOT NULL});
			$held ne '';
		}),
	'the clusters view shows grants held after the asynchronous failover');
my ($held_ms, $safe) = split / /, $held // '0 ?';
ok($held_ms >= $LEASE * 1000 - 50 && $held_ms <= $LEASE * 1000 + 1000,
	"... until one full lease after the worker's start (${held_ms} ms)");
is($safe, 'false', '... and does not call the cluster failover-safe');
ok( $fleet->poll('C placed on B\'s shard', sub {
			my $r = $fleet->last_row('asy', 'C');
			$r && $r->{state} eq 'active';
		}),
	'C is placed (active) on the promoted server');
ok(!$fleet->granted('asy', 'C'), '... but not granted anything yet');

ok($fleet->poll('C granted', sub { $fleet->granted('asy', 'C') }, 30),
	'C is granted in the end');
$row = $fleet->first_grant('asy', 'C');
my @c_keys = @{ $fleet->grant_keys('asy', 'C') };
ok((grep { $b_keys{$_} } @c_keys) > 0,
	'C is granted keys the old primary had promised B (' . scalar(@c_keys) . ' keys)');
ok($row->{t_recv} >= $b_promise,
	sprintf('... only after B\'s promise from the old primary ended (%.2f s after it)',
		$row->{t_recv} - $b_promise));
ok($row->{t_recv} >= $t_promote + $LEASE,
	sprintf('... and not before one full lease from the promoted server\'s start (%.2f s after the promotion began)',
		$row->{t_recv} - $t_promote));
ok($row->{epoch} >= (2 << 32) && $row->{epoch} > $old_max,
	"... at epoch $row->{epoch}, in timeline 3's range, above the old primary's ($old_max)");
$fleet->check_no_overlap('asynchronous failover', 'asy');
# Epochs. A's first row from the promoted server is the assignment the
# standby had: shard 0 of 1 at the epoch before B joined, older than the
# revocation A acknowledged on the old primary (asynchronous replication
# lost it). A client works on the newest epoch it has seen and ignores it
# (SCFleet counts it as stale, and the overlap check above follows that
# rule); were it to take that row, it would work on B's keys. Everything
# else the promoted server told is above every epoch of the old primary.
my %old_epoch = map {
	my $m = $_;
	my $max = 0;
	for ($fleet->rows('asy', $m)) { $max = $_->{epoch} if $_->{node} eq $old->name && $_->{epoch} > $max; }
	($m => $max);
} ('A', 'B', 'C');
my @wrong;
my @stale;
for my $m ('A', 'C')
{
	for my $r (grep { $_->{node} eq $new->name } $fleet->rows('asy', $m))
	{
		if ($r->{epoch} < $old_epoch{$m}) { push @stale, "$m: epoch $r->{epoch} shard $r->{shard}/$r->{num_shards}"; }
		elsif ($r->{epoch} <= $old_max) { push @wrong, "$m: epoch $r->{epoch}"; }
	}
}
ok(!@wrong, "every row of the promoted server is above the old primary's epochs ($old_max), "
	  . 'or older than what its member had (stale, ignored)')
  or diag(join("\n", @wrong));
note(scalar(@stale) . ' stale rows from the promoted server: ' . join(', ', @stale[0 .. ($#stale < 2 ? $#stale : 2)]));
my @c_epochs = map { $_->{epoch} } $fleet->rows('asy', 'C');
ok(!grep({ $c_epochs[$_] < $c_epochs[ $_ - 1 ] } 1 .. $#c_epochs), "C's epochs never went back");

$fleet->disconnect;
$new->stop;
done_testing();
