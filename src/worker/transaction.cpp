// The worker's transactions, the way pg_cron runs its own: a statement
// start time, SPI, an active snapshot, and pg_stat_activity kept current.

#include "worker/worker.hpp"

extern "C" {
#include "access/xact.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/snapmgr.h"
}

namespace shard_coordinator::worker {

void begin_transaction(const char *activity) {
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "SPI_connect failed");
  PushActiveSnapshot(GetTransactionSnapshot());
  pgstat_report_activity(STATE_RUNNING, activity);
}

void commit_transaction(MemoryContext back_to) {
  SPI_finish();
  PopActiveSnapshot();
  CommitTransactionCommand();
  // Whatever the rest of the cycle allocates would otherwise go to
  // TopMemoryContext and never be freed.
  MemoryContextSwitchTo(back_to);
  pgstat_report_stat(false);
  pgstat_report_activity(STATE_IDLE, nullptr);
}

int recover_from_error(MemoryContext back_to, const char *what) {
  MemoryContextSwitchTo(back_to);
  ErrorData *edata = CopyErrorData();
  FlushErrorState();
  AbortCurrentTransaction();
  MemoryContextSwitchTo(back_to);
  ereport(LOG,
          (errmsg("shard_coordinator: %s failed: %s", what, edata->message)));
  const int sqlerrcode = edata->sqlerrcode;
  FreeErrorData(edata);
  pgstat_report_activity(STATE_IDLE, nullptr);
  return sqlerrcode;
}

}  // namespace shard_coordinator::worker
