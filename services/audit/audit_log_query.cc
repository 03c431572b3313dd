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
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit {

using internal::Bad;
using internal::Bytes;
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
  ASSIGN_OR_RETURN(uint64_t from, ParsePageToken(request.page().page_token()));
  std::vector<std::string> where = {"leaf_index >= ?"};
  std::vector<SqlValue> params = {std::max(from, f.start_leaf_index())};
  if (f.end_leaf_index() != 0) {
    where.push_back("leaf_index < ?");
    params.emplace_back(f.end_leaf_index());
  }
  if (f.has_start_time()) {
    where.push_back("event_time >= ?");
    params.emplace_back(FromProto(f.start_time()));
  }
  if (f.has_end_time()) {
    where.push_back("event_time < ?");
    params.emplace_back(FromProto(f.end_time()));
  }
  auto eq = [&](const char* column, const std::string& value) {
    if (value.empty()) return;
    where.push_back(absl::StrCat(column, " = ?"));
    params.emplace_back(value);
  };
  eq("service", f.service());
  eq("action", f.action());
  eq("principal", f.principal());
  eq("request_id", f.request_id());
  if (f.actor_account_id() != 0) {
    where.push_back("actor_account_id = ?");
    params.emplace_back(f.actor_account_id());
  }
  if (f.has_subject()) {
    where.push_back(
        "leaf_index IN (SELECT leaf_index FROM audit_subjects WHERE kind = ? AND subject_id = ?)");
    params.emplace_back(static_cast<int64_t>(f.subject().kind()));
    params.emplace_back(f.subject().id());
  }
  params.emplace_back(page_size + 1);
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  v1::QueryResponse out;
  RETURN_IF_ERROR(
      qunzu::Query(*lease,
                   absl::StrCat("SELECT leaf_index, entry FROM audit_entries WHERE ",
                                absl::StrJoin(where, " AND "), " ORDER BY leaf_index LIMIT ?"),
                   params, [&](const sql::ResultSet& row) -> absl::Status {
                     const std::string bytes = Bytes(row, 2);
                     v1::AuditEntry* entry = out.add_entries();
                     entry->set_leaf_index(row.getUInt64(1));
                     entry->set_leaf_hash(HashToBytes(LeafHash(bytes)));
                     entry->set_canonical_entry(bytes);
                     absl::StatusOr<DecodedEntry> decoded = DecodeEntry(bytes);
                     if (decoded.ok()) {
                       *entry->mutable_event() = std::move(decoded->event);
                       ToProto(decoded->appended_at, entry->mutable_appended_at());
                     }
                     return absl::OkStatus();
                   }));
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
