// AuditLog::Query: filtered, paged reads of the log's entries.

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

using internal::Bad;
using internal::FromProto;
using internal::PageSize;
using internal::ParsePageToken;
using internal::ToProto;

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
  // The posting lists to read candidate bundles from, the most selective
  // first; an entry is then checked against the whole filter.
  std::vector<std::pair<PostingKind, std::string>> postings;
  if (!f.request_id().empty()) postings.emplace_back(PostingKind::kRequestId, f.request_id());
  if (f.has_subject()) {
    postings.emplace_back(PostingKind::kSubject,
                          SubjectPostingValue(f.subject().kind(), f.subject().id()));
  }
  if (f.actor_account_id() != 0) {
    postings.emplace_back(PostingKind::kActor, absl::StrCat(f.actor_account_id()));
  }
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
  auto visit = [&](const BundleRow& bundle) {
    return VisitBundle(bundle, from, to,
                       [&](uint64_t index, const std::string& bytes, const std::optional<Hash>&) {
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
  constexpr size_t kBundlesPerRead = 32;
  ASSIGN_OR_RETURN(uint64_t cursor, BundleStartFor(*lease, from));
  bool more = true;
  while (more && out.entries_size() <= page_size) {
    std::string where = "first_leaf >= ?";
    std::vector<SqlValue> params = {cursor};
    if (to != 0) {
      where += " AND first_leaf < ?";
      params.emplace_back(to);
    }
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
      ASSIGN_OR_RETURN(size_t read,
                       ReadBundles(*lease,
                                   absl::StrCat("first_leaf IN (", absl::StrJoin(candidates, ","),
                                                ")", bundle_where),
                                   bundle_params, kBundlesPerRead, visit));
      (void)read;
    } else {
      params.insert(params.end(), bundle_params.begin(), bundle_params.end());
      ASSIGN_OR_RETURN(size_t read, ReadBundles(*lease, where + bundle_where, params,
                                                kBundlesPerRead, [&](const BundleRow& b) {
                                                  cursor = b.first_leaf + 1;
                                                  return visit(b);
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
