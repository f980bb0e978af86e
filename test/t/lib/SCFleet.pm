# Simulated protocol clients for the handover TAP tests (018, 019), and a
# checker of what they were promised:
#
#   use FindBin; use lib "$FindBin::RealBin/lib"; use SCFleet;
#
#   my $fleet = SCFleet->new($node);       # one psql session of its own
#   $fleet->add('c', 'A');                 # plain mode; slots => 1: slot mode
#   $fleet->poll('A is granted', sub { $fleet->granted('c', 'A') });
#   $fleet->set_ack('c', 'A', 'hold');     # stops acknowledging new epochs
#   ...
#   $fleet->check_no_overlap('after the failover');
#   $fleet->check_epochs_monotonic('...');
#
# Every tick heartbeats every member that is alive, in one round trip, each
# with its applied_epoch and incarnation, and records each row with the
# test's monotonic clock read just before sending and just after receiving.
# A member acts as the protocol says (docs/design.md, "The protocol"): it
# works on the grant of the newest epoch it has seen (a row with an older
# epoch is stale: it only extends the promise of the current grant, and
# only if it covers it); its lease end is the clock before sending plus
# lease_remaining; its acknowledgement policy decides what it sends:
#
#   auto   applied_epoch = the epoch of the grant it works on (it does no
#          work, so it has stopped revoked work as soon as it learns of it)
#   hold   applied_epoch frozen at the epoch it had when set so: a holder
#          that goes on working on its old grant until that promise ends
#   none   applied_epoch NULL (a client that never acknowledges)
#
# The record: for each member, windows (keys, start, end) during which it
# may work on those keys by the rows it received: from receiving a row that
# grants them to the end of the promise of the last row that granted them;
# cut short when it acknowledges an epoch whose grant no longer has them
# (it stopped them before sending the acknowledgement), or when it leaves.
# check_no_overlap fails if two members of a cluster may work on one key at
# the same moment. Plain-mode keys are 0 .. 255 (jump_hash(key, n) = shard).
package SCFleet;

use strict;
use warnings;
use IPC::Run;
use Test::More;
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC sleep);

our $NKEYS = 256;
my $T0 = clock_gettime(CLOCK_MONOTONIC);
my %keysets;    # "shard/n" -> [keys], from jump_hash on a server

# Seconds on the test's monotonic clock since the module was loaded.
sub now { return clock_gettime(CLOCK_MONOTONIC) - $T0; }

# ---- A psql session of our own (quiet: no note per query) --------------

sub _open
{
	my ($self, $node) = @_;
	my $s = { in => '', out => '', err => '', n => 0, node => $node };
	local %ENV = %ENV;
	$ENV{PGAPPNAME} = 'sc_fleet';
	$s->{run} = IPC::Run::start(
		[ 'psql', '-XAtq', '-d', $node->connstr('postgres'), '-f', '-' ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err});
	$self->{session} = $s;
	$self->{label} = $node->name;
	return;
}

sub _close
{
	my ($self) = @_;
	my $s = delete $self->{session} or return;
	$s->{in} .= "\\q\n";
	eval { $s->{run}->finish; 1 } or eval { $s->{run}->kill_kill; 1 };
	return;
}

# Runs SQL in the session: (stdout, stderr); stderr is '' when it worked.
# If psql is gone (the server died), stderr says so.
sub _query
{
	my ($self, $sql, $timeout) = @_;
	my $s = $self->{session} or return ('', 'no session');
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $n = ++$s->{n};
	my $banner = "sc_fleet: done $n";
	$s->{out} = '';
	$s->{err} = '';
	$s->{in} .= "$sql\n;\n\\echo '$banner'\n\\warn '$banner'\n";
	my $deadline = now() + $timeout;
	while (!($s->{out} =~ /\Q$banner\E\n/ && $s->{err} =~ /\Q$banner\E\n/))
	{
		if (!$s->{run}->pumpable)
		{
			my $err = $s->{err} || 'psql exited';
			delete $self->{session};
			eval { $s->{run}->finish; 1 };
			return ($s->{out}, "psql exited: $err");
		}
		if (now() > $deadline)
		{
			delete $self->{session};
			$s->{run}->kill_kill;
			return ($s->{out}, "query timed out: $sql");
		}
		$s->{run}->pump_nb;
		sleep(0.001);
	}
	my ($out, $err) = ($s->{out}, $s->{err});
	$out =~ s/\Q$banner\E\n//;
	$err =~ s/\Q$banner\E\n//;
	chomp $out;
	return ($out, $err);
}

# ---- The fleet ----------------------------------------------------------

sub new
{
	my ($class, $node) = @_;
	my $self = bless { members => {}, order => [], events => [] }, $class;
	$self->_open($node);
	if (!%keysets)
	{
		my $rows = $self->sql(qq{
			SELECT n || '/' || s || ' ' || string_agg(k::text, ',' ORDER BY k)
			  FROM generate_series(1, 16) n, generate_series(0, $NKEYS - 1) k,
			       LATERAL (SELECT shard_coordinator.jump_hash(k::bigint, n) s) h
			 GROUP BY n, s});
		for (split /\n/, $rows)
		{
			my ($ns, $keys) = split / /;
			my ($n, $s) = split m{/}, $ns;
			$keysets{"$s/$n"} = [ split /,/, $keys ];
		}
	}
	return $self;
}

# Points the fleet at another server (after a failover or a restart).
sub connect_to
{
	my ($self, $node) = @_;
	$self->_close;
	$self->_open($node);
	$self->event("connected to " . $node->name);
	return;
}

sub disconnect
{
	my ($self) = @_;
	$self->_close;
	return;
}

# SQL through the fleet's session; dies on error.
sub sql
{
	my ($self, $sql) = @_;
	my ($out, $err) = $self->_query($sql);
	die "query failed: $err\nquery: $sql" if $err ne '';
	return $out;
}

sub event
{
	my ($self, $what) = @_;
	push @{ $self->{events} }, sprintf('%.3f %s', now(), $what);
	return;
}

sub add
{
	my ($self, $cluster, $name, %opts) = @_;
	my $key = "$cluster/$name";
	die "$key is in the fleet already" if $self->{members}{$key};
	$self->{members}{$key} = {
		cluster => $cluster,
		name => $name,
		slots => $opts{slots} // 0,
		ack => $opts{ack} // 'auto',
		alive => $opts{alive} // 1,
		incarnation => 1 + int(rand(2**40)),
		cur_epoch => 0,         # the epoch of the grant it works on
		max_epoch => 0,         # the highest epoch any row showed
		grant => {},            # its keys
		applied => undef,       # what it sends as applied_epoch
		applied_grant => {},    # the grant of that epoch
		windows => [],
		cur_window => undef,
		rows => [],
		back => [],             # rows whose epoch went back
		errors => [],
	};
	push @{ $self->{order} }, $key;
	return;
}

sub _m
{
	my ($self, $cluster, $name) = @_;
	return $self->{members}{"$cluster/$name"} // die "no member $cluster/$name";
}

# ack policy: auto, hold (frozen at the current epoch) or none.
sub set_ack
{
	my ($self, $cluster, $name, $policy) = @_;
	my $m = $self->_m($cluster, $name);
	$m->{ack} = $policy;
	if ($policy eq 'hold')
	{
		$m->{applied} = $m->{cur_epoch} > 0 ? $m->{cur_epoch} : undef;
		$m->{applied_grant} = $m->{grant};
	}
	$self->event("$cluster/$name acknowledges: $policy");
	return;
}

# Stops (0) or resumes (1) a member's heartbeats. A stopped member is a
# process that lost the server: it may go on working until its lease ends.
sub set_alive
{
	my ($self, $cluster, $name, $alive) = @_;
	$self->_m($cluster, $name)->{alive} = $alive;
	$self->event("$cluster/$name " . ($alive ? 'heartbeats' : 'stops heartbeating'));
	return;
}

# The member acknowledged, outside the fleet's heartbeats, an epoch whose
# grant is $keys (an array): it stopped everything else by time $t.
sub acknowledged_outside
{
	my ($self, $cluster, $name, $t, $keys) = @_;
	my $m = $self->_m($cluster, $name);
	$self->_cut($m, { map { $_ => 1 } @$keys }, $t);
	$self->event(sprintf('%s/%s acknowledged outside the fleet (stopped by %.3f)',
			$cluster, $name, $t));
	return;
}

# The member's own leave(): it stops all work first.
sub leave
{
	my ($self, $cluster, $name) = @_;
	my $m = $self->_m($cluster, $name);
	my $t = now();
	$self->_cut($m, {}, $t);
	$m->{alive} = 0;
	$self->sql("SELECT shard_coordinator.leave('$cluster', '$name', $m->{incarnation})");
	$self->event("$cluster/$name left");
	return;
}

sub _keys_of_row
{
	my ($m, $row) = @_;
	if ($m->{slots})
	{
		return {} unless $row->{state} eq 'active' && $row->{slots} ne '';
		my $list = $row->{slots};
		$list =~ tr/{}//d;
		return { map { $_ => 1 } split /,/, $list };
	}
	return {} unless $row->{shard} ne '';
	my $set = $keysets{"$row->{shard}/$row->{num_shards}"}
	  or die "no key set for shard $row->{shard} of $row->{num_shards}";
	return { map { $_ => 1 } @$set };
}

sub _sig { return join(',', sort { $a <=> $b } keys %{ $_[0] }); }

sub _subset
{
	my ($a, $b) = @_;
	for (keys %$a) { return 0 unless $b->{$_}; }
	return 1;
}

# Ends the member's work on every key outside $keep at time $t.
sub _cut
{
	my ($self, $m, $keep, $t) = @_;
	my @out;
	for my $w (@{ $m->{windows} })
	{
		if ($w->{end} <= $t || _subset($w->{keys}, $keep))
		{
			push @out, $w;
			next;
		}
		my %in = map { $_ => 1 } grep { $keep->{$_} } keys %{ $w->{keys} };
		my %gone = map { $_ => 1 } grep { !$keep->{$_} } keys %{ $w->{keys} };
		if (%in)
		{
			my $w2 = {%$w, keys => \%in};
			push @out, $w2;
			$m->{cur_window} = $w2 if $m->{cur_window} && $m->{cur_window} == $w;
		}
		elsif ($m->{cur_window} && $m->{cur_window} == $w)
		{
			$m->{cur_window} = undef;
		}
		push @out, {%$w, keys => \%gone, end => ($t > $w->{start} ? $t : $w->{start}),
			cut => 1};
	}
	$m->{windows} = \@out;
	return;
}

# One heartbeat of every member that is alive. Returns the number of rows.
sub tick
{
	my ($self) = @_;
	my @sql;
	my @sent;
	for my $key (@{ $self->{order} })
	{
		my $m = $self->{members}{$key};
		next unless $m->{alive};
		if ($m->{ack} eq 'auto')
		{
			$m->{applied} = $m->{cur_epoch} > 0 ? $m->{cur_epoch} : undef;
			$m->{applied_grant} = $m->{grant};
		}
		elsif ($m->{ack} eq 'none')
		{
			$m->{applied} = undef;
		}
		my $applied = $m->{applied} // 'NULL';
		push @sql, "SELECT '$key', h.epoch, h.shard, h.num_shards, h.state, h.slots, "
		  . "round(extract(epoch FROM h.lease_remaining) * 1000), "
		  . "round(extract(epoch FROM h.release_within) * 1000), h.acknowledged_epoch "
		  . "FROM shard_coordinator.heartbeat('$m->{cluster}', '$m->{name}', $applied, "
		  . "$m->{incarnation}) h;";
		push @sent, $m;
	}
	return 0 unless @sent;
	return 0 unless $self->{session};
	my $t_send = now();
	# What it acknowledges it has stopped: the rest ends now.
	for my $m (@sent)
	{
		$self->_cut($m, $m->{applied_grant}, $t_send) if defined $m->{applied};
	}
	my ($out, $err) = $self->_query(join("\n", @sql), 30);
	my $t_recv = now();
	my %got;
	for my $line (split /\n/, $out)
	{
		my @f = split /\|/, $line, -1;
		next unless @f == 9 && $self->{members}{ $f[0] };
		$got{ $f[0] } = {
			epoch => $f[1], shard => $f[2], num_shards => $f[3], state => $f[4],
			slots => $f[5], lease => $f[6] / 1000.0,
			release => ($f[7] eq '' ? undef : $f[7] / 1000.0),
			acked => $f[8], t_send => $t_send, t_recv => $t_recv,
			node => $self->{label},
		};
	}
	my $rows = 0;
	for my $m (@sent)
	{
		my $key = "$m->{cluster}/$m->{name}";
		if (my $row = $got{$key})
		{
			$self->_take_row($m, $row);
			$rows++;
		}
		else
		{
			push @{ $m->{errors} }, sprintf('%.3f %s', $t_send, $err || 'no row');
		}
	}
	return $rows;
}

sub _take_row
{
	my ($self, $m, $row) = @_;
	push @{ $m->{rows} }, $row;
	my $keys = _keys_of_row($m, $row);
	my $end = $row->{t_send} + $row->{lease};
	push @{ $m->{back} }, $row if $row->{epoch} < $m->{max_epoch};
	$m->{max_epoch} = $row->{epoch} if $row->{epoch} > $m->{max_epoch};
	if ($row->{epoch} < $m->{cur_epoch})
	{
		# Stale: it keeps working on its grant; the row extends that
		# promise only if it covers the grant.
		$m->{cur_window}{end} = $end
		  if $m->{cur_window}
		  && _subset($m->{grant}, $keys)
		  && $end > $m->{cur_window}{end};
		return;
	}
	my $w = $m->{cur_window};
	if (%$keys)
	{
		if ($w && _sig($w->{keys}) eq _sig($keys) && $w->{end} >= $row->{t_recv})
		{
			$w->{end} = $end if $end > $w->{end};
		}
		else
		{
			$w = { keys => $keys, start => $row->{t_recv}, end => $end,
				epoch => $row->{epoch}, node => $row->{node} };
			push @{ $m->{windows} }, $w;
			$m->{cur_window} = $w;
			$m->{first_grant} //= $row;
		}
	}
	else
	{
		$m->{cur_window} = undef;
	}
	$m->{cur_epoch} = $row->{epoch};
	$m->{grant} = $keys;
	return;
}

# Ticks every 50 ms until $cond returns true (checked after each tick);
# false after $timeout seconds.
sub poll
{
	my ($self, $what, $cond, $timeout) = @_;
	$timeout //= $PostgreSQL::Test::Utils::timeout_default;
	my $deadline = now() + $timeout;
	while (1)
	{
		$self->tick;
		my $v = $cond->();
		return $v if $v;
		if (now() > $deadline)
		{
			diag("timed out waiting for $what");
			return 0;
		}
		sleep(0.05);
	}
}

# Ticks for $seconds (to let time pass while members heartbeat).
sub run_for
{
	my ($self, $seconds) = @_;
	my $until = now() + $seconds;
	while (now() < $until)
	{
		$self->tick;
		sleep(0.05);
	}
	return;
}

# ---- A handover to set up ----------------------------------------------

# In each cluster: A joins and holds every key (plain mode: shard 0 of 1;
# slot mode, a cluster given as [name, n]: all its n slot keys), then stops
# acknowledging (it goes on working on its old grant), and B joins. Returns
# once A's row shows the revocation (release_within; plain mode: shard 0
# of 2; slot mode: half its keys); B is not granted yet.
sub revoke_from_holder
{
	my ($self, @clusters) = @_;
	my %slots = map { ref $_ ? ($_->[0] => $_->[1]) : ($_ => 0) } @clusters;
	@clusters = map { ref $_ ? $_->[0] : $_ } @clusters;
	$self->add($_, 'A', slots => $slots{$_} > 0) for @clusters;
	$self->poll('A is granted', sub { !grep { !$self->granted($_, 'A') } @clusters })
	  or die 'A was not granted';
	my %before;
	for my $c (@clusters)
	{
		$before{$c} = $self->grant_keys($c, 'A');
		is(scalar @{ $before{$c} }, $slots{$c} || $NKEYS, "$c: A holds every key");
		$self->set_ack($c, 'A', 'hold');
		$self->add($c, 'B', slots => $slots{$c} > 0);
	}
	$self->poll('the revocation',
		sub { !grep { !defined $self->last_row($_, 'A')->{release} } @clusters })
	  or die 'no revocation';
	for my $c (@clusters)
	{
		my $row = $self->last_row($c, 'A');
		my %now = map { $_ => 1 } @{ $self->grant_keys($c, 'A') };
		$self->{moving}{$c} = [ grep { !$now{$_} } @{ $before{$c} } ];
		if ($slots{$c})
		{
			is(scalar keys %now, $slots{$c} / 2,
				"$c: A's row shows its smaller grant (half the keys) and a release");
		}
		else
		{
			is("$row->{shard}/$row->{num_shards}", '0/2',
				"$c: A's row shows its smaller grant (shard 0 of 2) and a release");
		}
		ok(!$self->granted($c, 'B'), "$c: B is not granted yet");
	}
	return;
}

# The keys revoked from A in cluster c (after revoke_from_holder).
sub moving { my ($self, $c) = @_; return $self->{moving}{$c}; }

# B's first grant in cluster c (after revoke_from_holder): its keys are
# those revoked from A. Returns the row.
sub check_b_grant
{
	my ($self, $c) = @_;
	my $row = $self->first_grant($c, 'B');
	ok($row, "$c: B was granted") or return undef;
	is_deeply($self->grant_keys($c, 'B'), [ sort { $a <=> $b } @{ $self->{moving}{$c} } ],
		"$c: B is granted the keys revoked from A");
	return $row;
}

# ---- What the members were told ---------------------------------------

sub last_row { my ($self, $c, $n) = @_; return $self->_m($c, $n)->{rows}[-1]; }

# The keys the member works on now (sorted), [] if none.
sub grant_keys
{
	my ($self, $c, $n) = @_;
	return [ sort { $a <=> $b } keys %{ $self->_m($c, $n)->{grant} } ];
}

sub incarnation { my ($self, $c, $n) = @_; return $self->_m($c, $n)->{incarnation}; }

sub granted { my ($self, $c, $n) = @_; return scalar %{ $self->_m($c, $n)->{grant} }; }

# The first row that granted the member anything.
sub first_grant { my ($self, $c, $n) = @_; return $self->_m($c, $n)->{first_grant}; }

sub rows { my ($self, $c, $n) = @_; return @{ $self->_m($c, $n)->{rows} }; }

sub keyset
{
	my ($shard, $n) = @_;
	return $keysets{"$shard/$n"};
}

# The promise end of the member's last window with keys in $keys (hash).
sub promise_end_of
{
	my ($self, $c, $n, $keys) = @_;
	my $end = 0;
	for my $w (@{ $self->_m($c, $n)->{windows} })
	{
		next unless grep { $keys->{$_} } keys %{ $w->{keys} };
		$end = $w->{end} if $w->{end} > $end;
	}
	return $end;
}

# Overlaps of two members' windows on one key, in cluster $c (all if undef).
sub overlaps
{
	my ($self, $c) = @_;
	my @found;
	my @keys = grep { !defined $c || $self->{members}{$_}{cluster} eq $c } @{ $self->{order} };
	for my $i (0 .. $#keys)
	{
		my $x = $self->{members}{ $keys[$i] };
		for my $j ($i + 1 .. $#keys)
		{
			my $y = $self->{members}{ $keys[$j] };
			next unless $x->{cluster} eq $y->{cluster};
			for my $wx (@{ $x->{windows} })
			{
				for my $wy (@{ $y->{windows} })
				{
					my $from = $wx->{start} > $wy->{start} ? $wx->{start} : $wy->{start};
					my $to = $wx->{end} < $wy->{end} ? $wx->{end} : $wy->{end};
					next unless $from < $to;
					my @both = sort { $a <=> $b } grep { $wy->{keys}{$_} } keys %{ $wx->{keys} };
					next unless @both;
					push @found, sprintf(
						'%s and %s both on %d keys (%s) from %.3f to %.3f: '
						  . '%s [%.3f, %.3f) epoch %s on %s, %s [%.3f, %.3f) epoch %s on %s',
						$keys[$i], $keys[$j], scalar @both,
						join(',', @both[ 0 .. ($#both < 7 ? $#both : 7) ]), $from, $to,
						$keys[$i], $wx->{start}, $wx->{end}, $wx->{epoch}, $wx->{node},
						$keys[$j], $wy->{start}, $wy->{end}, $wy->{epoch}, $wy->{node});
				}
			}
		}
	}
	return @found;
}

sub check_no_overlap
{
	my ($self, $what, $c) = @_;
	my @found = $self->overlaps($c);
	ok(!@found, "$what: no key was promised to two members at once")
	  or diag(join("\n", @found) . "\n" . $self->history($c));
	return !@found;
}

sub check_epochs_monotonic
{
	my ($self, $what, $c) = @_;
	my @back;
	for my $key (@{ $self->{order} })
	{
		my $m = $self->{members}{$key};
		next if defined $c && $m->{cluster} ne $c;
		push @back, map { "$key: epoch $_->{epoch} on $_->{node} at " . sprintf('%.3f', $_->{t_recv}) }
		  @{ $m->{back} };
	}
	ok(!@back, "$what: no member's epoch ever went back")
	  or diag(join("\n", @back) . "\n" . $self->history($c));
	return !@back;
}

# A readable account: events, then each member's rows where something
# changed, and its windows.
sub history
{
	my ($self, $c) = @_;
	my @lines = ('events:', map { "  $_" } @{ $self->{events} });
	for my $key (@{ $self->{order} })
	{
		my $m = $self->{members}{$key};
		next if defined $c && $m->{cluster} ne $c;
		push @lines, "$key rows (where they changed):";
		my $last = '';
		for my $r (@{ $m->{rows} })
		{
			my $sum = join(' ', map { "$_=" . ($r->{$_} // '-') }
				qw(epoch shard num_shards state slots release acked node));
			next if $sum eq $last;
			$last = $sum;
			push @lines, sprintf('  %.3f-%.3f lease %.3f %s', $r->{t_send}, $r->{t_recv},
				$r->{lease}, $sum);
		}
		push @lines, "$key windows:";
		push @lines, map {
			sprintf('  [%.3f, %.3f) epoch %s on %s, %d keys%s', $_->{start}, $_->{end},
				$_->{epoch}, $_->{node}, scalar(keys %{ $_->{keys} }), $_->{cut} ? ' (cut)' : '')
		} @{ $m->{windows} };
		push @lines, "$key errors: " . join('; ', @{ $m->{errors} }[ -3 .. -1 ])
		  if @{ $m->{errors} } >= 3;
	}
	return join("\n", @lines);
}

sub DESTROY
{
	my ($self) = @_;
	$self->_close;
	return;
}

1;
