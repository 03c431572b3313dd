#include "services/moderation/blacklist_store.h"

#include <cppconn/resultset.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/log.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/filings.h"

namespace qunzu::moderation {
namespace {

constexpr char kEntryColumns[] =
    "blacklist_entry_id, subject_kind, subject_id, reason, basis_report_ids, basis_rule_ids, "
    "added_by, added_at, expires_at, state, removed_by, removed_at, removal_reason, filing_id, "
    "removal_filing_id";

std::string ActiveKey(v1::SubjectKind kind, uint64_t id) {
  return absl::StrCat(kind == v1::SUBJECT_KIND_GROUP ? "g:" : "a:", id);
}

absl::StatusOr<v1::BlacklistEntry> ReadEntryRow(const sql::ResultSet& row, absl::Time now) {
  v1::BlacklistEntry entry;
  entry.set_blacklist_entry_id(row.getUInt64(1));
  entry.set_subject_kind(static_cast<v1::SubjectKind>(row.getInt(2)));
  entry.set_subject_id(row.getUInt64(3));
  entry.set_reason(row.getString(4));
  for (uint64_t id : SplitIds(row.getString(5))) entry.mutable_basis()->add_report_ids(id);
  for (uint64_t id : SplitIds(row.getString(6))) entry.mutable_basis()->add_rule_ids(id);
  entry.set_added_by(row.getString(7));
  ASSIGN_OR_RETURN(absl::Time added, ParseSqlDateTime(row.getString(8)));
  *entry.mutable_added_at() = ToProto(added);
  ASSIGN_OR_RETURN(absl::Time expires, ReadOptionalTime(row, 9));
  if (expires != absl::InfinitePast()) *entry.mutable_expires_at() = ToProto(expires);
  entry.set_state(static_cast<v1::BlacklistEntryState>(row.getInt(10)));
  if (entry.state() == v1::BLACKLIST_ENTRY_STATE_ACTIVE && expires != absl::InfinitePast() &&
      expires <= now) {
    entry.set_state(v1::BLACKLIST_ENTRY_STATE_EXPIRED);
  }
  entry.set_removed_by(row.getString(11));
  ASSIGN_OR_RETURN(absl::Time removed, ReadOptionalTime(row, 12));
  if (removed != absl::InfinitePast()) *entry.mutable_removed_at() = ToProto(removed);
  entry.set_removal_reason(row.getString(13));
  entry.set_filing_id(row.getUInt64(14));
  entry.set_removal_filing_id(row.getUInt64(15));
  return entry;
}

// The credit event of blacklisting an account (BLACKLISTED), or its
// REVERSAL when the entry is removed early (R7.3, R11.3).
absl::Status RecordBlacklistEvent(sql::Connection& conn, const v1::BlacklistEntry& entry,
                                  bool reversal, const std::string& reason, absl::Time now) {
  if (entry.subject_kind() != v1::SUBJECT_KIND_ACCOUNT) return absl::OkStatus();
  const std::string id =
      absl::StrCat("moderation:blacklist:", entry.blacklist_entry_id(), ":", entry.subject_id());
  const std::string reference = absl::StrCat("blacklist:", entry.blacklist_entry_id());
  if (!reversal) {
    return RecordCreditEvent(conn, id, entry.subject_id(),
                             credit::v1::CREDIT_EVENT_TYPE_BLACKLISTED, reference, reason, now);
  }
  return RecordCreditEvent(conn, id + ":reversal", entry.subject_id(),
                           credit::v1::CREDIT_EVENT_TYPE_REVERSAL, reference, reason, now, id);
}

v1::Filing FilingOf(v1::FilingKind kind, const v1::BlacklistEntry& entry) {
  v1::Filing filing;
  filing.set_kind(kind);
  filing.set_subject_kind(entry.subject_kind());
  filing.set_subject_id(entry.subject_id());
  *filing.mutable_blacklist_entry() = entry;
  return filing;
}

}  // namespace

absl::StatusOr<v1::BlacklistEntry> BlacklistStore::Load(sql::Connection& conn, uint64_t entry_id,
                                                        bool for_update) {
  std::optional<v1::BlacklistEntry> entry;
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(Query(
      conn,
      absl::StrCat("SELECT ", kEntryColumns, " FROM blacklist_entries WHERE blacklist_entry_id = ?",
                   for_update ? " FOR UPDATE" : ""),
      {entry_id}, [&](const sql::ResultSet& row) -> absl::Status {
        ASSIGN_OR_RETURN(entry, ReadEntryRow(row, now));
        return absl::OkStatus();
      }));
  if (!entry) {
    return MakeError(absl::StatusCode::kNotFound, "BLACKLIST_ENTRY_NOT_FOUND",
                     absl::StrCat("no blacklist entry ", entry_id));
  }
  return *std::move(entry);
}

absl::StatusOr<v1::AddToBlacklistResponse> BlacklistStore::Add(
    const RequestContext& context, const v1::AddToBlacklistRequest& request) {
  const bool group = request.subject_kind() == v1::SUBJECT_KIND_GROUP;
  ASSIGN_OR_RETURN(bool exists, group ? subjects_.GroupExists(request.subject_id())
                                      : subjects_.AccountExists(request.subject_id()));
  if (!exists) {
    return MakeError(absl::StatusCode::kNotFound, group ? "GROUP_NOT_FOUND" : "ACCOUNT_NOT_FOUND",
                     group ? "no such group" : "no such account",
                     {{"subject_id", absl::StrCat(request.subject_id())}});
  }
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  const std::string active_key = ActiveKey(request.subject_kind(), request.subject_id());
  ASSIGN_OR_RETURN(
      v1::AddToBlacklistResponse response, WithTransaction(pool_, [&](sql::Connection& conn) {
        return RunIdempotent<v1::AddToBlacklistResponse>(
            conn, key, request, [&]() -> absl::StatusOr<v1::AddToBlacklistResponse> {
              const absl::Time now = clock_.Now();
              std::optional<uint64_t> current;
              absl::Time current_expiry = absl::InfinitePast();
              RETURN_IF_ERROR(
                  Query(conn,
                        "SELECT blacklist_entry_id, expires_at FROM blacklist_entries WHERE "
                        "active_key = ? FOR UPDATE",
                        {active_key}, [&](const sql::ResultSet& row) -> absl::Status {
                          current = row.getUInt64(1);
                          ASSIGN_OR_RETURN(current_expiry, ReadOptionalTime(row, 2));
                          return absl::OkStatus();
                        }));
              if (current) {
                if (current_expiry == absl::InfinitePast() || current_expiry > now) {
                  return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_BLACKLISTED",
                                   "the subject is blacklisted already",
                                   {{"blacklist_entry_id", absl::StrCat(*current)}});
                }
                RETURN_IF_ERROR(
                    Execute(conn,
                            "UPDATE blacklist_entries SET active_key = NULL, state = ? "
                            "WHERE blacklist_entry_id = ?",
                            {static_cast<int>(v1::BLACKLIST_ENTRY_STATE_EXPIRED), *current})
                        .status());
              }
              const absl::Time expires =
                  request.has_expires_at() ? FromProto(request.expires_at()) : absl::InfinitePast();
              std::vector<uint64_t> reports(request.basis().report_ids().begin(),
                                            request.basis().report_ids().end());
              std::vector<uint64_t> rules(request.basis().rule_ids().begin(),
                                          request.basis().rule_ids().end());
              RETURN_IF_ERROR(
                  Execute(conn,
                          "INSERT INTO blacklist_entries (subject_kind, subject_id, active_key, "
                          "reason, basis_report_ids, basis_rule_ids, added_by, added_at, "
                          "expires_at, state, removal_reason) VALUES (?,?,?,?,?,?,?,?,?,?,'')",
                          {static_cast<int>(request.subject_kind()), request.subject_id(),
                           active_key, request.reason(), JoinIds(reports), JoinIds(rules),
                           context.caller.principal, now, OptionalTime(expires),
                           static_cast<int>(v1::BLACKLIST_ENTRY_STATE_ACTIVE)})
                      .status());
              ASSIGN_OR_RETURN(uint64_t entry_id, LastInsertId(conn));
              ASSIGN_OR_RETURN(v1::BlacklistEntry entry, Load(conn, entry_id, true));
              v1::Filing filing = FilingOf(v1::FILING_KIND_BLACKLIST_ADDED, entry);
              ASSIGN_OR_RETURN(uint64_t filing_id, RecordFiling(conn, &filing, now));
              RETURN_IF_ERROR(Execute(conn,
                                      "UPDATE blacklist_entries SET filing_id = ? WHERE "
                                      "blacklist_entry_id = ?",
                                      {filing_id, entry_id})
                                  .status());
              entry.set_filing_id(filing_id);
              RETURN_IF_ERROR(RecordBlacklistEvent(conn, entry, false, request.reason(), now));
              RETURN_IF_ERROR(AuditChange(
                  conn, context, "BLACKLIST_ADDED", request.request_id(), now,
                  {{audit::v1::SUBJECT_KIND_BLACKLIST_ENTRY, entry_id},
                   {group ? audit::v1::SUBJECT_KIND_GROUP : audit::v1::SUBJECT_KIND_ACCOUNT,
                    request.subject_id()},
                   {audit::v1::SUBJECT_KIND_FILING, filing_id}},
                  {{"reason", request.reason()},
                   {"expires_at", expires == absl::InfinitePast()
                                      ? std::string("never")
                                      : absl::FormatTime(expires, absl::UTCTimeZone())}}));
              v1::AddToBlacklistResponse out;
              *out.mutable_entry() = std::move(entry);
              return out;
            });
      }));
  absl::Status published =
      projection_.PublishBlacklist(request.subject_kind(), request.subject_id());
  if (!published.ok()) LogWarning("blacklist_projection_failed", {{"error", published.ToString()}});
  return response;
}

absl::StatusOr<v1::RemoveFromBlacklistResponse> BlacklistStore::Remove(
    const RequestContext& context, const v1::RemoveFromBlacklistRequest& request) {
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  ASSIGN_OR_RETURN(
      v1::RemoveFromBlacklistResponse response, WithTransaction(pool_, [&](sql::Connection& conn) {
        return RunIdempotent<v1::RemoveFromBlacklistResponse>(
            conn, key, request, [&]() -> absl::StatusOr<v1::RemoveFromBlacklistResponse> {
              const absl::Time now = clock_.Now();
              ASSIGN_OR_RETURN(v1::BlacklistEntry entry,
                               Load(conn, request.blacklist_entry_id(), true));
              if (entry.state() != v1::BLACKLIST_ENTRY_STATE_ACTIVE) {
                return MakeError(absl::StatusCode::kFailedPrecondition,
                                 "BLACKLIST_ENTRY_NOT_ACTIVE", "the entry is no longer in force",
                                 {{"state", v1::BlacklistEntryState_Name(entry.state())}});
              }
              RETURN_IF_ERROR(Execute(conn,
                                      "UPDATE blacklist_entries SET active_key = NULL, state = ?, "
                                      "removed_by = ?, removed_at = ?, removal_reason = ? WHERE "
                                      "blacklist_entry_id = ?",
                                      {static_cast<int>(v1::BLACKLIST_ENTRY_STATE_REMOVED),
                                       context.caller.principal, now, request.reason(),
                                       entry.blacklist_entry_id()})
                                  .status());
              ASSIGN_OR_RETURN(entry, Load(conn, entry.blacklist_entry_id(), true));
              v1::Filing filing = FilingOf(v1::FILING_KIND_BLACKLIST_REMOVED, entry);
              ASSIGN_OR_RETURN(uint64_t filing_id, RecordFiling(conn, &filing, now));
              RETURN_IF_ERROR(Execute(conn,
                                      "UPDATE blacklist_entries SET removal_filing_id = ? WHERE "
                                      "blacklist_entry_id = ?",
                                      {filing_id, entry.blacklist_entry_id()})
                                  .status());
              entry.set_removal_filing_id(filing_id);
              RETURN_IF_ERROR(RecordBlacklistEvent(conn, entry, true, request.reason(), now));
              RETURN_IF_ERROR(AuditChange(
                  conn, context, "BLACKLIST_REMOVED", request.request_id(), now,
                  {{audit::v1::SUBJECT_KIND_BLACKLIST_ENTRY, entry.blacklist_entry_id()},
                   {entry.subject_kind() == v1::SUBJECT_KIND_GROUP
                        ? audit::v1::SUBJECT_KIND_GROUP
                        : audit::v1::SUBJECT_KIND_ACCOUNT,
                    entry.subject_id()},
                   {audit::v1::SUBJECT_KIND_FILING, filing_id}},
                  {{"reason", request.reason()}}));
              v1::RemoveFromBlacklistResponse out;
              *out.mutable_entry() = std::move(entry);
              return out;
            });
      }));
  absl::Status published =
      projection_.PublishBlacklist(response.entry().subject_kind(), response.entry().subject_id());
  if (!published.ok()) LogWarning("blacklist_projection_failed", {{"error", published.ToString()}});
  return response;
}

absl::StatusOr<v1::ListBlacklistResponse> BlacklistStore::List(
    const v1::ListBlacklistRequest& request) {
  ASSIGN_OR_RETURN(PageWindow window, ReadPage(request.page()));
  const absl::Time now = clock_.Now();
  std::string where = "1=1";
  std::vector<SqlValue> params;
  if (request.subject_kind() != 0) {
    where += " AND subject_kind = ?";
    params.emplace_back(static_cast<int>(request.subject_kind()));
  }
  if (request.subject_id() != 0) {
    where += " AND subject_id = ?";
    params.emplace_back(request.subject_id());
  }
  const int active = v1::BLACKLIST_ENTRY_STATE_ACTIVE;
  switch (request.state()) {
    case v1::BLACKLIST_ENTRY_STATE_ACTIVE:
      where += " AND state = ? AND (expires_at IS NULL OR expires_at > ?)";
      params.insert(params.end(), {active, now});
      break;
    case v1::BLACKLIST_ENTRY_STATE_EXPIRED:
      where += " AND (state = ? OR (state = ? AND expires_at <= ?))";
      params.insert(params.end(),
                    {static_cast<int>(v1::BLACKLIST_ENTRY_STATE_EXPIRED), active, now});
      break;
    case v1::BLACKLIST_ENTRY_STATE_REMOVED:
      where += " AND state = ?";
      params.emplace_back(static_cast<int>(v1::BLACKLIST_ENTRY_STATE_REMOVED));
      break;
    default:
      break;
  }
  v1::ListBlacklistResponse response;
  RETURN_IF_ERROR(
      QueryPage(pool_, absl::StrCat("SELECT ", kEntryColumns, " FROM blacklist_entries"), where,
                std::move(params), "blacklist_entry_id DESC", window, response.mutable_page(),
                [&](const sql::ResultSet& row) -> absl::Status {
                  ASSIGN_OR_RETURN(*response.add_entries(), ReadEntryRow(row, now));
                  return absl::OkStatus();
                }));
  return response;
}

}  // namespace qunzu::moderation
