// The report queue in MySQL (R12.1-R12.4): user reports fold into one open
// case per target counting distinct reporters, are rate-limited per
// reporter, escalate when enough reporters come within a window, carry a
// deadline by category and are claimed and resolved by moderators with a
// statement of reasons the reporters can read. Held messages of the screen
// are reports too (source SCREENING, review_queue.cc). Every change is
// idempotent by request_id and audited in its transaction.
#ifndef QUNZU_SERVICES_MODERATION_REPORT_STORE_H_
#define QUNZU_SERVICES_MODERATION_REPORT_STORE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/mysql_pool.h"
#include "qunzu/moderation/v1/moderation.pb.h"
#include "services/moderation/case_metrics.h"
#include "services/moderation/mysql_rule_store.h"
#include "services/moderation/review_queue.h"
#include "services/moderation/subjects.h"

namespace qunzu::moderation {

// How reports are handled; the defaults are DESIGN §5's.
struct ReportOptions {
  // Handling deadline: 24 h, 2 h for FRAUD and VIOLENCE_TERROR.
  absl::Duration deadline = absl::Hours(24);
  absl::Duration urgent_deadline = absl::Hours(2);
  // A case escalates when this many distinct reporters report it within
  // the window.
  int64_t escalation_reporters = 5;
  absl::Duration escalation_window = absl::Hours(1);
  // Submissions per reporter (or per client IP for anonymous reports) per
  // window.
  int64_t reporter_limit = 10;
  absl::Duration reporter_window = absl::Hours(1);

  absl::Duration DeadlineFor(v1::ContentCategory category) const;
};

class ReportStore final : public ReviewQueue {
 public:
  ReportStore(MysqlPool& pool, SubjectDirectory& subjects, CaseMetrics* metrics, const Clock& clock,
              ReportOptions options)
      : pool_(pool), subjects_(subjects), metrics_(metrics), clock_(clock), options_(options) {}

  // Errors: NOT_FOUND TARGET_NOT_FOUND; ALREADY_EXISTS ALREADY_REPORTED;
  // RESOURCE_EXHAUSTED REPORT_RATE_LIMITED; UNAVAILABLE when the target
  // cannot be checked.
  absl::StatusOr<v1::SubmitReportResponse> Submit(const RequestContext& context,
                                                  const v1::SubmitReportRequest& request);
  absl::StatusOr<v1::ListReportsResponse> List(const v1::ListReportsRequest& request);
  absl::StatusOr<v1::ClaimReportResponse> Claim(const RequestContext& context,
                                                const v1::ClaimReportRequest& request);
  absl::StatusOr<v1::ResolveReportResponse> Resolve(const RequestContext& context,
                                                    const v1::ResolveReportRequest& request);
  // The platform sees only a report its actor filed, without other
  // reporters or the assignee.
  absl::StatusOr<v1::GetReportResponse> Get(const Caller& caller,
                                            const v1::GetReportRequest& request);
  // Errors: INVALID_ARGUMENT PERIOD_TOO_LONG.
  absl::StatusOr<v1::GetHandlingStatsResponse> Stats(const v1::GetHandlingStatsRequest& request);

  // ReviewQueue: a held message opens a SCREENING report.
  absl::StatusOr<v1::HeldMessage> Hold(const HeldMessageInput& input) override;
  // Errors: NOT_FOUND HELD_MESSAGE_NOT_FOUND.
  absl::StatusOr<v1::GetHeldMessageResponse> GetHeld(const v1::GetHeldMessageRequest& request);
  absl::StatusOr<v1::ListHeldMessagesResponse> ListHeld(const v1::ListHeldMessagesRequest& request);

  // The report as staff see it, submissions included. NOT_FOUND
  // REPORT_NOT_FOUND.
  absl::StatusOr<v1::Report> Load(sql::Connection& conn, uint64_t report_id, bool for_update);

  const ReportOptions& options() const { return options_; }

 private:
  absl::Status CheckTarget(const v1::ReportTarget& target);
  absl::Status CheckRate(sql::Connection& conn, const v1::SubmitReportRequest& request,
                         absl::Time now);
  absl::StatusOr<v1::SubmitReportResponse> SubmitInTransaction(
      sql::Connection& conn, const RequestContext& context, const v1::SubmitReportRequest& request);

  MysqlPool& pool_;
  SubjectDirectory& subjects_;
  CaseMetrics* metrics_;
  const Clock& clock_;
  const ReportOptions options_;
};

// Whether a report is overdue at `now`: unresolved past its deadline, or
// resolved after it.
bool IsOverdue(const v1::Report& report, absl::Time now);

}  // namespace qunzu::moderation

#endif  // QUNZU_SERVICES_MODERATION_REPORT_STORE_H_
