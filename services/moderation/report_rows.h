// How reports are stored and read back, and the pieces of a report change
// the store composes: folding a submission into its case, the reporter's
// view, cited dispositions, the decision on a held message.
#ifndef QUNZU_SERVICES_MODERATION_REPORT_ROWS_H_
#define QUNZU_SERVICES_MODERATION_REPORT_ROWS_H_

#include <cppconn/connection.h>
#include <cppconn/resultset.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/report_store.h"

namespace qunzu::moderation {

inline constexpr char kReportColumns[] =
    "report_id, source, target_kind, target_group_id, target_account_id, target_message_id, "
    "category, state, escalated, escalated_at, distinct_reporters, submissions, created_at, "
    "deadline, assignee, claimed_at, outcome, statement, resolved_by, resolved_at, duplicate_of, "
    "disposition_ids, held_pb";

// One reports row (kReportColumns), without submissions or overdue.
absl::StatusOr<v1::Report> ReadReportRow(const sql::ResultSet& row);

// Adds the report's submissions in order.
absl::Status LoadSubmissions(sql::Connection& conn, v1::Report* report);

// After a submission joined `report` (loaded with it, locked): counts the
// distinct reporters, escalates when enough came within the window, moves
// to the category with the shorter deadline; writes the row.
absl::Status Refold(sql::Connection& conn, const ReportOptions& options, absl::Time now,
                    v1::ContentCategory category, v1::Report* report);

// What a reporter may read: its own submissions, no assignee.
v1::Report ReporterView(const v1::Report& report, uint64_t reporter);

// Each disposition cited by a resolution exists and names the report in
// its basis. NOT_FOUND DISPOSITION_NOT_FOUND; FAILED_PRECONDITION
// DISPOSITION_BASIS_MISMATCH.
absl::Status CheckCitedDispositions(sql::Connection& conn, uint64_t report_id,
                                    const v1::ResolveReportRequest& request);

// Writes the credit events of a resolution to the outbox in conn's
// transaction (R7.3): VIOLATION counts against the reported account
// (REPORT_UPHELD, or CONTENT_VIOLATION_CONFIRMED for its message) and for
// each reporter (ACCURATE_REPORT_FILED); INVALID with false_report against
// each reporter (FALSE_REPORT_FILED). Event ids
// "moderation:report:<id>:target" and "moderation:report:<id>:reporter:<a>".
absl::Status RecordCreditEvents(sql::Connection& conn, const v1::Report& report,
                                const v1::ResolveReportRequest& request, absl::Time now);

// Releases or rejects the message a SCREENING report held.
absl::Status DecideHeld(sql::Connection& conn, uint64_t report_id, bool release, absl::Time now);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_REPORT_ROWS_H_
