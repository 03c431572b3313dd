// AuditLog::Query: filtered, paged reads of the log's entries.

#include <cppconn/resultset.h>

#include <algorithm>
#include <functional>
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
#include "services/audit/key_index.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit {

using internal::Bad;
using internal::FromProto;
using internal::PageSize;
using internal::ParsePageToken;
using internal::ToProto;

namespace {

// Calls fn, in leaf order, with the bundles holding the leaves in [from,
// until) that the key index lists under (kind, value) (and that pass
// bundle_where), each with the set of those leaves; fn returns false to
// stop. Hash collisions only add candidates: the caller matches entries.
absl::Status QueryKeyIndex(
    sql::Connection& conn, PostingKind kind, const std::string& value, uint64_t from,
    uint64_t until, const std::string& bundle_where, const std::vector<SqlValue>& bundle_params,
    const std::function<bool(const BundleRow&, const std::set<uint64_t>&)>& fn) {
  constexpr size_t kSegmentsPerRead = 16;
  const uint64_t hash = KeyHash(kind, value);
  const int bucket = KeyBucket(hash);
  // From the last segment starting at or before from.
  uint64_t segment = 0;
  RETURN_IF_ERROR(qunzu::Query(conn,
                               "SELECT MAX(segment) FROM audit_key_index WHERE kind = ? AND "
                               "bucket = ? AND segment <= ?",
                               {static_cast<int>(kind), bucket, from},
                               [&](const sql::ResultSet& row) {
                                 if (!row.isNull(1)) segment = row.getUInt64(1);
                                 return absl::OkStatus();
                               }));
  bool going = true;
  size_t per_read = kSegmentsPerRead;
  while (going) {
    std::set<uint64_t> leaves;
    size_t rows = 0;
    const size_t asked = per_read;
    RETURN_IF_ERROR(qunzu::Query(
        conn,
        "SELECT segment, hashes FROM audit_key_index WHERE kind = ? AND bucket = ? AND segment "
        ">= ? AND segment < ? ORDER BY segment LIMIT ?",
        {static_cast<int>(kind), bucket, segment, until, asked}, [&](const sql::ResultSet& row) {
          ++rows;
          const uint64_t first = row.getUInt64(1);
          segment = first + 1;
          for (uint32_t offset : FindKey(std::string(row.getString(2)), hash)) {
            const uint64_t leaf = first + offset;
            if (leaf >= from && leaf < until) leaves.insert(leaf);
          }
          return absl::OkStatus();
        }));
    RETURN_IF_ERROR(ForEachBundleHolding(conn, leaves, bundle_where, bundle_params, true,
                                         [&](const BundleRow& b) {
                                           going = fn(b, leaves);
                                           return going;
                                         }));
    // Rows far apart: read more segments at once while none match.
    per_read = leaves.empty() ? std::min<size_t>(per_read * 2, 1024) : kSegmentsPerRead;
    if (rows < asked) break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::QueryResponse> AuditLog::Query(const Caller& caller, const std::string& peer,
                                                  const v1::QueryRequest& request) {
  const v1::AuditFilter& f = request.filter();
  if (f.has_start_time() && f.has_end_time() &&
      FromProto(f.start_time()) >= FromProto(f.end_time())) {
    return Bad("TIME_RANGE_INVALID", "filter.start_time must be before filter.end_time");
  }
  if (f.end_leaf_index() != 0 && f.end_leaf_index() <= f.start_leaf_index()) {
    return Bad("INVALID_FIELD", "filter.end_leaf_index must be above filter.start_leaf_index",
               {{"field", "filter.end_leaf_index"}});
  }
  if (request.purpose().size() > 1024 || !IsValidUtf8(request.purpose())) {
    return InvalidField("purpose", "must be valid UTF-8 of at most 1024 bytes");
  }
  ASSIGN_OR_RETURN(int page_size, PageSize(request.page()));
  ASSIGN_OR_RETURN(uint64_t from_token, ParsePageToken(request.page().page_token()));
  const uint64_t from = std::max(from_token, f.start_leaf_index());
  const uint64_t to = f.end_leaf_index();
  std::optional<absl::Time> start_time, end_time;
  if (f.has_start_time()) start_time = FromProto(f.start_time());
  if (f.has_end_time()) end_time = FromProto(f.end_time());
  // A high-cardinality key to look up in the key index (key_index.h), the
  // most selective first, and the per-bundle posting lists; an entry is
  // then checked against the whole filter.
  std::optional<std::pair<PostingKind, std::string>> key;
  if (!f.request_id().empty()) {
    key.emplace(PostingKind::kRequestId, f.request_id());
  } else if (f.has_subject()) {
    key.emplace(PostingKind::kSubject, SubjectPostingValue(f.subject().kind(), f.subject().id()));
  } else if (f.actor_account_id() != 0) {
    key.emplace(PostingKind::kActor, absl::StrCat(f.actor_account_id()));
  }
  std::vector<std::pair<PostingKind, std::string>> postings;
  if (!f.principal().empty()) postings.emplace_back(PostingKind::kPrincipal, f.principal());
  if (!f.action().empty()) postings.emplace_back(PostingKind::kAction, f.action());
  if (!f.service().empty()) postings.emplace_back(PostingKind::kService, f.service());
  auto matches = [&](const v1::AuditEvent& e) {
    if (!f.service().empty() && e.service() != f.service()) return false;
    if (!f.action().empty() && e.action() != f.action()) return false;
    if (!f.principal().empty() && e.principal() != f.principal()) return false;
    if (!f.request_id().empty() && e.request_id() != f.request_id()) return false;
    if (f.actor_account_id() != 0 && e.actor_account_id() != f.actor_account_id()) return false;
    if (start_time || end_time) {
      if (!e.has_time()) return false;
      const absl::Time t = FromProto(e.time());
      if (start_time && t < *start_time) return false;
      if (end_time && t >= *end_time) return false;
    }
    if (f.has_subject()) {
      bool found = false;
      for (const v1::Subject& s : e.subjects()) {
        found = found || (s.kind() == f.subject().kind() && s.id() == f.subject().id());
      }
      if (!found) return false;
    }
    return true;
  };
  // Bundle-level conditions: the event-time range each bundle spans.
  std::string bundle_where;
  std::vector<SqlValue> bundle_params;
  if (start_time) {
    bundle_where += " AND max_event_time >= ?";
    bundle_params.emplace_back(*start_time);
  }
  if (end_time) {
    bundle_where += " AND min_event_time < ?";
    bundle_params.emplace_back(*end_time);
  }
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  v1::QueryResponse out;
  // Adds the matching leaves of bundle in [lo, hi) (hi 0: no bound), those
  // in only when given; false once the page is full.
  auto visit = [&](const BundleRow& bundle, uint64_t lo, uint64_t hi,
                   const std::set<uint64_t>* only) {
    return VisitBundle(bundle, lo, hi,
                       [&](uint64_t index, const std::string& bytes, const std::optional<Hash>&) {
                         if (only != nullptr && only->count(index) == 0) return true;
                         absl::StatusOr<DecodedEntry> decoded = DecodeEntry(bytes);
                         if (!decoded.ok() || !matches(decoded->event)) return true;
                         v1::AuditEntry* entry = out.add_entries();
                         entry->set_leaf_index(index);
                         entry->set_leaf_hash(HashToBytes(LeafHash(bytes)));
                         entry->set_canonical_entry(bytes);
                         *entry->mutable_event() = std::move(decoded->event);
                         ToProto(decoded->appended_at, entry->mutable_appended_at());
                         return out.entries_size() <= page_size;
                       });
  };
  auto full = [&] { return out.entries_size() > page_size; };
  constexpr size_t kBundlesPerRead = 32;
  // Leaves the key index covers: the key's rows, segment by segment, point
  // at the leaves that may hold it.
  uint64_t scan_from = from;
  if (key) {
    ASSIGN_OR_RETURN(const uint64_t indexed, ReadIndexedUntil(*lease, false));
    const uint64_t until = to != 0 ? std::min(to, indexed) : indexed;
    if (from < until) {
      RETURN_IF_ERROR(QueryKeyIndex(*lease, key->first, key->second, from, until, bundle_where,
                                    bundle_params,
                                    [&](const BundleRow& b, const std::set<uint64_t>& leaves) {
                                      return visit(b, from, until, &leaves);
                                    }));
    }
    scan_from = std::max(from, indexed);
  }
  // The rest: bundles on the posting lists, or all of them, in leaf order.
  ASSIGN_OR_RETURN(uint64_t cursor, BundleStartFor(*lease, scan_from));
  bool more = to == 0 || scan_from < to;
  while (more && !full()) {
    if (!postings.empty()) {
      // Candidates: bundles on the first posting list, and on every other.
      std::string sql =
          "SELECT p.first_leaf FROM audit_postings p WHERE p.kind = ? AND p.value = ? AND "
          "p.first_leaf >= ?";
      std::vector<SqlValue> candidate_params = {static_cast<int>(postings[0].first),
                                                postings[0].second, cursor};
      if (to != 0) {
        sql += " AND p.first_leaf < ?";
        candidate_params.emplace_back(to);
      }
      for (size_t i = 1; i < postings.size(); ++i) {
        sql +=
            " AND EXISTS (SELECT 1 FROM audit_postings q WHERE q.kind = ? AND q.value = ? AND "
            "q.first_leaf = p.first_leaf)";
        candidate_params.emplace_back(static_cast<int>(postings[i].first));
        candidate_params.emplace_back(postings[i].second);
      }
      sql += " ORDER BY p.first_leaf LIMIT ?";
      candidate_params.emplace_back(kBundlesPerRead);
      std::vector<std::string> candidates;
      RETURN_IF_ERROR(qunzu::Query(*lease, sql, candidate_params, [&](const sql::ResultSet& row) {
        cursor = row.getUInt64(1) + 1;
        candidates.push_back(absl::StrCat(row.getUInt64(1)));
        return absl::OkStatus();
      }));
      more = candidates.size() == kBundlesPerRead;
      if (candidates.empty()) break;
      RETURN_IF_ERROR(
          ReadBundles(
              *lease,
              absl::StrCat("first_leaf IN (", absl::StrJoin(candidates, ","), ")", bundle_where),
              bundle_params, kBundlesPerRead,
              [&](const BundleRow& b) { return visit(b, scan_from, to, nullptr); })
              .status());
    } else {
      std::string where = "first_leaf >= ?";
      std::vector<SqlValue> params = {cursor};
      if (to != 0) {
        where += " AND first_leaf < ?";
        params.emplace_back(to);
      }
      params.insert(params.end(), bundle_params.begin(), bundle_params.end());
      ASSIGN_OR_RETURN(size_t read, ReadBundles(*lease, where + bundle_where, params,
                                                kBundlesPerRead, [&](const BundleRow& b) {
                                                  cursor = b.first_leaf + 1;
                                                  return visit(b, scan_from, to, nullptr);
                                                }));
      more = read == kBundlesPerRead;
    }
  }
  if (out.entries_size() > page_size) {
    out.mutable_page()->set_next_page_token(absl::StrCat(out.entries(page_size).leaf_index()));
    out.mutable_entries()->RemoveLast();
  }
  out.set_tree_size(head.tree_size);
  if (caller.role == common::v1::ROLE_REGULATOR) {
    // R13.1: the regulator's inspections are themselves on the record, and
    // the answer is given only once that record is durable.
    v1::AuditEvent event =
        AuditEventFor(caller, peer, "/qunzu.audit.v1.AuditService/Query", "AUDIT_LOG_QUERIED", "");
    ToProto(Now(), event.mutable_time());
    (*event.mutable_details())["purpose"] = request.purpose();
    (*event.mutable_details())["filter"] = f.ShortDebugString().substr(0, 4000);
    (*event.mutable_details())["entries_returned"] = absl::StrCat(out.entries_size());
    ASSIGN_OR_RETURN(v1::AppendResponse appended, AppendOwn({event}));
    (void)appended;
  }
  return out;
}

}  // namespace qunzu::audit
