#include "services/moderation/disposition_rows.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {
namespace {

// The credit event a disposition records against the group's owner or the
// account (R7.3, R11.1, R11.2); a downgrade is credit's penalty itself.
credit::v1::CreditEventType EventOf(v1::DispositionKind kind) {
  switch (kind) {
    case v1::DISPOSITION_KIND_WARN:
      return credit::v1::CREDIT_EVENT_TYPE_GROUP_WARNED;
    case v1::DISPOSITION_KIND_SUSPEND_POSTING:
      return credit::v1::CREDIT_EVENT_TYPE_GROUP_POSTING_SUSPENDED;
    case v1::DISPOSITION_KIND_CLOSE:
      return credit::v1::CREDIT_EVENT_TYPE_GROUP_CLOSED;
    case v1::DISPOSITION_KIND_SUSPEND_ADMIN:
      return credit::v1::CREDIT_EVENT_TYPE_ADMIN_RIGHTS_SUSPENDED;
    case v1::DISPOSITION_KIND_REVOKE_CREATION:
      return credit::v1::CREDIT_EVENT_TYPE_CREATION_REVOKED;
    default:
      return credit::v1::CREDIT_EVENT_TYPE_UNSPECIFIED;
  }
}

}  // namespace

std::string RequestKey::Join() const {
  return absl::StrCat(principal, "\n", method, "\n", request_id);
}

absl::StatusOr<RequestKey> RequestKey::Parse(const std::string& joined) {
  std::vector<std::string> parts = absl::StrSplit(joined, absl::MaxSplits('\n', 2));
  if (parts.size() != 3) {
    return MakeError(absl::StatusCode::kInternal, "DISPOSITION_RESERVATION_CORRUPT",
                     "a disposition's request key lacks its parts");
  }
  return RequestKey{parts[0], parts[1], parts[2]};
}

absl::Status DispositionNotFound(uint64_t id) {
  return MakeError(absl::StatusCode::kNotFound, "DISPOSITION_NOT_FOUND",
                   absl::StrCat("no disposition ", id), {{"disposition_id", absl::StrCat(id)}});
}

bool IsGroupKind(v1::DispositionKind kind) {
  return kind == v1::DISPOSITION_KIND_WARN || kind == v1::DISPOSITION_KIND_SUSPEND_POSTING ||
         kind == v1::DISPOSITION_KIND_CLOSE;
}

bool IsRestriction(v1::DispositionKind kind) {
  return kind == v1::DISPOSITION_KIND_SUSPEND_ADMIN || kind == v1::DISPOSITION_KIND_REVOKE_CREATION;
}

absl::StatusOr<v1::Disposition> ReadDispositionRow(const sql::ResultSet& row, absl::Time now) {
  v1::Disposition d;
  d.set_disposition_id(row.getUInt64(1));
  d.set_kind(static_cast<v1::DispositionKind>(row.getInt(2)));
  d.set_group_id(row.getUInt64(3));
  d.set_account_id(row.getUInt64(4));
  ASSIGN_OR_RETURN(absl::Time until, ReadOptionalTime(row, 5));
  if (until != absl::InfinitePast()) *d.mutable_until() = ToProto(until);
  d.set_levels(row.getUInt(6));
  for (uint64_t id : SplitIds(row.getString(7))) d.mutable_basis()->add_report_ids(id);
  for (uint64_t id : SplitIds(row.getString(8))) d.mutable_basis()->add_rule_ids(id);
  d.set_statement_of_reasons(row.getString(9));
  d.set_decided_by(row.getString(10));
  ASSIGN_OR_RETURN(absl::Time decided, ParseSqlDateTime(row.getString(11)));
  *d.mutable_decided_at() = ToProto(decided);
  d.set_state(static_cast<v1::DispositionState>(row.getInt(12)));
  if (d.state() == v1::DISPOSITION_STATE_ACTIVE && until != absl::InfinitePast() && until <= now) {
    d.set_state(v1::DISPOSITION_STATE_EXPIRED);
  }
  d.set_credit_penalty_id(row.getUInt64(13));
  d.set_filing_id(row.getUInt64(14));
  d.set_revoked_by(row.getString(15));
  ASSIGN_OR_RETURN(absl::Time revoked, ReadOptionalTime(row, 16));
  if (revoked != absl::InfinitePast()) *d.mutable_revoked_at() = ToProto(revoked);
  d.set_revocation_reason(row.getString(17));
  d.set_revocation_filing_id(row.getUInt64(18));
  return d;
}

std::vector<std::pair<audit::v1::SubjectKind, uint64_t>> DispositionSubjects(
    const v1::Disposition& d, uint64_t filing_id) {
  std::vector<std::pair<audit::v1::SubjectKind, uint64_t>> out = {
      {audit::v1::SUBJECT_KIND_DISPOSITION, d.disposition_id()},
      {audit::v1::SUBJECT_KIND_FILING, filing_id}};
  if (d.group_id() != 0) out.emplace_back(audit::v1::SUBJECT_KIND_GROUP, d.group_id());
  if (d.account_id() != 0) out.emplace_back(audit::v1::SUBJECT_KIND_ACCOUNT, d.account_id());
  for (uint64_t id : d.basis().report_ids()) out.emplace_back(audit::v1::SUBJECT_KIND_REPORT, id);
  return out;
}

std::vector<std::pair<audit::v1::SubjectKind, uint64_t>> AbandonedSubjects(
    const v1::Disposition& d) {
  std::vector<std::pair<audit::v1::SubjectKind, uint64_t>> out = {
      {audit::v1::SUBJECT_KIND_DISPOSITION, d.disposition_id()}};
  if (d.group_id() != 0) out.emplace_back(audit::v1::SUBJECT_KIND_GROUP, d.group_id());
  if (d.account_id() != 0) out.emplace_back(audit::v1::SUBJECT_KIND_ACCOUNT, d.account_id());
  return out;
}

std::string RefusalReason(const absl::Status& refusal) {
  const std::string reason = ErrorReason(refusal);
  return absl::StrCat(reason.empty() ? absl::StatusCodeToString(refusal.code()) : reason, ": ",
                      refusal.message());
}

absl::Status RecordDispositionEvent(sql::Connection& conn, const v1::Disposition& d,
                                    uint64_t account, absl::Time now) {
  const credit::v1::CreditEventType type = EventOf(d.kind());
  if (account == 0 || type == credit::v1::CREDIT_EVENT_TYPE_UNSPECIFIED) return absl::OkStatus();
  const std::string id = absl::StrCat("moderation:disposition:", d.disposition_id(), ":", account);
  RETURN_IF_ERROR(RecordCreditEvent(conn, id, account, type,
                                    absl::StrCat("disposition:", d.disposition_id()),
                                    d.statement_of_reasons(), now));
  return Execute(conn, "UPDATE dispositions SET credit_event_id = ? WHERE disposition_id = ?",
                 {id, d.disposition_id()})
      .status();
}

absl::Status ReverseDispositionEvent(sql::Connection& conn, const v1::Disposition& d,
                                     const std::string& reason, absl::Time now) {
  std::string id;
  RETURN_IF_ERROR(Query(conn, "SELECT credit_event_id FROM dispositions WHERE disposition_id = ?",
                        {d.disposition_id()}, [&](const sql::ResultSet& row) {
                          id = row.getString(1);
                          return absl::OkStatus();
                        }));
  if (id.empty()) return absl::OkStatus();
  uint64_t account = 0;
  if (!absl::SimpleAtoi(id.substr(id.rfind(':') + 1), &account)) return absl::OkStatus();
  return RecordCreditEvent(conn, id + ":reversal", account, credit::v1::CREDIT_EVENT_TYPE_REVERSAL,
                           absl::StrCat("disposition:", d.disposition_id()), reason, now, id);
}

v1::Filing DispositionFiling(v1::FilingKind kind, const v1::Disposition& d) {
  v1::Filing filing;
  filing.set_kind(kind);
  filing.set_subject_kind(d.group_id() != 0 ? v1::SUBJECT_KIND_GROUP : v1::SUBJECT_KIND_ACCOUNT);
  filing.set_subject_id(d.group_id() != 0 ? d.group_id() : d.account_id());
  *filing.mutable_disposition() = d;
  return filing;
}

}  // namespace qunzu::moderation
