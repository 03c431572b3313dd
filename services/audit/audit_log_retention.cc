// AuditLog's retention: purging whole months past the retention, retention
// status, and legal holds that keep months from being purged.

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/audit_outbox.h"
#include "common/log.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/audit_log.h"
#include "services/audit/audit_log_internal.h"
#include "services/audit/bundle_store.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit {

using internal::Bad;
using internal::Bytes;
using internal::FromProto;
using internal::MonthOf;
using internal::TimeColumn;
using internal::ToMicros;
using internal::ToProto;

namespace {

std::string MonthLabel(absl::CivilMonth month) { return absl::FormatCivilTime(month); }

struct HoldRow {
  v1::LegalHold hold;
  absl::Time start;
  absl::Time end;
  bool active = true;
};

absl::StatusOr<std::vector<HoldRow>> ReadHolds(sql::Connection& conn, uint64_t only_id) {
  std::vector<HoldRow> out;
  RETURN_IF_ERROR(qunzu::Query(
      conn,
      absl::StrCat("SELECT legal_hold_id, start_time, end_time, case_reference, reason, "
                   "placed_by, placed_at, released_at, released_by, release_reason "
                   "FROM audit_legal_holds",
                   only_id != 0 ? " WHERE legal_hold_id = ?" : "",
                   " ORDER BY released_at IS NOT NULL, legal_hold_id"),
      only_id != 0 ? std::vector<SqlValue>{only_id} : std::vector<SqlValue>{},
      [&](const sql::ResultSet& row) -> absl::Status {
        HoldRow h;
        h.hold.set_legal_hold_id(row.getUInt64(1));
        ASSIGN_OR_RETURN(h.start, TimeColumn(row, 2));
        ASSIGN_OR_RETURN(h.end, TimeColumn(row, 3));
        ToProto(h.start, h.hold.mutable_start_time());
        ToProto(h.end, h.hold.mutable_end_time());
        h.hold.set_case_reference(Bytes(row, 4));
        h.hold.set_reason(Bytes(row, 5));
        h.hold.set_placed_by(Bytes(row, 6));
        ASSIGN_OR_RETURN(absl::Time placed, TimeColumn(row, 7));
        ToProto(placed, h.hold.mutable_placed_at());
        if (!row.isNull(8)) {
          ASSIGN_OR_RETURN(absl::Time released, TimeColumn(row, 8));
          ToProto(released, h.hold.mutable_released_at());
          h.hold.set_released_by(Bytes(row, 9));
          h.hold.set_release_reason(Bytes(row, 10));
          h.active = false;
        }
        out.push_back(std::move(h));
        return absl::OkStatus();
      }));
  return out;
}

bool Overlaps(const HoldRow& hold, absl::Time start, absl::Time end) {
  return hold.active && hold.start < end && hold.end > start;
}

// Copies the leaf hashes of every bundle below boundary (the leaves a
// purge drops) into audit_nodes as level 0, in chunks.
absl::Status KeepLeafHashes(sql::Connection& conn, uint64_t boundary) {
  constexpr size_t kBundles = 64;
  uint64_t next = 0;
  for (size_t read = kBundles; read == kBundles;) {
    std::vector<std::string> values;
    absl::Status damaged;
    ASSIGN_OR_RETURN(
        read,
        ReadBundles(
            conn, "first_leaf >= ? AND first_leaf < ?", {next, boundary}, kBundles,
            [&](const BundleRow& b) {
              next = b.first_leaf + 1;
              if (b.leaf_hashes.size() != b.count * kHashSize) {
                damaged = MakeError(absl::StatusCode::kDataLoss, "BUNDLE_DAMAGED",
                                    absl::StrCat("the bundle at leaf ", b.first_leaf, " holds ",
                                                 b.leaf_hashes.size(), " bytes of leaf hashes for ",
                                                 b.count, " entries; refusing to purge"));
                return false;
              }
              for (uint64_t i = 0; i < b.count; ++i) {
                values.push_back(absl::StrCat(
                    "(0,", b.first_leaf + i, ",X'",
                    absl::BytesToHexString(b.leaf_hashes.substr(i * kHashSize, kHashSize)), "')"));
              }
              return true;
            },
            false));
    RETURN_IF_ERROR(damaged);
    for (size_t begin = 0; begin < values.size(); begin += 5000) {
      const size_t end = std::min(values.size(), begin + 5000);
      RETURN_IF_ERROR(
          Execute(conn, absl::StrCat(
                            "INSERT IGNORE INTO audit_nodes (level, node_index, hash) "
                            "VALUES ",
                            absl::StrJoin(values.begin() + static_cast<std::ptrdiff_t>(begin),
                                          values.begin() + static_cast<std::ptrdiff_t>(end), ",")))
              .status());
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::PurgeRun> AuditLog::Purge() {
  // One purge at a time across replicas; a replica that finds it taken
  // leaves this round to the holder.
  ASSIGN_OR_RETURN(std::unique_ptr<sql::Connection> lock_conn, pool_.OpenDedicated());
  const std::string lock_name = "qunzu_audit_purge_" + pool_.schema();
  ASSIGN_OR_RETURN(bool locked, GetNamedLock(*lock_conn, lock_name, absl::ZeroDuration()));
  if (!locked) return v1::PurgeRun();
  absl::StatusOr<v1::PurgeRun> run = PurgeLocked();
  (void)ReleaseNamedLock(*lock_conn, lock_name);
  return run;
}

absl::StatusOr<v1::PurgeRun> AuditLog::PurgeLocked() {
  const absl::Time now = Now();
  const absl::Time cutoff = now - options_.retention;
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListPartitions(*lease));
  ASSIGN_OR_RETURN(std::vector<HoldRow> holds, ReadHolds(*lease, 0));
  std::vector<PartitionInfo> drop;
  for (const PartitionInfo& p : parts) {
    if (p.name == "p_start") continue;
    // Oldest first, and only a prefix: a held or young month keeps every
    // later one, so the kept leaves stay one contiguous run.
    if (p.end > cutoff) break;
    bool held = false;
    for (const HoldRow& h : holds) held = held || Overlaps(h, p.start, p.end);
    if (held) break;
    drop.push_back(p);
  }
  v1::PurgeRun run;
  if (drop.empty()) return run;
  const absl::Time boundary_time = drop.back().end;
  std::vector<std::string> names, months;
  for (const PartitionInfo& p : drop) {
    names.push_back(p.name);
    months.push_back(MonthLabel(MonthOf(p.end - absl::Seconds(1))));
  }
  uint64_t entries = 0;
  std::vector<uint64_t> counts;
  for (const PartitionInfo& p : drop) {
    uint64_t count = 0;
    RETURN_IF_ERROR(qunzu::Query(
        *lease,
        absl::StrCat("SELECT COALESCE(SUM(entry_count), 0) FROM audit_bundles PARTITION (", p.name,
                     ")"),
        {}, [&](const sql::ResultSet& row) {
          count = row.getUInt64(1);
          return absl::OkStatus();
        }));
    counts.push_back(count);
    entries += count;
  }
  // The first kept leaf, and the signed checkpoint verification resumes from.
  uint64_t boundary = 0;
  {
    // No append in flight while the head changes (see BeginExclusive).
    BeginExclusive();
    absl::Status status = WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
      ASSIGN_OR_RETURN(Head head, LoadHead(conn, true));
      boundary = head.tree_size;
      RETURN_IF_ERROR(
          qunzu::Query(conn, "SELECT MIN(first_leaf) FROM audit_bundles WHERE appended_at >= ?",
                       {boundary_time}, [&](const sql::ResultSet& row) {
                         if (!row.isNull(1)) boundary = row.getUInt64(1);
                         return absl::OkStatus();
                       }));
      if (boundary > 0) {
        ASSIGN_OR_RETURN(std::optional<v1::Checkpoint> cp, ReadCheckpoint(conn, boundary));
        if (!cp) {
          if (boundary != head.tree_size) {
            return MakeError(absl::StatusCode::kFailedPrecondition, "BOUNDARY_CHECKPOINT_MISSING",
                             absl::StrCat("no signed checkpoint at tree size ", boundary,
                                          "; refusing to purge"));
          }
          RETURN_IF_ERROR(WriteCheckpoint(conn, head, std::max(now, head.last_appended_at)));
        }
      }
      head.oldest_leaf_index = std::max(head.oldest_leaf_index, boundary);
      RETURN_IF_ERROR(SaveHead(conn, head));
      for (size_t i = 0; i < drop.size(); ++i) {
        RETURN_IF_ERROR(Execute(conn,
                                "INSERT IGNORE INTO audit_purged_partitions (name, month, "
                                "start_time, end_time, entry_count, boundary_tree_size, "
                                "purged_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                {drop[i].name, months[i],
                                 drop[i].start == absl::InfinitePast() ? SqlValue(nullptr)
                                                                       : SqlValue(drop[i].start),
                                 drop[i].end, counts[i], boundary, now})
                            .status());
      }
      return absl::OkStatus();
    });
    EndExclusive();
    RETURN_IF_ERROR(status);
  }
  // The dropped leaves' hashes stay, for proofs and the boundary frontier.
  RETURN_IF_ERROR(KeepLeafHashes(*lease, boundary));
  for (const char* table : kPartitionedTables) {
    RETURN_IF_ERROR(Execute(*lease, absl::StrCat("ALTER TABLE ", table, " DROP PARTITION ",
                                                 absl::StrJoin(names, ", ")))
                        .status());
  }
  RETURN_IF_ERROR(
      Execute(*lease, "DELETE FROM audit_append_requests WHERE created_at < ?", {boundary_time})
          .status());
  v1::AuditEvent event;
  event.set_action("AUDIT_LOG_PURGED");
  event.set_principal("audit");
  event.set_role(common::v1::ROLE_SERVICE);
  ToProto(now, event.mutable_time());
  (*event.mutable_details())["months"] = absl::StrJoin(months, ",");
  (*event.mutable_details())["entries_purged"] = absl::StrCat(entries);
  (*event.mutable_details())["boundary_tree_size"] = absl::StrCat(boundary);
  (*event.mutable_details())["retention_days"] = absl::StrCat(options_.retention / absl::Hours(24));
  ASSIGN_OR_RETURN(v1::AppendResponse appended, AppendOwn({event}));
  const uint64_t leaf = appended.results(0).leaf_index();
  RETURN_IF_ERROR(Execute(*lease,
                          "INSERT INTO audit_purges (purged_at, months, entries_purged, "
                          "audit_leaf_index) VALUES (?, ?, ?, ?)",
                          {now, absl::StrJoin(months, ","), entries, leaf})
                      .status());
  metrics_.purge_runs->Increment();
  LogInfo("audit_purged", {{"months", absl::StrJoin(months, ",")},
                           {"entries", static_cast<int64_t>(entries)},
                           {"boundary_tree_size", static_cast<int64_t>(boundary)}});
  ToProto(now, run.mutable_time());
  for (const std::string& m : months) run.add_months(m);
  run.set_entries_purged(entries);
  run.set_audit_leaf_index(leaf);
  return run;
}

absl::StatusOr<v1::GetRetentionStatusResponse> AuditLog::GetRetentionStatus() {
  const absl::Time now = Now();
  const absl::Time cutoff = now - options_.retention;
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  ASSIGN_OR_RETURN(std::vector<PartitionInfo> parts, ListPartitions(*lease));
  ASSIGN_OR_RETURN(std::vector<HoldRow> holds, ReadHolds(*lease, 0));
  v1::GetRetentionStatusResponse out;
  out.mutable_retention()->set_seconds(absl::ToInt64Seconds(options_.retention));
  out.mutable_minimum_retention()->set_seconds(int64_t{kMinimumRetentionDays} * 86400);
  out.set_tree_size(head.tree_size);
  out.set_oldest_leaf_index(head.oldest_leaf_index);
  RETURN_IF_ERROR(
      qunzu::Query(*lease,
                   "SELECT appended_at FROM audit_bundles WHERE first_leaf <= ? AND first_leaf + "
                   "entry_count > ? ORDER BY first_leaf DESC LIMIT 1",
                   {head.oldest_leaf_index, head.oldest_leaf_index},
                   [&](const sql::ResultSet& row) -> absl::Status {
                     ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 1));
                     ToProto(t, out.mutable_oldest_entry_time());
                     return absl::OkStatus();
                   }));
  RETURN_IF_ERROR(
      qunzu::Query(*lease,
                   "SELECT name, month, start_time, end_time, entry_count, boundary_tree_size FROM "
                   "audit_purged_partitions ORDER BY end_time",
                   {}, [&](const sql::ResultSet& row) -> absl::Status {
                     v1::Partition* p = out.add_partitions();
                     p->set_month(Bytes(row, 2));
                     if (!row.isNull(3)) {
                       ASSIGN_OR_RETURN(absl::Time s, TimeColumn(row, 3));
                       ToProto(s, p->mutable_start_time());
                     }
                     ASSIGN_OR_RETURN(absl::Time e, TimeColumn(row, 4));
                     ToProto(e, p->mutable_end_time());
                     p->set_entry_count(row.getUInt64(5));
                     p->set_boundary_tree_size(row.getUInt64(6));
                     p->set_state(v1::PARTITION_STATE_PURGED);
                     return absl::OkStatus();
                   }));
  bool blocked = false;
  for (const PartitionInfo& part : parts) {
    if (part.name == "p_start") continue;
    v1::Partition* p = out.add_partitions();
    p->set_month(MonthLabel(MonthOf(part.end - absl::Seconds(1))));
    if (part.start != absl::InfinitePast() && part.start > absl::FromUnixSeconds(946684800)) {
      ToProto(part.start, p->mutable_start_time());
    }
    ToProto(part.end, p->mutable_end_time());
    RETURN_IF_ERROR(qunzu::Query(
        *lease,
        absl::StrCat("SELECT COALESCE(SUM(entry_count), 0), MIN(first_leaf), "
                     "MAX(first_leaf + entry_count - 1) FROM audit_bundles PARTITION (",
                     part.name, ")"),
        {}, [&](const sql::ResultSet& row) {
          p->set_entry_count(row.getUInt64(1));
          if (!row.isNull(2)) {
            p->set_first_leaf_index(row.getUInt64(2));
            p->set_last_leaf_index(row.getUInt64(3));
            p->set_boundary_tree_size(row.getUInt64(3) + 1);
          }
          return absl::OkStatus();
        }));
    bool held = false;
    for (const HoldRow& h : holds) held = held || Overlaps(h, part.start, part.end);
    if (part.end > cutoff) {
      p->set_state(v1::PARTITION_STATE_RETAINED);
      blocked = true;
    } else if (held || blocked) {
      p->set_state(v1::PARTITION_STATE_HELD);
      blocked = true;
    } else {
      p->set_state(v1::PARTITION_STATE_PURGEABLE);
    }
  }
  for (const HoldRow& h : holds) *out.add_legal_holds() = h.hold;
  RETURN_IF_ERROR(qunzu::Query(
      *lease,
      "SELECT purged_at, months, entries_purged, audit_leaf_index FROM audit_purges "
      "ORDER BY purge_id DESC LIMIT 1",
      {}, [&](const sql::ResultSet& row) -> absl::Status {
        v1::PurgeRun* run = out.mutable_last_purge();
        ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 1));
        ToProto(t, run->mutable_time());
        for (absl::string_view m : absl::StrSplit(Bytes(row, 2), ',', absl::SkipEmpty())) {
          run->add_months(std::string(m));
        }
        run->set_entries_purged(row.getUInt64(3));
        run->set_audit_leaf_index(row.getUInt64(4));
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<v1::SetLegalHoldResponse> AuditLog::SetLegalHold(
    const Caller& caller, const v1::SetLegalHoldRequest& request) {
  if (request.reason().empty()) return Bad("REASON_REQUIRED", "a legal hold needs a reason");
  if (request.reason().size() > 1024 || !IsValidUtf8(request.reason())) {
    return InvalidField("reason", "must be valid UTF-8 of at most 1024 bytes");
  }
  if (request.case_reference().size() > 255 || !IsValidUtf8(request.case_reference())) {
    return InvalidField("case_reference", "must be valid UTF-8 of at most 255 bytes");
  }
  if (request.request_id().empty() || request.request_id().size() > 128) {
    return InvalidField("request_id", "is required (1..128 characters)");
  }
  const absl::Time now = Now();
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  uint64_t id = request.legal_hold_id();
  std::string action;
  if (id == 0) {
    if (!request.has_start_time() || !request.has_end_time() ||
        FromProto(request.start_time()) >= FromProto(request.end_time())) {
      return Bad("TIME_RANGE_INVALID", "a new legal hold needs start_time before end_time");
    }
    // A retry with the same request_id finds the hold it placed.
    RETURN_IF_ERROR(qunzu::Query(
        *lease,
        "SELECT legal_hold_id FROM audit_legal_holds WHERE placed_by = ? AND request_id = ?",
        {caller.principal, request.request_id()}, [&](const sql::ResultSet& row) {
          id = row.getUInt64(1);
          return absl::OkStatus();
        }));
    if (id == 0) {
      RETURN_IF_ERROR(Execute(*lease,
                              "INSERT INTO audit_legal_holds (request_id, placed_by, start_time, "
                              "end_time, case_reference, reason, placed_at) VALUES "
                              "(?, ?, ?, ?, ?, ?, ?)",
                              {request.request_id(), caller.principal,
                               ToMicros(FromProto(request.start_time())),
                               ToMicros(FromProto(request.end_time())), request.case_reference(),
                               request.reason(), now})
                          .status());
      ASSIGN_OR_RETURN(id, qunzu::LastInsertId(*lease));
      action = "LEGAL_HOLD_PLACED";
    }
  } else {
    ASSIGN_OR_RETURN(std::vector<HoldRow> found, ReadHolds(*lease, id));
    if (found.empty()) {
      return MakeError(absl::StatusCode::kNotFound, "LEGAL_HOLD_NOT_FOUND",
                       absl::StrCat("no legal hold ", id));
    }
    if (!found.front().active) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "LEGAL_HOLD_RELEASED",
                       absl::StrCat("legal hold ", id, " is already released"));
    }
    RETURN_IF_ERROR(Execute(*lease,
                            "UPDATE audit_legal_holds SET released_at = ?, released_by = ?, "
                            "release_reason = ? WHERE legal_hold_id = ? AND released_at IS NULL",
                            {now, caller.principal, request.reason(), id})
                        .status());
    action = "LEGAL_HOLD_RELEASED";
  }
  ASSIGN_OR_RETURN(std::vector<HoldRow> holds, ReadHolds(*lease, id));
  if (!action.empty()) {
    v1::AuditEvent event = AuditEventFor(caller, "", "/qunzu.audit.v1.AuditService/SetLegalHold",
                                         action, request.request_id());
    ToProto(now, event.mutable_time());
    v1::Subject* subject = event.add_subjects();
    subject->set_kind(v1::SUBJECT_KIND_LEGAL_HOLD);
    subject->set_id(id);
    (*event.mutable_details())["reason"] = request.reason();
    (*event.mutable_details())["case_reference"] = holds.front().hold.case_reference();
    ASSIGN_OR_RETURN(v1::AppendResponse appended, AppendOwn({event}));
    (void)appended;
  }
  v1::SetLegalHoldResponse out;
  *out.mutable_legal_hold() = holds.front().hold;
  return out;
}

}  // namespace qunzu::audit
