// The audit log's storage and logic over MariaDB: appends, checkpoints,
// proofs, queries, retention (docs/audit-log-format.md).
//
// One writer orders the log: every append (and every checkpoint or purge
// that changes the tree) locks the single audit_tree_head row, so replicas
// serialise on it and the tree cannot fork. Appends are written
// speculatively: a group of batches is built against the head the group
// still in flight in this process will produce (or the committed head),
// its rows are inserted in its own transaction before it takes the
// head-row lock, and it takes the lock with an UPDATE of the head row
// conditional on the head being exactly the one it was built on; else it
// rolls back and is redone with the lock taken first (SELECT ... FOR
// UPDATE). Two groups insert at once; they commit in order. The
// head row keeps the tree size and the frontier (the roots of the perfect
// subtrees), so an append costs O(log n) hashing and never rereads the
// log. audit_nodes keeps the hash of every complete subtree of 256 leaves
// and more as it completes, so proofs read O(log n) rows.
//
// An entry's truth is its canonical bytes (entry_codec.h), stored in
// bundles with their leaf hashes (bundle_store.h); audit_sources,
// audit_postings and audit_key_index (key_index.h) are indexes for dedupe
// and Query. All four are RANGE-partitioned by month on appended_at
// (audit's own commit time, never earlier than the previous entry's), so
// each month holds a contiguous run of leaves. When an append opens a new
// month, a checkpoint is first signed at the size the log had at the
// month's boundary; a purge drops only whole months, oldest first, and
// verification resumes from that boundary checkpoint and the kept subtree
// hashes.
#ifndef QUNZU_SERVICES_AUDIT_AUDIT_LOG_H_
#define QUNZU_SERVICES_AUDIT_AUDIT_LOG_H_

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "services/audit/merkle.h"
#include "services/audit/signer.h"

namespace qunzu::audit {

// The retention floor (R13.2: at least six months).
inline constexpr int kMinimumRetentionDays = 180;
// Bounds on what one Append may carry.
inline constexpr int kMaxBatch = 1000;
inline constexpr size_t kMaxEntryBytes = 16 * 1024;

struct AuditLogOptions {
  // A checkpoint is signed once this many entries were appended since the
  // last one, or checkpoint_interval passed with entries unsigned.
  int64_t checkpoint_every_entries = 1000;
  absl::Duration checkpoint_interval = absl::Seconds(60);
  absl::Duration retention = absl::Hours(24 * 365);
  const Clock* clock = &SystemClock::Get();
  // Leaves per segment of the key index (key_index.h).
  uint64_t index_segment_leaves = 4096;
  // Tests only: called when a speculative group has been built (its base
  // head, leaf indexes and rows fixed, nothing inserted yet), after every
  // earlier group of this process has finished and before a later one is
  // built. A test appends through another AuditLog (another replica) here
  // to make the speculation fail deterministically.
  std::function<void()> after_speculative_build;
};

// The first leaf the key index does not cover yet (key_index.h).
absl::StatusOr<uint64_t> ReadIndexedUntil(sql::Connection& conn, bool for_update);

// The schema (component "audit").
const std::vector<Migration>& AuditLogMigrations();

// Checks a batch from `caller`: size, each entry's source (the caller's own
// service, one of ours), fields (bounded, UTF-8) and encoded size. The
// first problem, never a partial batch.
absl::Status ValidateAppend(const Caller& caller, const v1::AppendRequest& request);

class AuditLog {
 public:
  // registry may be null (tools, tests).
  static absl::StatusOr<std::unique_ptr<AuditLog>> Create(MysqlPool& pool,
                                                          std::shared_ptr<const Signer> signer,
                                                          AuditLogOptions options,
                                                          prometheus::Registry* registry);

  absl::StatusOr<v1::AppendResponse> Append(const Caller& caller, const v1::AppendRequest& request);
  // Entries audit records about itself (service "audit"): purges, legal
  // holds, regulator queries.
  absl::StatusOr<v1::AppendResponse> AppendOwn(std::vector<v1::AuditEvent> events);

  absl::StatusOr<v1::QueryResponse> Query(const Caller& caller, const std::string& peer,
                                          const v1::QueryRequest& request);
  absl::StatusOr<v1::GetCheckpointResponse> GetCheckpoint(const v1::GetCheckpointRequest& request);
  absl::StatusOr<v1::ListCheckpointsResponse> ListCheckpoints(
      const v1::ListCheckpointsRequest& request);
  absl::StatusOr<v1::GetInclusionProofResponse> GetInclusionProof(
      const v1::GetInclusionProofRequest& request);
  absl::StatusOr<v1::GetConsistencyProofResponse> GetConsistencyProof(
      const v1::GetConsistencyProofRequest& request);
  absl::StatusOr<v1::VerifyRangeResponse> VerifyRange(const v1::VerifyRangeRequest& request);
  absl::StatusOr<v1::GetRetentionStatusResponse> GetRetentionStatus();
  absl::StatusOr<v1::SetLegalHoldResponse> SetLegalHold(const Caller& caller,
                                                        const v1::SetLegalHoldRequest& request);

  // Signs a checkpoint when entries have waited checkpoint_interval.
  absl::Status MaybeCheckpoint();
  // Drops every whole month older than the retention and not held, oldest
  // first, and records the purge in the log. A run with nothing to drop
  // returns an empty PurgeRun and appends nothing.
  absl::StatusOr<v1::PurgeRun> Purge();
  // Indexes complete segments not indexed yet, at most max_segments, in
  // leaf order (key_index.h); returns how many. Run in the background;
  // Query is exact either way (it scans what is not indexed).
  absl::StatusOr<uint64_t> IndexKeys(uint64_t max_segments = UINT64_MAX);
  // Refreshes the gauges (tree size, age of the newest checkpoint).
  void UpdateGauges();

  const AuditLogOptions& options() const { return options_; }

 private:
  struct Head {
    uint64_t tree_size = 0;
    Frontier frontier;
    absl::Time last_appended_at = absl::InfinitePast();
    uint64_t last_checkpoint_size = 0;
    absl::Time last_checkpoint_at = absl::InfinitePast();
    uint64_t oldest_leaf_index = 0;
  };
  struct Metrics {
    prometheus::Counter* appended = nullptr;
    prometheus::Counter* duplicates = nullptr;
    prometheus::Histogram* batch_size = nullptr;
    prometheus::Histogram* latency = nullptr;
    prometheus::Gauge* tree_size = nullptr;
    prometheus::Gauge* checkpoint_age = nullptr;
    prometheus::Counter* purge_runs = nullptr;
    prometheus::Counter* checkpoints = nullptr;
    prometheus::Counter* redone = nullptr;
    prometheus::Gauge* index_lag = nullptr;
  };

  AuditLog(MysqlPool& pool, std::shared_ptr<const Signer> signer, AuditLogOptions options);
  absl::Status Init(prometheus::Registry* registry);
  absl::Time Now() const;

  // One Append waiting for, or in, a group commit.
  struct PendingAppend {
    std::vector<v1::AuditEvent>* events = nullptr;
    bool own = false;
    // The batch's request_id and the SHA-256 of its content (ours only).
    std::string request_id;
    std::string digest;
    // Per event (not ours), prepared before the group is written: its
    // canonical bytes without appended_at.
    std::vector<std::string> bodies;
    // Taken into a group being written.
    bool taken = false;
    bool done = false;
    absl::StatusOr<v1::AppendResponse> result = absl::UnknownError("not written");
  };
  absl::StatusOr<v1::AppendResponse> AppendEvents(std::vector<v1::AuditEvent> events, bool own,
                                                  const std::string& request_id);
  // A group's rows and the head it produces (audit_log_append.cc).
  struct GroupWrite;
  // What a group in flight (built, not yet committed or rolled back) added:
  // later groups built on it deduplicate against it.
  struct InFlight {
    uint64_t epoch = 0;
    uint64_t seq = 0;
    std::map<std::pair<std::string, uint64_t>, uint64_t> keys;
    std::map<std::pair<std::string, std::string>, std::string> requests;
  };
  // Writes the batches of group in one transaction and sets their results.
  // Called with building_ set; clears it once the group is built.
  void WriteGroup(const std::vector<PendingAppend*>& group);
  // The speculative write; false when it must be redone under the lock.
  bool WriteSpeculatively(const std::vector<PendingAppend*>& group, GroupWrite& w,
                          absl::Status& status);
  // The write with the head-row lock taken first, inside an exclusive
  // section (see BeginExclusive).
  absl::Status WriteLocked(const std::vector<PendingAppend*>& group, GroupWrite& w);
  // Dedupe read, leaf indexes, encoding, hashing and the INSERT statements
  // of group. With lock_head the same statement first locks the head row
  // FOR UPDATE and w.base is the head it read (and the dedupe parts are
  // locking reads); else w.base is set by the caller and the read is a
  // consistent one.
  absl::Status BuildGroup(sql::Connection& conn, const std::vector<PendingAppend*>& group,
                          bool lock_head, GroupWrite& w);
  // Writes the checkpoints due and the new head. With locked (the head just
  // read FOR UPDATE) it first checks the head is w.base; without, the head
  // row is updated only if it still is w.base (the check and the lock in
  // one statement). ABORTED (AUDIT_SPECULATION_STALE) when the head moved.
  absl::Status FinishGroup(sql::Connection& conn, GroupWrite& w, std::optional<Head> locked);
  // The first leaf left to index (key_index.h) given the state row's
  // indexed_until: purged segments are skipped.
  uint64_t FirstUnindexed(const Head& head, uint64_t indexed_until) const;
  // The checkpoints a group landing on head signs (a month boundary, every
  // N entries, every T), and the head after it, into w.
  void PlanFinish(GroupWrite& w, Head head) const;
  // Waits until no group is being built or in flight and keeps new ones
  // from starting until EndExclusive(); the head is reread afterwards. For
  // writes that take the head-row lock first (redone groups, checkpoints,
  // purges).
  void BeginExclusive();
  void EndExclusive();
  // A speculation failed: every group built on it is stale.
  void InvalidateChainLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_);
  // The head row, locked FOR UPDATE when for_update (the writer lock).
  absl::StatusOr<Head> LoadHead(sql::Connection& conn, bool for_update);
  absl::Status WriteCheckpoint(sql::Connection& conn, Head& head, absl::Time time);
  // Writes head as the head row, one literal statement. With expected, only
  // if the row still is expected (size, checkpoint, oldest leaf): else
  // ABORTED AUDIT_SPECULATION_STALE, nothing written. The UPDATE waits for
  // the head-row lock like a locking read would.
  absl::Status SaveHead(sql::Connection& conn, const Head& head, const Head* expected = nullptr);
  // Purge() under its named lock.
  absl::StatusOr<v1::PurgeRun> PurgeLocked();
  absl::StatusOr<std::vector<Hash>> ReadNodes(sql::Connection& conn,
                                              const std::vector<NodeId>& nodes);
  absl::StatusOr<std::optional<v1::Checkpoint>> ReadCheckpoint(sql::Connection& conn,
                                                               uint64_t tree_size);
  absl::StatusOr<v1::SigningKey> ReadKey(sql::Connection& conn, const std::string& key_id);
  absl::StatusOr<uint64_t> LatestCheckpointSize(sql::Connection& conn);

  // Monthly partitions: makes sure one covers t (and the month after).
  absl::Status EnsurePartitionFor(absl::Time t);
  struct PartitionInfo {
    std::string name;
    absl::Time start;  // InfinitePast for the first
    absl::Time end;
  };
  // The monthly partitions of table (all of kPartitionedTables have the
  // same ones).
  absl::StatusOr<std::vector<PartitionInfo>> ListPartitions(
      sql::Connection& conn, absl::string_view table = "audit_bundles");

  MysqlPool& pool_;
  std::shared_ptr<const Signer> signer_;
  const AuditLogOptions options_;
  Metrics metrics_;
  // Batches waiting for the group commit; one of their callers writes.
  absl::Mutex queue_mu_;
  absl::CondVar queue_cv_;
  std::deque<PendingAppend*> queue_ ABSL_GUARDED_BY(queue_mu_);
  // A group is being built (its rows not yet fixed), or an exclusive
  // section runs.
  bool building_ ABSL_GUARDED_BY(queue_mu_) = false;
  // The head the groups in flight will produce once all commit; unset when
  // it must be read from the database.
  std::optional<Head> tip_ ABSL_GUARDED_BY(queue_mu_);
  // Bumped when a speculation fails: groups of older epochs are stale.
  uint64_t epoch_ ABSL_GUARDED_BY(queue_mu_) = 0;
  // Groups in flight, in build order; seq numbers them, and the group with
  // seq next_lock_seq_ is the next to ask for the head-row lock.
  std::list<InFlight*> in_flight_ ABSL_GUARDED_BY(queue_mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(queue_mu_) = 0;
  uint64_t next_lock_seq_ ABSL_GUARDED_BY(queue_mu_) = 0;
  // Connections of the append path, kept with autocommit off so that a
  // group's transaction starts with its first statement; as many as groups
  // overlap (one being written, one or two committing). A broken one is
  // dropped, not returned.
  absl::StatusOr<std::unique_ptr<sql::Connection>> TakeAppendConnection();
  void ReturnAppendConnection(std::unique_ptr<sql::Connection> conn);
  absl::Mutex conns_mu_;
  std::vector<std::unique_ptr<sql::Connection>> idle_conns_ ABSL_GUARDED_BY(conns_mu_);
  absl::Mutex partition_mu_;
  absl::Time covered_until_ ABSL_GUARDED_BY(partition_mu_) = absl::InfinitePast();
};

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_AUDIT_LOG_H_
