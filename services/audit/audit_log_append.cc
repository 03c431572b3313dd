// AuditLog's append path: batches queued for a group commit, each group
// written as literal multi-row INSERTs in one transaction, speculatively
// (inserted before the tree-head lock, checked under it, redone with the
// lock taken first when the head moved), and periodic checkpoints.

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

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

using internal::Bytes;
using internal::FromProto;
using internal::MonthOf;
using internal::TimeColumn;
using internal::ToMicros;

namespace {

constexpr char kOwnService[] = "audit";
// The most entries one group commit writes.
constexpr size_t kMaxGroupEntries = 5000;
// The most groups written at once: one inserting its rows while the one
// before it holds the head-row lock and commits. Unbounded lost at batches
// of 1 and 100 (more, smaller groups, each paying a COMMIT and its round
// trips; docs/benchmarks.md).
constexpr size_t kMaxInFlight = 2;

// Literal SQL values for the append path's multi-row INSERTs. A statement
// without parameters runs over the text protocol in one round trip (a
// prepared one costs prepare, execute and close), so the append path builds
// its statements from literals: numbers in decimal, every string and byte
// string as a hex literal (no escaping to get wrong), text with an
// explicit utf8mb4 introducer (ValidateAppend checked it is UTF-8).
void AppendHexDigits(std::string& out, absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
}

void AppendHex(std::string& out, absl::string_view bytes) {
  out += "X'";
  AppendHexDigits(out, bytes);
  out += "'";
}

void AppendText(std::string& out, absl::string_view text) {
  if (text.empty()) {
    out += "''";
    return;
  }
  out += "_utf8mb4 ";
  AppendHex(out, text);
}

void AppendTime(std::string& out, absl::Time t) {
  out += "'";
  out += absl::FormatTime("%Y-%m-%d %H:%M:%E6S", t, absl::UTCTimeZone());
  out += "'";
}

// Statements of literal rows, cut so none exceeds kMaxStatementBytes (well
// under max_allowed_packet's default of 16 MiB).
constexpr size_t kMaxStatementBytes = size_t{4} * 1024 * 1024;

class LiteralInsert {
 public:
  explicit LiteralInsert(std::string prefix) : prefix_(std::move(prefix)) {}
  // Starts a row; the caller appends "v1,v2,..." to the returned string.
  std::string& Row() {
    if (current_.size() >= kMaxStatementBytes) {
      current_ += ")";
      statements_.push_back(std::move(current_));
      current_.clear();
    }
    if (current_.empty()) {
      current_ = prefix_;
      current_ += "(";
    } else {
      current_ += "),(";
    }
    ++rows_;
    return current_;
  }
  size_t rows() const { return rows_; }
  // Moves the finished statements to the end of out.
  void TakeStatements(std::vector<std::string>& out) {
    if (!current_.empty()) {
      current_ += ")";
      statements_.push_back(std::move(current_));
      current_.clear();
    }
    for (std::string& statement : statements_) out.push_back(std::move(statement));
    statements_.clear();
  }

 private:
  std::string prefix_;
  std::string current_;
  std::vector<std::string> statements_;
  size_t rows_ = 0;
};

// The dedupe read takes ids of one service closer than this as one range.
constexpr uint64_t kSourceRangeGap = 1000;

// Entry bytes per bundle row: its hex literal stays well under
// kMaxStatementBytes and max_allowed_packet.
constexpr size_t kMaxBundleBytes = size_t{1} << 20;

// A bundle being built: a run of the group's leaves.
struct Bundle {
  uint64_t first_leaf = 0;
  uint64_t count = 0;
  std::string entries;
  std::string hashes;
  std::optional<absl::Time> min_event_time;
  std::optional<absl::Time> max_event_time;
  std::set<std::pair<int, std::string>> postings;
};

// The bundle's postings of e (bundle_store.h), empty values left out.
void AddPostings(const v1::AuditEvent& e, std::set<std::pair<int, std::string>>& out) {
  auto add = [&](PostingKind kind, const std::string& value) {
    if (!value.empty()) out.emplace(static_cast<int>(kind), value);
  };
  add(PostingKind::kService, e.service());
  add(PostingKind::kAction, e.action());
  add(PostingKind::kPrincipal, e.principal());
}

}  // namespace

struct AuditLog::GroupWrite {
  // The head the group is built on, and the head once its leaves are in.
  Head base;
  Head produced;
  absl::Time now;
  std::vector<v1::AppendResponse> responses;
  // A batch refused alone (its request_id reused for other content).
  std::vector<absl::Status> refused;
  uint64_t appended = 0;
  uint64_t duplicates = 0;
  uint64_t checkpoints = 0;
  // The tree once the group's leaves are in (BuildGroup), then the
  // checkpoints to sign, each the head it signs (PlanFinish).
  Head built;
  std::vector<Head> to_sign;
  // request_id -> batch digest, and (service, source_id) -> leaf index, of
  // what is in the log (or in a group in flight this one is built on).
  std::map<std::pair<std::string, std::string>, std::string> known;
  std::map<std::pair<std::string, uint64_t>, uint64_t> existing;
  // The group's INSERTs, in order.
  std::vector<std::string> statements;
  // What this group adds, for the groups built on it.
  InFlight added;
};

absl::StatusOr<v1::AppendResponse> AuditLog::Append(const Caller& caller,
                                                    const v1::AppendRequest& request) {
  RETURN_IF_ERROR(ValidateAppend(caller, request));
  std::vector<v1::AuditEvent> events(request.events().begin(), request.events().end());
  return AppendEvents(std::move(events), false, request.request_id());
}

absl::StatusOr<v1::AppendResponse> AuditLog::AppendOwn(std::vector<v1::AuditEvent> events) {
  for (v1::AuditEvent& e : events) e.set_service(kOwnService);
  return AppendEvents(std::move(events), true, "");
}

absl::StatusOr<v1::AppendResponse> AuditLog::AppendEvents(std::vector<v1::AuditEvent> events,
                                                          bool own, const std::string& request_id) {
  const absl::Time started = absl::Now();
  RETURN_IF_ERROR(EnsurePartitionFor(Now()));
  PendingAppend pending;
  // What does not depend on the leaf index or the commit time is prepared
  // here, in the caller's thread, not while a group is built: each entry's
  // canonical bytes but the trailing appended_at. (Our own entries take
  // their source_id from their leaf index.)
  if (!own) {
    pending.bodies.reserve(events.size());
    // The batch's content, to tell a retry from a reuse of its request_id.
    std::string content;
    const std::string epoch = EncodeAppendedAt(absl::UnixEpoch());
    for (const v1::AuditEvent& e : events) {
      std::string body = EncodeEntryBody(e);
      absl::StrAppend(&content, body, epoch);
      pending.bodies.push_back(std::move(body));
    }
    pending.digest = HashToBytes(Sha256(content));
  }
  // Group commit: batches that arrive while a group is being built are
  // written together in the next, in arrival order. A group is built by
  // one of its callers; once its rows are fixed (and before they are
  // inserted) the next group may be built on the head it will produce, so
  // two groups insert at once and then commit one after the other.
  pending.events = &events;
  pending.own = own;
  pending.request_id = request_id;
  {
    absl::MutexLock lock(&queue_mu_);
    queue_.push_back(&pending);
    while (!pending.done) {
      if (building_ || pending.taken || in_flight_.size() >= kMaxInFlight) {
        queue_cv_.Wait(&queue_mu_);
        continue;
      }
      building_ = true;
      std::vector<PendingAppend*> group;
      size_t entries = 0;
      while (!queue_.empty() &&
             (group.empty() || entries + queue_.front()->events->size() <= kMaxGroupEntries)) {
        entries += queue_.front()->events->size();
        queue_.front()->taken = true;
        group.push_back(queue_.front());
        queue_.pop_front();
      }
      queue_mu_.Unlock();
      WriteGroup(group);
      queue_mu_.Lock();
      for (PendingAppend* p : group) p->done = true;
      queue_cv_.SignalAll();
    }
  }
  if (pending.result.ok()) {
    metrics_.batch_size->Observe(static_cast<double>(events.size()));
    metrics_.latency->Observe(absl::ToDoubleSeconds(absl::Now() - started));
  }
  return std::move(pending.result);
}

absl::Status AuditLog::BuildGroup(sql::Connection& conn, const std::vector<PendingAppend*>& group,
                                  bool lock_head, GroupWrite& w) {
  w.appended = 0;
  w.duplicates = 0;
  w.responses.assign(group.size(), v1::AppendResponse());
  w.refused.assign(group.size(), absl::OkStatus());
  w.statements.clear();
  // One statement answers both questions: which request_ids were seen
  // before (a request_id must carry the same batch again, else that batch
  // alone is refused), and which events are already in the log by
  // (service, source_id). With lock_head it first takes the head row lock
  // (every writer locks it first, so no lock cycle) and the other parts
  // are locking reads, which see the latest committed rows. Without, it is
  // a consistent read of what was committed when the transaction's
  // snapshot was taken; what groups still in flight add is in w.known and
  // w.existing already, and FinishGroup checks under the head row lock
  // that nothing else was appended since.
  {
    const char* const lock = lock_head ? " LOCK IN SHARE MODE)" : ")";
    std::vector<std::string> parts;
    if (lock_head) {
      parts.emplace_back(
          "(SELECT 2, tree_size, frontier, last_appended_at, last_checkpoint_size, "
          "last_checkpoint_at, oldest_leaf_index FROM audit_tree_head WHERE id = 1 FOR UPDATE)");
    }
    std::string requests;
    for (const PendingAppend* p : group) {
      if (p->own || p->request_id.empty()) continue;
      requests += requests.empty() ? "(SELECT 0, service, request_id, digest, NULL, NULL, NULL "
                                     "FROM audit_append_requests WHERE "
                                   : " OR ";
      requests += "(service = ";
      AppendText(requests, p->events->front().service());
      requests += " AND request_id = ";
      AppendText(requests, p->request_id);
      requests += ")";
    }
    if (!requests.empty()) parts.push_back(requests + lock);
    std::map<std::string, std::set<uint64_t>> wanted;
    for (const PendingAppend* p : group) {
      if (p->own) continue;
      for (const v1::AuditEvent& e : *p->events) wanted[e.service()].insert(e.source_id());
    }
    for (const auto& [service, ids] : wanted) {
      // The runs (bundle_store.h) that may hold one of ids. A service's
      // runs never overlap, so those holding an id of [lo, hi] are the ones
      // starting in it and the last one starting before it. Ids close
      // together share one range; at most 500 ranges per part.
      const std::vector<std::pair<uint64_t, uint64_t>> ranges = CloseRanges(ids, kSourceRangeGap);
      std::string select =
          "(SELECT 1, service, CAST(first_source AS CHAR), CAST(source_count AS CHAR), "
          "CAST(first_leaf AS CHAR), NULL, NULL FROM audit_sources WHERE service = ";
      AppendText(select, service);
      for (size_t begin = 0; begin < ranges.size(); begin += 500) {
        std::string part = select + " AND (";
        for (size_t i = begin; i < std::min(ranges.size(), begin + 500); ++i) {
          absl::StrAppend(&part, i == begin ? "" : " OR ", "first_source BETWEEN ", ranges[i].first,
                          " AND ", ranges[i].second);
        }
        parts.push_back(part + ")" + lock);
      }
      for (const auto& [lo, hi] : ranges) {
        if (lo == 0) continue;
        parts.push_back(absl::StrCat(select, " AND first_source < ", lo,
                                     " ORDER BY first_source DESC LIMIT 1", lock));
      }
    }
    std::optional<Head> locked;
    if (!parts.empty()) {
      RETURN_IF_ERROR(qunzu::Query(
          conn, absl::StrJoin(parts, " UNION ALL "), {},
          [&](const sql::ResultSet& row) -> absl::Status {
            const int64_t tag = row.getInt(1);
            if (tag == 2) {
              // The head row; its columns share types with the others', so
              // numbers arrive as text.
              Head h;
              if (!absl::SimpleAtoi(Bytes(row, 2), &h.tree_size) ||
                  !absl::SimpleAtoi(Bytes(row, 5), &h.last_checkpoint_size) ||
                  !absl::SimpleAtoi(Bytes(row, 7), &h.oldest_leaf_index)) {
                return MakeError(absl::StatusCode::kInternal, "AUDIT_ROW_INVALID",
                                 "audit_tree_head returned a non-numeric size or index");
              }
              ASSIGN_OR_RETURN(h.frontier, Frontier::Parse(h.tree_size, Bytes(row, 3)));
              ASSIGN_OR_RETURN(h.last_appended_at, TimeColumn(row, 4));
              ASSIGN_OR_RETURN(h.last_checkpoint_at, TimeColumn(row, 6));
              locked = std::move(h);
              return absl::OkStatus();
            }
            if (tag == 0) {
              w.known.emplace(std::make_pair(Bytes(row, 2), Bytes(row, 3)), Bytes(row, 4));
              return absl::OkStatus();
            }
            uint64_t first_source = 0;
            uint64_t count = 0;
            uint64_t first_leaf = 0;
            if (!absl::SimpleAtoi(Bytes(row, 3), &first_source) ||
                !absl::SimpleAtoi(Bytes(row, 4), &count) ||
                !absl::SimpleAtoi(Bytes(row, 5), &first_leaf)) {
              return MakeError(absl::StatusCode::kInternal, "AUDIT_ROW_INVALID",
                               "audit_sources returned a non-numeric run");
            }
            std::string service = Bytes(row, 2);
            auto asked = wanted.find(service);
            if (asked == wanted.end()) return absl::OkStatus();
            const std::set<uint64_t>& ids = asked->second;
            for (auto it = ids.lower_bound(first_source);
                 it != ids.end() && *it - first_source < count; ++it) {
              w.existing.emplace(std::make_pair(service, *it), first_leaf + (*it - first_source));
            }
            return absl::OkStatus();
          }));
    }
    if (lock_head) {
      if (!locked) {
        return MakeError(absl::StatusCode::kInternal, "TREE_HEAD_MISSING",
                         "audit_tree_head has no row; the schema is damaged");
      }
      w.base = *std::move(locked);
    }
  }
  w.now = std::max(Now(), w.base.last_appended_at);
  w.produced = w.base;
  LiteralInsert request_rows(
      "INSERT INTO audit_append_requests (service, request_id, digest, created_at) VALUES ");
  for (size_t g = 0; g < group.size(); ++g) {
    const PendingAppend* p = group[g];
    if (p->own || p->request_id.empty()) continue;
    const std::pair<std::string, std::string> key = {p->events->front().service(), p->request_id};
    auto it = w.known.find(key);
    if (it == w.known.end()) {
      w.known[key] = p->digest;
      w.added.requests[key] = p->digest;
      std::string& row = request_rows.Row();
      AppendText(row, key.first);
      row += ",";
      AppendText(row, key.second);
      row += ",";
      AppendHex(row, p->digest);
      row += ",";
      AppendTime(row, w.now);
    } else if (it->second != p->digest) {
      w.refused[g] =
          MakeError(absl::StatusCode::kAlreadyExists, "REQUEST_ID_REUSED",
                    "request_id " + p->request_id + " was used before for a different batch");
    }
  }
  request_rows.TakeStatements(w.statements);
  LiteralInsert bundle_rows(
      "INSERT INTO audit_bundles (first_leaf, appended_at, entry_count, entries, leaf_hashes, "
      "min_event_time, max_event_time) VALUES ");
  LiteralInsert source_rows(
      "INSERT INTO audit_sources (service, first_source, appended_at, source_count, first_leaf) "
      "VALUES ");
  LiteralInsert node_rows("INSERT INTO audit_nodes (level, node_index, hash) VALUES ");
  LiteralInsert posting_rows(
      "INSERT INTO audit_postings (kind, value, first_leaf, appended_at) VALUES ");
  std::string now_literal;
  AppendTime(now_literal, w.now);
  const std::string now_bytes = EncodeAppendedAt(w.now);
  Head& head = w.produced;
  // The group's leaves go into bundles (bundle_store.h) of at most
  // kMaxBundleBytes of entries each.
  Bundle bundle;
  auto finish_bundle = [&] {
    if (bundle.count == 0) return;
    std::string& row = bundle_rows.Row();
    absl::StrAppend(&row, bundle.first_leaf, ",", now_literal, ",", bundle.count, ",");
    AppendHex(row, bundle.entries);
    row += ",";
    AppendHex(row, bundle.hashes);
    row += ",";
    if (bundle.min_event_time) {
      AppendTime(row, *bundle.min_event_time);
      row += ",";
      AppendTime(row, *bundle.max_event_time);
    } else {
      row += "NULL,NULL";
    }
    for (const auto& [kind, value] : bundle.postings) {
      std::string& posting = posting_rows.Row();
      absl::StrAppend(&posting, kind, ",");
      AppendHex(posting, value);
      absl::StrAppend(&posting, ",", bundle.first_leaf, ",", now_literal);
    }
    bundle = Bundle();
  };
  // Consecutive source ids of one service at consecutive leaves are one
  // audit_sources row.
  struct {
    std::string service;
    uint64_t first_source = 0;
    uint64_t first_leaf = 0;
    uint64_t count = 0;
  } run;
  auto finish_run = [&] {
    if (run.count == 0) return;
    std::string& row = source_rows.Row();
    AppendText(row, run.service);
    absl::StrAppend(&row, ",", run.first_source, ",", now_literal, ",", run.count, ",",
                    run.first_leaf);
    run.count = 0;
  };
  for (size_t g = 0; g < group.size(); ++g) {
    const bool own = group[g]->own;
    if (!w.refused[g].ok()) continue;
    for (size_t i = 0; i < group[g]->events->size(); ++i) {
      v1::AuditEvent& e = (*group[g]->events)[i];
      v1::AppendResult* result = w.responses[g].add_results();
      if (!own) {
        auto it = w.existing.find({e.service(), e.source_id()});
        if (it != w.existing.end()) {
          result->set_leaf_index(it->second);
          result->set_duplicate(true);
          ++w.duplicates;
          continue;
        }
      }
      const uint64_t leaf_index = head.tree_size;
      if (own) e.set_source_id(leaf_index + 1);
      w.existing[{e.service(), e.source_id()}] = leaf_index;
      if (!own) w.added.keys[{e.service(), e.source_id()}] = leaf_index;
      result->set_leaf_index(leaf_index);
      const std::string bytes =
          own ? EncodeEntry(e, w.now) : absl::StrCat(group[g]->bodies[i], now_bytes);
      const Hash leaf = LeafHash(bytes);
      head.frontier.Append(leaf, [&](const NodeId& id, const Hash& h) {
        if (id.level < kStoredLevel) return;
        std::string& row = node_rows.Row();
        absl::StrAppend(&row, id.level, ",", id.index, ",");
        AppendHex(row, HashToBytes(h));
      });
      if (bundle.count > 0 && bundle.entries.size() + bytes.size() > kMaxBundleBytes) {
        finish_bundle();
      }
      if (bundle.count == 0) bundle.first_leaf = leaf_index;
      ++bundle.count;
      AppendToBundle(bundle.entries, bytes);
      bundle.hashes += HashToBytes(leaf);
      if (e.has_time()) {
        const absl::Time t = ToMicros(FromProto(e.time()));
        bundle.min_event_time = std::min(bundle.min_event_time.value_or(t), t);
        bundle.max_event_time = std::max(bundle.max_event_time.value_or(t), t);
      }
      AddPostings(e, bundle.postings);
      if (!own) {
        if (run.count > 0 &&
            (run.service != e.service() || e.source_id() != run.first_source + run.count ||
             leaf_index != run.first_leaf + run.count)) {
          finish_run();
        }
        if (run.count == 0) {
          run.service = e.service();
          run.first_source = e.source_id();
          run.first_leaf = leaf_index;
        }
        ++run.count;
      }
      head.tree_size = head.frontier.size();
      ++w.appended;
    }
  }
  finish_bundle();
  finish_run();
  if (w.appended > 0) head.last_appended_at = w.now;
  w.built = head;
  bundle_rows.TakeStatements(w.statements);
  source_rows.TakeStatements(w.statements);
  node_rows.TakeStatements(w.statements);
  posting_rows.TakeStatements(w.statements);
  return absl::OkStatus();
}

absl::Status AuditLog::WriteCheckpoint(sql::Connection& conn, Head& head, absl::Time time) {
  const std::string root = HashToBytes(head.frontier.Root());
  const std::string signature = signer_->Sign(
      CheckpointMessage(head.tree_size, root, absl::ToUnixMicros(time), signer_->key_id()));
  std::string statement = absl::StrCat(
      "INSERT IGNORE INTO audit_checkpoints (tree_size, root_hash, created_at, key_id, "
      "signature) VALUES (",
      head.tree_size, ",");
  AppendHex(statement, root);
  statement += ",";
  AppendTime(statement, time);
  statement += ",";
  AppendText(statement, signer_->key_id());
  statement += ",";
  AppendHex(statement, signature);
  statement += ")";
  RETURN_IF_ERROR(Execute(conn, statement).status());
  head.last_checkpoint_size = head.tree_size;
  head.last_checkpoint_at = time;
  return absl::OkStatus();
}

absl::Status AuditLog::SaveHead(sql::Connection& conn, const Head& head, const Head* expected) {
  auto time_or_null = [](std::string& out, absl::Time t) {
    if (t == absl::InfinitePast()) {
      out += "NULL";
    } else {
      AppendTime(out, t);
    }
  };
  std::string statement =
      absl::StrCat("UPDATE audit_tree_head SET tree_size = ", head.tree_size, ", frontier = ");
  AppendHex(statement, head.frontier.Serialize());
  statement += ", last_appended_at = ";
  time_or_null(statement, head.last_appended_at);
  absl::StrAppend(&statement, ", last_checkpoint_size = ", head.last_checkpoint_size,
                  ", last_checkpoint_at = ");
  time_or_null(statement, head.last_checkpoint_at);
  absl::StrAppend(&statement, ", oldest_leaf_index = ", head.oldest_leaf_index, " WHERE id = 1");
  if (expected != nullptr) {
    // Same size: the same leaves (the log only grows, under this lock), so
    // the same frontier and root.
    absl::StrAppend(&statement, " AND tree_size = ", expected->tree_size,
                    " AND last_checkpoint_size = ", expected->last_checkpoint_size,
                    " AND oldest_leaf_index = ", expected->oldest_leaf_index);
  }
  ASSIGN_OR_RETURN(int64_t changed, Execute(conn, statement));
  if (expected != nullptr && changed != 1) {
    return MakeError(absl::StatusCode::kAborted, "AUDIT_SPECULATION_STALE",
                     absl::StrCat("the tree head moved from the one this group was built on "
                                  "(size ",
                                  expected->tree_size, ")"));
  }
  return absl::OkStatus();
}

void AuditLog::PlanFinish(GroupWrite& w, Head head) const {
  w.to_sign.clear();
  // A month boundary: sign the tree as it stood when the month closed.
  if (head.tree_size > 0 && head.last_appended_at != absl::InfinitePast() &&
      MonthOf(w.now) != MonthOf(head.last_appended_at) &&
      head.last_checkpoint_size != head.tree_size) {
    w.to_sign.push_back(head);
    head.last_checkpoint_size = head.tree_size;
    head.last_checkpoint_at = w.now;
  }
  if (w.appended > 0) {
    head.tree_size = w.built.tree_size;
    head.frontier = w.built.frontier;
    head.last_appended_at = w.now;
    const bool by_count = head.tree_size - head.last_checkpoint_size >=
                          static_cast<uint64_t>(options_.checkpoint_every_entries);
    const bool by_time = head.last_checkpoint_at == absl::InfinitePast() ||
                         w.now - head.last_checkpoint_at >= options_.checkpoint_interval;
    if (by_count || by_time) {
      w.to_sign.push_back(head);
      head.last_checkpoint_size = head.tree_size;
      head.last_checkpoint_at = w.now;
    }
  }
  w.produced = std::move(head);
}

absl::Status AuditLog::FinishGroup(sql::Connection& conn, GroupWrite& w,
                                   std::optional<Head> locked) {
  const bool was_locked = locked.has_value();
  if (was_locked) {
    // The rows were built on w.base: only if the log is still exactly that
    // (same size, same frontier, so the same root) are their leaf indexes,
    // subtree hashes and dedupe answers right.
    if (locked->tree_size != w.base.tree_size ||
        locked->frontier.Serialize() != w.base.frontier.Serialize() ||
        locked->last_appended_at > w.now) {
      return MakeError(
          absl::StatusCode::kAborted, "AUDIT_SPECULATION_STALE",
          absl::StrCat("the tree head moved (size ", locked->tree_size,
                       ") from the one this group was built on (size ", w.base.tree_size, ")"));
    }
    PlanFinish(w, *std::move(locked));
  }
  // Else PlanFinish ran on w.base when the group was built.
  w.checkpoints = 0;
  for (Head signed_head : w.to_sign) {
    RETURN_IF_ERROR(WriteCheckpoint(conn, signed_head, w.now));
    ++w.checkpoints;
  }
  if (w.appended > 0 || !w.to_sign.empty()) {
    RETURN_IF_ERROR(SaveHead(conn, w.produced, was_locked ? nullptr : &w.base));
  }
  for (v1::AppendResponse& r : w.responses) r.set_tree_size(w.produced.tree_size);
  return absl::OkStatus();
}

void AuditLog::InvalidateChainLocked() {
  ++epoch_;
  tip_.reset();
  next_lock_seq_ = next_seq_;
  queue_cv_.SignalAll();
}

void AuditLog::BeginExclusive() {
  absl::MutexLock lock(&queue_mu_);
  while (building_ || !in_flight_.empty()) queue_cv_.Wait(&queue_mu_);
  building_ = true;
}

void AuditLog::EndExclusive() {
  absl::MutexLock lock(&queue_mu_);
  // The head may have changed: the next group reads it.
  InvalidateChainLocked();
  building_ = false;
  queue_cv_.SignalAll();
}

namespace {

// COMMIT on an append connection; false in broken when it must not be
// reused. A failure on a closed connection leaves the outcome unknown.
absl::Status Commit(sql::Connection& conn, bool& broken) {
  absl::Status status = Execute(conn, "COMMIT").status();
  if (status.ok()) return status;
  if (conn.isClosed()) {
    broken = true;
    return MakeError(absl::StatusCode::kUnavailable, kMysqlUnavailable,
                     absl::StrCat("COMMIT failed on a broken connection; its outcome is unknown: ",
                                  status.message()));
  }
  if (!Execute(conn, "ROLLBACK").ok()) broken = true;
  return status;
}

}  // namespace

bool AuditLog::WriteSpeculatively(const std::vector<PendingAppend*>& group, GroupWrite& w,
                                  absl::Status& status) {
  // building_ is ours until the group's rows are fixed.
  bool building = true;
  bool registered = false;
  absl::StatusOr<std::unique_ptr<sql::Connection>> conn = TakeAppendConnection();
  // Rolls back and unregisters; false: the group must be redone. Nothing
  // of it was committed.
  auto fail = [&](absl::Status why) {
    if (conn.ok()) {
      if (!(*conn)->isClosed() && Execute(**conn, "ROLLBACK").ok()) {
        ReturnAppendConnection(*std::move(conn));
      }
    }
    absl::MutexLock lock(&queue_mu_);
    if (registered) {
      in_flight_.remove(&w.added);
      if (w.added.epoch == epoch_) InvalidateChainLocked();
      next_lock_seq_ = std::max(next_lock_seq_, w.added.seq + 1);
    }
    if (building) building_ = false;
    queue_cv_.SignalAll();
    status = std::move(why);
    return false;
  };
  if (!conn.ok()) return fail(conn.status());
  std::optional<Head> tip;
  uint64_t epoch = 0;
  {
    absl::MutexLock lock(&queue_mu_);
    tip = tip_;
    epoch = epoch_;
    // What the groups this one is built on add (taken before the dedupe
    // read, whose snapshot is taken after: a group that commits in between
    // is seen one way or the other).
    for (const InFlight* f : in_flight_) {
      if (f->epoch != epoch_) continue;
      for (const PendingAppend* p : group) {
        if (p->own) continue;
        if (!p->request_id.empty()) {
          auto it = f->requests.find({p->events->front().service(), p->request_id});
          if (it != f->requests.end()) w.known.insert(*it);
        }
        for (const v1::AuditEvent& e : *p->events) {
          auto it = f->keys.find({e.service(), e.source_id()});
          if (it != f->keys.end()) w.existing.insert(*it);
        }
      }
    }
  }
  if (tip) {
    w.base = *std::move(tip);
  } else {
    absl::StatusOr<Head> head = LoadHead(**conn, false);
    if (!head.ok()) return fail(head.status());
    w.base = *std::move(head);
  }
  status = BuildGroup(**conn, group, false, w);
  if (!status.ok()) return fail(status);
  // Decided now, on the head it is built on, so the head published for
  // the next group carries this group's checkpoints.
  PlanFinish(w, w.base);
  if (options_.after_speculative_build) {
    {
      absl::MutexLock lock(&queue_mu_);
      while (!in_flight_.empty()) queue_cv_.Wait(&queue_mu_);
    }
    options_.after_speculative_build();
  }
  // Publish the head this group will produce: the next group is built on
  // it while this one inserts. Unless a group this one was built on failed
  // meanwhile.
  bool stale = false;
  {
    absl::MutexLock lock(&queue_mu_);
    stale = epoch != epoch_;
    if (!stale) {
      w.added.epoch = epoch;
      w.added.seq = next_seq_++;
      in_flight_.push_back(&w.added);
      registered = true;
      tip_ = w.produced;
      building_ = false;
      building = false;
      queue_cv_.SignalAll();
    }
  }
  if (stale) {
    return fail(MakeError(absl::StatusCode::kAborted, "AUDIT_SPECULATION_STALE",
                          "a group this one was built on failed"));
  }
  for (const std::string& statement : w.statements) {
    status = Execute(**conn, statement).status();
    if (!status.ok()) return fail(status);
  }
  // The groups ask for the head-row lock in build order: one that asked
  // before the group it is built on had committed would find the head moved.
  {
    absl::MutexLock lock(&queue_mu_);
    while (next_lock_seq_ < w.added.seq && w.added.epoch == epoch_) queue_cv_.Wait(&queue_mu_);
    stale = w.added.epoch != epoch_;
  }
  if (stale) {
    return fail(MakeError(absl::StatusCode::kAborted, "AUDIT_SPECULATION_STALE",
                          "a group this one was built on failed"));
  }
  // A group that appends takes the head-row lock with its conditional
  // UPDATE (one round trip); one that only found duplicates reads the head
  // FOR UPDATE to check it.
  std::optional<Head> locked;
  if (w.appended == 0) {
    absl::StatusOr<Head> head = LoadHead(**conn, true);
    if (head.ok()) {
      locked = *std::move(head);
    } else {
      status = head.status();
    }
  }
  if (status.ok()) status = FinishGroup(**conn, w, std::move(locked));
  {
    absl::MutexLock lock(&queue_mu_);
    next_lock_seq_ = std::max(next_lock_seq_, w.added.seq + 1);
    queue_cv_.SignalAll();
  }
  if (!status.ok()) return fail(status);
  bool broken = false;
  status = Commit(**conn, broken);
  if (!broken) ReturnAppendConnection(*std::move(conn));
  absl::MutexLock lock(&queue_mu_);
  in_flight_.remove(&w.added);
  if (!status.ok() && w.added.epoch == epoch_) InvalidateChainLocked();
  queue_cv_.SignalAll();
  return true;
}

absl::Status AuditLog::WriteLocked(const std::vector<PendingAppend*>& group, GroupWrite& w) {
  BeginExclusive();
  absl::Status status;
  constexpr int kAttempts = 4;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    absl::StatusOr<std::unique_ptr<sql::Connection>> taken = TakeAppendConnection();
    if (!taken.ok()) {
      status = taken.status();
      break;
    }
    std::unique_ptr<sql::Connection> conn = *std::move(taken);
    bool broken = false;
    // Nothing was read or written yet when the first statement failed.
    bool failed_at_begin = true;
    w = GroupWrite();
    status = [&]() -> absl::Status {
      RETURN_IF_ERROR(BuildGroup(*conn, group, true, w));
      failed_at_begin = false;
      for (const std::string& statement : w.statements) {
        RETURN_IF_ERROR(Execute(*conn, statement).status());
      }
      return FinishGroup(*conn, w, w.base);
    }();
    if (!status.ok() && !conn->isClosed() && !Execute(*conn, "ROLLBACK").ok()) broken = true;
    if (status.ok()) status = Commit(*conn, broken);
    if (!broken && !conn->isClosed()) ReturnAppendConnection(std::move(conn));
    if (status.ok()) break;
    const std::string reason = ErrorReason(status);
    if (reason == kMysqlConflict) {
      absl::SleepFor(absl::Milliseconds(attempt * 5));
      continue;
    }
    if (!(failed_at_begin && reason == kMysqlUnavailable)) break;
    // The server went away (restart, failover, idle timeout): the other
    // idle connections are most likely gone too.
    absl::MutexLock lock(&conns_mu_);
    idle_conns_.clear();
  }
  EndExclusive();
  return status;
}

void AuditLog::WriteGroup(const std::vector<PendingAppend*>& group) {
  GroupWrite w;
  absl::Status status;
  if (!WriteSpeculatively(group, w, status)) {
    // The head moved under the speculation (another replica appended, a
    // group it was built on failed) or a statement failed: write the group
    // again with the head-row lock taken first. Nothing of the failed
    // attempt was committed.
    metrics_.redone->Increment();
    status = WriteLocked(group, w);
  }
  for (size_t g = 0; g < group.size(); ++g) {
    if (status.ok() && !w.refused[g].ok()) {
      group[g]->result = w.refused[g];
    } else if (status.ok()) {
      group[g]->result = std::move(w.responses[g]);
    } else {
      group[g]->result = status;
    }
  }
  if (!status.ok()) return;
  metrics_.appended->Increment(static_cast<double>(w.appended));
  metrics_.duplicates->Increment(static_cast<double>(w.duplicates));
  metrics_.checkpoints->Increment(static_cast<double>(w.checkpoints));
  metrics_.tree_size->Set(static_cast<double>(w.produced.tree_size));
  if (w.checkpoints > 0) metrics_.checkpoint_age->Set(0);
}

absl::StatusOr<std::unique_ptr<sql::Connection>> AuditLog::TakeAppendConnection() {
  {
    absl::MutexLock lock(&conns_mu_);
    if (!idle_conns_.empty()) {
      std::unique_ptr<sql::Connection> conn = std::move(idle_conns_.back());
      idle_conns_.pop_back();
      return conn;
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<sql::Connection> conn, pool_.OpenDedicated());
  RETURN_IF_ERROR(Execute(*conn, "SET autocommit = 0").status());
  return conn;
}

void AuditLog::ReturnAppendConnection(std::unique_ptr<sql::Connection> conn) {
  absl::MutexLock lock(&conns_mu_);
  idle_conns_.push_back(std::move(conn));
}

absl::Status AuditLog::MaybeCheckpoint() {
  // A look without the lock first, so a tick with nothing to sign does not
  // hold up the appends in flight.
  {
    ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
    ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
    if (head.tree_size == head.last_checkpoint_size ||
        (head.last_checkpoint_at != absl::InfinitePast() &&
         std::max(Now(), head.last_appended_at) - head.last_checkpoint_at <
             options_.checkpoint_interval)) {
      return absl::OkStatus();
    }
  }
  BeginExclusive();
  bool signed_one = false;
  absl::Status status = WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
    signed_one = false;
    ASSIGN_OR_RETURN(Head head, LoadHead(conn, true));
    const absl::Time now = std::max(Now(), head.last_appended_at);
    if (head.tree_size == head.last_checkpoint_size) return absl::OkStatus();
    if (head.last_checkpoint_at != absl::InfinitePast() &&
        now - head.last_checkpoint_at < options_.checkpoint_interval) {
      return absl::OkStatus();
    }
    RETURN_IF_ERROR(WriteCheckpoint(conn, head, now));
    signed_one = true;
    return SaveHead(conn, head);
  });
  EndExclusive();
  RETURN_IF_ERROR(status);
  if (signed_one) metrics_.checkpoints->Increment();
  return absl::OkStatus();
}

void AuditLog::UpdateGauges() {
  absl::StatusOr<MysqlPool::Lease> lease = pool_.Acquire(absl::Seconds(1));
  if (!lease.ok()) return;
  absl::StatusOr<Head> head = LoadHead(**lease, false);
  if (!head.ok()) return;
  metrics_.tree_size->Set(static_cast<double>(head->tree_size));
  if (head->last_checkpoint_at != absl::InfinitePast()) {
    metrics_.checkpoint_age->Set(absl::ToDoubleSeconds(Now() - head->last_checkpoint_at));
  }
  absl::StatusOr<uint64_t> indexed = ReadIndexedUntil(**lease, false);
  if (indexed.ok()) {
    metrics_.index_lag->Set(static_cast<double>(
        head->tree_size - std::min(head->tree_size, FirstUnindexed(*head, *indexed))));
  }
}

}  // namespace qunzu::audit
