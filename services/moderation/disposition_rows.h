// How dispositions are stored and read back, and the records a
// disposition change writes beside it: its audit subjects, its filing, and
// the credit event it causes (or reverses).
#ifndef QUNZU_SERVICES_MODERATION_DISPOSITION_ROWS_H_
#define QUNZU_SERVICES_MODERATION_DISPOSITION_ROWS_H_

#include <cppconn/connection.h>
#include <cppconn/resultset.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::moderation {

inline constexpr char kDispositionColumns[] =
    "disposition_id, kind, group_id, account_id, until_at, levels, basis_report_ids, "
    "basis_rule_ids, statement, decided_by, decided_at, state, credit_penalty_id, filing_id, "
    "revoked_by, revoked_at, revocation_reason, revocation_filing_id";

// Who asked for a disposition or its revocation, as stored with it
// (request_key, revoke_key): "principal\nmethod\nrequest_id".
struct RequestKey {
  std::string principal;
  std::string method;
  std::string request_id;

  std::string Join() const;
  // INTERNAL DISPOSITION_RESERVATION_CORRUPT unless it has the three parts.
  static absl::StatusOr<RequestKey> Parse(const std::string& joined);
};

// NOT_FOUND DISPOSITION_NOT_FOUND.
absl::Status DispositionNotFound(uint64_t id);
bool IsGroupKind(v1::DispositionKind kind);
// SUSPEND_ADMIN and REVOKE_CREATION, projected to AccountRestrictionsKey.
bool IsRestriction(v1::DispositionKind kind);

// One dispositions row (kDispositionColumns); ACTIVE past its until reads
// EXPIRED.
absl::StatusOr<v1::Disposition> ReadDispositionRow(const sql::ResultSet& row, absl::Time now);

// The audit subjects of a disposition change.
std::vector<std::pair<audit::v1::SubjectKind, uint64_t>> DispositionSubjects(
    const v1::Disposition& d, uint64_t filing_id);

// The audit subjects of a reservation that was abandoned (no filing).
std::vector<std::pair<audit::v1::SubjectKind, uint64_t>> AbandonedSubjects(
    const v1::Disposition& d);

// Why the enforcing service refused, as kept with an abandoned reservation:
// "<REASON or CODE>: <message>".
std::string RefusalReason(const absl::Status& refusal);

// The filing of a disposition or of its revocation.
v1::Filing DispositionFiling(v1::FilingKind kind, const v1::Disposition& d);

// Records the credit event of a disposition against `account` (the group's
// owner or the account) and remembers its id for a revocation's REVERSAL.
absl::Status RecordDispositionEvent(sql::Connection& conn, const v1::Disposition& d,
                                    uint64_t account, absl::Time now);

// Reverses the credit event a revoked disposition caused, if any.
absl::Status ReverseDispositionEvent(sql::Connection& conn, const v1::Disposition& d,
                                     const std::string& reason, absl::Time now);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_DISPOSITION_ROWS_H_
