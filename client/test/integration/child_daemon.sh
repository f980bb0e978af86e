#!/bin/sh
# Like child.sh, but first leaves a grandchild in a session of its own
# (setsid) that ignores SIGTERM, as a careless daemonizing worker would: only
# the agent's subreaper finds it. It records its pid in
# $SC_TEST_DIR/daemon.<member>.<epoch>.
setsid /bin/sh -c 'trap "" TERM; echo $$ > "$SC_TEST_DIR/daemon.$SHARD_MEMBER.$SHARD_EPOCH.tmp" &&
  mv "$SC_TEST_DIR/daemon.$SHARD_MEMBER.$SHARD_EPOCH.tmp" "$SC_TEST_DIR/daemon.$SHARD_MEMBER.$SHARD_EPOCH";
  exec sleep 3600' &
exec "$(dirname "$0")/child.sh"
