// The transactional outbox (DESIGN.md section 1, "Every state change is
// recorded"): a service writes the record of a change (an audit entry, a
// filing) in the same MySQL transaction as the change, and a relay in the
// same process delivers committed records to their receiver, marking them
// delivered only after the receiver acknowledged a durable write.
//
// Delivery is at least once, per topic, in id order among committed rows.
// A record whose transaction commits after one with a higher id can be
// delivered after it; receivers order by their own sequence and deduplicate
// by (source, record id). Delivered rows are kept in the outbox table.
//
// One relay per schema and topic delivers at a time across all replicas:
// each pass holds the named lock "qunzu.outbox.<schema>.<topic>" (GET_LOCK on
// a dedicated connection) while it reads a batch, delivers it and marks it.
// A lock rather than SELECT ... FOR UPDATE SKIP LOCKED, because skipping
// locked rows would let a second relay deliver later rows while the first
// still retries earlier ones (out of order), and because row locks would be
// held in an open transaction for the whole remote call. If the holder's
// session dies, the server frees the lock and another replica takes over.
//
// Needs the "common" migrations (CommonMigrations() in migrations.h).
#ifndef QUNZU_COMMON_OUTBOX_H_
#define QUNZU_COMMON_OUTBOX_H_

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"

namespace qunzu {

// One committed outbox row.
struct OutboxRecord {
  int64_t id = 0;
  std::string topic;
  // Opaque bytes, typically a serialized proto.
  std::string payload;
  absl::Time created_at;
};

// Writes outbox rows inside the caller's transaction.
class OutboxWriter {
 public:
  // Adds a record for `topic` (1..64 of [a-z0-9_.-], e.g. "audit") in conn's
  // open transaction and returns its id. It reaches the relay only if that
  // transaction commits. FAILED_PRECONDITION (OUTBOX_NO_TRANSACTION) when
  // conn is not inside a transaction, since the record would then not be
  // atomic with the change; INVALID_ARGUMENT for a bad topic.
  absl::StatusOr<int64_t> Add(sql::Connection& conn, const std::string& topic,
                              const std::string& payload) const;
};

// Where a relay delivers records (the audit client, the filing client).
class OutboxReceiver {
 public:
  virtual ~OutboxReceiver() = default;
  // Durably accepts `batch`: records of one topic in increasing id order.
  // OK promises all of them are durable on the receiver's side; any other
  // status means none counts as delivered and the whole batch is offered
  // again after a backoff. A record can thus arrive more than once (also
  // after a crash between OK and the marking); deduplicate by id.
  virtual absl::Status Deliver(const std::vector<OutboxRecord>& batch) = 0;
};

// How a relay runs.
struct OutboxRelayOptions {
  std::string topic;
  // Records per Deliver call, 1..1000.
  int batch_size = 100;
  // Wait between passes when nothing is pending (Wake ends it early).
  absl::Duration poll_interval = absl::Seconds(1);
  // Wait after a failed pass: doubles per consecutive failure from
  // min_backoff up to max_backoff, with jitter.
  absl::Duration min_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(30);
};

// What one relay pass did.
struct OutboxPass {
  // This relay held the topic's lock; false when another relay is
  // delivering the topic right now (nothing was done).
  bool leader = false;
  // Records delivered and marked in this pass.
  int delivered = 0;
  // A full batch went out, so more records may be waiting.
  bool more = false;
};

// The wait after `failures` consecutive failed passes (failures >= 1):
// min * 2^(failures-1) capped at max, then scaled by a jitter in [0.5, 1]
// taken from `unit_random` in [0, 1), and never below min.
absl::Duration OutboxBackoff(int failures, absl::Duration min, absl::Duration max,
                             double unit_random);

// Delivers one topic's outbox records from one schema to one receiver, on a
// background thread or pass by pass (RunOnce). Exports, labelled by topic:
// qunzu_outbox_pending (gauge: undelivered records),
// qunzu_outbox_oldest_pending_seconds (gauge: age of the oldest undelivered
// record, the lag), qunzu_outbox_delivered_total (records delivered) and
// qunzu_outbox_delivery_failures_total (failed Deliver calls). The pool,
// receiver and registry must outlive the relay.
class OutboxRelay {
 public:
  // INVALID_ARGUMENT for bad options; INTERNAL when the registry already
  // holds one of the metric names with another type.
  static absl::StatusOr<std::unique_ptr<OutboxRelay>> Create(MysqlPool& pool,
                                                             OutboxReceiver& receiver,
                                                             prometheus::Registry& registry,
                                                             OutboxRelayOptions options);
  // Stops the thread if it runs.
  ~OutboxRelay();
  OutboxRelay(const OutboxRelay&) = delete;
  OutboxRelay& operator=(const OutboxRelay&) = delete;

  // Starts the background thread: passes back to back while full batches go
  // out, poll_interval apart when idle, backing off after failures. No-op
  // when already running.
  void Start();
  // Stops the thread and waits for it. Interrupts an idle wait or a backoff
  // at once; a pass in progress finishes first (bounded by the receiver's
  // own deadline and the MySQL timeouts).
  void Stop();
  // Ends the current idle wait, e.g. after committing new records. Does not
  // shorten a backoff.
  void Wake();

  // One pass: take the lock (without waiting), deliver at most one batch,
  // mark it, release the lock, refresh the gauges. Returns the receiver's
  // status when it failed (attempts and last_error are then recorded on the
  // rows) or a MySQL failure. Safe to call while the thread runs.
  absl::StatusOr<OutboxPass> RunOnce();

 private:
  struct Metrics {
    prometheus::Gauge* pending = nullptr;
    prometheus::Gauge* oldest_pending_seconds = nullptr;
    prometheus::Counter* delivered = nullptr;
    prometheus::Counter* failures = nullptr;
  };

  OutboxRelay(MysqlPool& pool, OutboxReceiver& receiver, Metrics metrics,
              OutboxRelayOptions options);
  absl::Status DeliverBatch(OutboxPass& pass) ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  absl::StatusOr<std::vector<OutboxRecord>> ReadBatch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  absl::Status Mark(const std::vector<OutboxRecord>& batch, const absl::Status& outcome)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  void RefreshGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(run_mu_);
  void Loop();
  // Waits up to `wait`; false once Stop was called.
  bool Pause(absl::Duration wait, bool wakeable);

  MysqlPool& pool_;
  OutboxReceiver& receiver_;
  const Metrics metrics_;
  const OutboxRelayOptions options_;
  const std::string lock_name_;

  absl::Mutex run_mu_;
  std::unique_ptr<sql::Connection> conn_ ABSL_GUARDED_BY(run_mu_);

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_ ABSL_GUARDED_BY(mu_);
};

}  // namespace qunzu

#endif  // QUNZU_COMMON_OUTBOX_H_
