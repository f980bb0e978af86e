#!/bin/bash
# The worker of the chaos test (test/chaos/chaos.py), run by
# `shard-coordinator run`. While it runs it "acts" on its grant: every
# CHAOS_TICK seconds (default 0.05) it appends a line
#
#   <wall clock, s.us> act acting as shard K of N epoch E slots S
#
# (S: SHARD_SLOTS, comma-separated, or "-" in plain mode) to its own file
# $CHAOS_DIR/<cluster>/child.<member>.<pid>.<epoch>, after a first "start"
# line; on SIGTERM it writes a "stop" line and exits 0. A SIGKILL ends it
# without a "stop" line.
#
# The checker takes the time a child worked from its agent's log (CLOCK_
# MONOTONIC stamps of its start and of the end of its process tree), not
# from these lines: they show what the child was given (compared with what
# its agent logged), and whether a frozen child ran again (its file grew).
#
# Pure bash (EPOCHREALTIME, read -t on a pipe of its own as the sleep), so a
# tick costs no fork: fifty of these are cheap on a small machine.
set -u
dir=${CHAOS_DIR:?CHAOS_DIR is not set}
tick=${CHAOS_TICK:-0.05}
what="acting as shard $SHARD_INDEX of $SHARD_COUNT epoch $SHARD_EPOCH slots ${SHARD_SLOTS:--}"
exec 3>>"$dir/$SHARD_CLUSTER/child.$SHARD_MEMBER.$$.$SHARD_EPOCH"
stopping=0
trap 'stopping=1' TERM INT HUP
echo "$EPOCHREALTIME start $what member $SHARD_MEMBER" >&3
# A pipe we hold both ends of never has data: read -t on it is a sleep.
exec {pause}<> <(:)
while [ "$stopping" = 0 ]; do
  echo "$EPOCHREALTIME act $what" >&3
  read -r -t "$tick" -u "$pause" _ || :
done
echo "$EPOCHREALTIME stop $what" >&3
exit 0
