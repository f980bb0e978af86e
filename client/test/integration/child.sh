#!/bin/sh
# A stand-in worker for the integration tests: records the assignment it was
# started with in $SC_TEST_DIR/child.<pid>, then sleeps until it is stopped.
# `exec` keeps the pid, so the agent's signals reach the sleeping process.
echo "$$ $SHARD_MEMBER $SHARD_INDEX $SHARD_COUNT $SHARD_EPOCH ${SHARD_SLOTS:--}" \
  > "$SC_TEST_DIR/child.$$.tmp" && mv "$SC_TEST_DIR/child.$$.tmp" "$SC_TEST_DIR/child.$$"
exec sleep 3600
