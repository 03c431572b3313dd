// Keeps the shared tables bounded: every service's idempotency keys and its
// delivered outbox rows would otherwise grow for ever. A background thread
// deletes, in small batches, idempotency keys older than their retention
// (a retry after that runs again as a new request) and outbox rows
// delivered longer ago than theirs. Undelivered outbox rows are never
// touched, whatever their age: the relay still owes them to the receiver.
#ifndef QUNZU_COMMON_HOUSEKEEPING_H_
#define QUNZU_COMMON_HOUSEKEEPING_H_

#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mysql_pool.h"

namespace qunzu {

struct HousekeepingOptions {
  // How long a request id is remembered (its retry window).
  absl::Duration idempotency_retention = absl::Hours(24 * 7);
  // How long a delivered outbox row is kept after delivery.
  absl::Duration outbox_retention = absl::Hours(24 * 7);
  // Time between passes.
  absl::Duration interval = absl::Minutes(10);
  // Rows per DELETE statement, so no pass holds locks for long.
  int batch = 1000;
};

// What one pass deleted.
struct HousekeepingPass {
  int64_t idempotency_keys_deleted = 0;
  int64_t outbox_rows_deleted = 0;
};

class Housekeeper {
 public:
  // INVALID_ARGUMENT (reason INVALID_HOUSEKEEPING_OPTIONS) when a retention
  // or the interval is not positive, or the batch is outside 1..100,000.
  static absl::StatusOr<std::unique_ptr<Housekeeper>> Create(MysqlPool& pool,
                                                             prometheus::Registry& registry,
                                                             const Clock& clock,
                                                             HousekeepingOptions options);
  // Stops the thread if it runs.
  ~Housekeeper();
  Housekeeper(const Housekeeper&) = delete;
  Housekeeper& operator=(const Housekeeper&) = delete;

  // Starts the background thread (a pass at once, then one per interval).
  // No-op when already running.
  void Start();
  // Stops the thread, interrupting its wait; a pass in progress finishes.
  void Stop();

  // One pass: deletes batch after batch until what is expired is gone.
  // Failures are counted and returned; what was deleted before stays deleted.
  absl::StatusOr<HousekeepingPass> RunOnce();

 private:
  Housekeeper(MysqlPool& pool, prometheus::Registry& registry, const Clock& clock,
              HousekeepingOptions options);
  void Loop();
  // Deletes up to `batch` rows per statement until fewer are left.
  // Counts each batch in `counted` as it commits.
  absl::StatusOr<int64_t> DeleteAll(const std::string& statement, absl::Time cutoff,
                                    prometheus::Counter& counted);

  MysqlPool& pool_;
  const Clock& clock_;
  const HousekeepingOptions options_;
  prometheus::Counter* idempotency_deleted_ = nullptr;
  prometheus::Counter* outbox_deleted_ = nullptr;
  prometheus::Counter* failures_ = nullptr;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_HOUSEKEEPING_H_
