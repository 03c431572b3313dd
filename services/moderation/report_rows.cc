#include "services/moderation/report_rows.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/mysql.h"
#include "common/status.h"
#include "qunzu/credit/v1/credit.pb.h"
#include "services/moderation/case_util.h"

namespace qunzu::moderation {

absl::StatusOr<v1::Report> ReadReportRow(const sql::ResultSet& row) {
  v1::Report report;
  report.set_report_id(row.getUInt64(1));
  report.set_source(static_cast<v1::ReportSource>(row.getInt(2)));
  v1::ReportTarget* target = report.mutable_target();
  target->set_kind(static_cast<v1::ReportTargetKind>(row.getInt(3)));
  target->set_group_id(row.getUInt64(4));
  target->set_account_id(row.getUInt64(5));
  target->set_message_id(row.getString(6));
  report.set_category(static_cast<v1::ContentCategory>(row.getInt(7)));
  report.set_state(static_cast<v1::ReportState>(row.getInt(8)));
  report.set_escalated(row.getBoolean(9));
  ASSIGN_OR_RETURN(absl::Time escalated_at, ReadOptionalTime(row, 10));
  if (report.escalated()) *report.mutable_escalated_at() = ToProto(escalated_at);
  report.set_distinct_reporter_count(row.getUInt(11));
  report.set_submission_count(row.getUInt(12));
  ASSIGN_OR_RETURN(absl::Time created, ParseSqlDateTime(row.getString(13)));
  *report.mutable_created_at() = ToProto(created);
  ASSIGN_OR_RETURN(absl::Time deadline, ParseSqlDateTime(row.getString(14)));
  *report.mutable_deadline() = ToProto(deadline);
  report.set_assignee(row.getString(15));
  ASSIGN_OR_RETURN(absl::Time claimed, ReadOptionalTime(row, 16));
  if (claimed != absl::InfinitePast()) *report.mutable_claimed_at() = ToProto(claimed);
  report.set_outcome(static_cast<v1::ReportOutcome>(row.getInt(17)));
  report.set_statement_of_reasons(row.getString(18));
  report.set_resolved_by(row.getString(19));
  ASSIGN_OR_RETURN(absl::Time resolved, ReadOptionalTime(row, 20));
  if (resolved != absl::InfinitePast()) *report.mutable_resolved_at() = ToProto(resolved);
  report.set_duplicate_of_report_id(row.getUInt64(21));
  for (uint64_t id : SplitIds(row.getString(22))) report.add_disposition_ids(id);
  if (!row.isNull(23)) {
    // A Report fragment holding held_message and screen_reasons.
    v1::Report held;
    if (!held.ParseFromString(row.getString(23))) {
      return MakeError(absl::StatusCode::kInternal, "REPORT_CORRUPT", "held message unreadable");
    }
    *report.mutable_held_message() = held.held_message();
    *report.mutable_screen_reasons() = held.screen_reasons();
  }
  return report;
}

absl::Status LoadSubmissions(sql::Connection& conn, v1::Report* report) {
  report->clear_submissions();
  return Query(conn,
               "SELECT submission_id, submission_pb FROM report_submissions WHERE report_id = ? "
               "ORDER BY submission_id",
               {report->report_id()}, [&](const sql::ResultSet& row) -> absl::Status {
                 v1::ReportSubmission* s = report->add_submissions();
                 if (!s->ParseFromString(row.getString(2))) {
                   return MakeError(absl::StatusCode::kInternal, "REPORT_CORRUPT",
                                    "submission unreadable");
                 }
                 s->set_submission_id(row.getUInt64(1));
                 return absl::OkStatus();
               });
}

absl::Status Refold(sql::Connection& conn, const ReportOptions& options, absl::Time now,
                    v1::ContentCategory category, v1::Report* report) {
  uint32_t distinct = 0;
  int64_t recent = 0;
  const absl::Time since = now - options.escalation_window;
  // Anonymous reporters count once per client IP.
  RETURN_IF_ERROR(Query(
      conn,
      "SELECT COUNT(DISTINCT IF(reporter_account_id = 0, CONCAT('ip:', client_ip), "
      "reporter_account_id)), COUNT(DISTINCT IF(submitted_at >= ?, IF(reporter_account_id = 0, "
      "CONCAT('ip:', client_ip), reporter_account_id), NULL)) FROM report_submissions "
      "WHERE report_id = ?",
      {since, report->report_id()}, [&](const sql::ResultSet& row) {
        distinct = static_cast<uint32_t>(row.getUInt(1));
        recent = row.getInt64(2);
        return absl::OkStatus();
      }));
  report->set_distinct_reporter_count(distinct);
  report->set_submission_count(static_cast<uint32_t>(report->submissions_size()));
  if (!report->escalated() && recent >= options.escalation_reporters) {
    report->set_escalated(true);
    *report->mutable_escalated_at() = ToProto(now);
  }
  const absl::Time created = FromProto(report->created_at());
  absl::Time deadline = FromProto(report->deadline());
  if (options.DeadlineFor(category) < options.DeadlineFor(report->category())) {
    report->set_category(category);
    deadline = std::min(deadline, created + options.DeadlineFor(category));
    *report->mutable_deadline() = ToProto(deadline);
  }
  return Execute(
             conn,
             "UPDATE reports SET distinct_reporters = ?, submissions = ?, escalated = ?, "
             "escalated_at = ?, category = ?, deadline = ? WHERE report_id = ?",
             {distinct, report->submission_count(), report->escalated(),
              report->escalated() ? SqlValue(FromProto(report->escalated_at())) : SqlValue(nullptr),
              static_cast<int>(report->category()), deadline, report->report_id()})
      .status();
}

v1::Report ReporterView(const v1::Report& report, uint64_t reporter) {
  v1::Report view = report;
  view.clear_assignee();
  view.clear_claimed_at();
  view.clear_resolved_by();
  view.clear_submissions();
  for (const v1::ReportSubmission& s : report.submissions()) {
    if (s.reporter_account_id() == reporter) *view.add_submissions() = s;
  }
  return view;
}

absl::Status CheckCitedDispositions(sql::Connection& conn, uint64_t report_id,
                                    const v1::ResolveReportRequest& request) {
  for (uint64_t id : request.disposition_ids()) {
    std::optional<std::string> basis;
    RETURN_IF_ERROR(Query(conn,
                          "SELECT basis_report_ids FROM dispositions WHERE disposition_id = ? "
                          "AND applied = 1",
                          {id}, [&](const sql::ResultSet& row) {
                            basis = std::string(row.getString(1));
                            return absl::OkStatus();
                          }));
    if (!basis) {
      return MakeError(absl::StatusCode::kNotFound, "DISPOSITION_NOT_FOUND",
                       absl::StrCat("no disposition ", id), {{"disposition_id", absl::StrCat(id)}});
    }
    std::vector<uint64_t> reports = SplitIds(*basis);
    if (std::find(reports.begin(), reports.end(), report_id) == reports.end()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "DISPOSITION_BASIS_MISMATCH",
                       absl::StrCat("disposition ", id, " does not name this report in its basis"),
                       {{"disposition_id", absl::StrCat(id)}});
    }
  }
  return absl::OkStatus();
}

absl::Status RecordCreditEvents(sql::Connection& conn, const v1::Report& report,
                                const v1::ResolveReportRequest& request, absl::Time now) {
  const std::string prefix = absl::StrCat("moderation:report:", report.report_id(), ":");
  const std::string reference = absl::StrCat("report:", report.report_id());
  const std::string reason = absl::StrCat("Report ", report.report_id(), " resolved as ",
                                          v1::ReportOutcome_Name(request.outcome()));
  auto record = [&](const std::string& id, uint64_t account,
                    credit::v1::CreditEventType type) -> absl::Status {
    return RecordCreditEvent(conn, prefix + id, account, type, reference, reason, now);
  };
  std::set<uint64_t> reporters;
  for (const v1::ReportSubmission& s : report.submissions()) {
    if (s.reporter_account_id() != 0) reporters.insert(s.reporter_account_id());
  }
  if (request.outcome() == v1::REPORT_OUTCOME_VIOLATION) {
    if (report.target().account_id() != 0) {
      RETURN_IF_ERROR(record("target", report.target().account_id(),
                             report.target().kind() == v1::REPORT_TARGET_KIND_MESSAGE
                                 ? credit::v1::CREDIT_EVENT_TYPE_CONTENT_VIOLATION_CONFIRMED
                                 : credit::v1::CREDIT_EVENT_TYPE_REPORT_UPHELD));
    }
    for (uint64_t reporter : reporters) {
      RETURN_IF_ERROR(record(absl::StrCat("reporter:", reporter), reporter,
                             credit::v1::CREDIT_EVENT_TYPE_ACCURATE_REPORT_FILED));
    }
  } else if (request.outcome() == v1::REPORT_OUTCOME_INVALID && request.false_report()) {
    for (uint64_t reporter : reporters) {
      RETURN_IF_ERROR(record(absl::StrCat("reporter:", reporter), reporter,
                             credit::v1::CREDIT_EVENT_TYPE_FALSE_REPORT_FILED));
    }
  }
  return absl::OkStatus();
}

absl::Status DecideHeld(sql::Connection& conn, uint64_t report_id, bool release, absl::Time now) {
  return Execute(conn,
                 "UPDATE held_messages SET state = ?, decided_at = ? WHERE report_id = ? AND "
                 "state = ?",
                 {static_cast<int>(release ? v1::HELD_MESSAGE_STATE_RELEASED
                                           : v1::HELD_MESSAGE_STATE_REJECTED),
                  now, report_id, static_cast<int>(v1::HELD_MESSAGE_STATE_PENDING)})
      .status();
}

}  // namespace qunzu::moderation
