#include "services/moderation/report_store.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/idempotency.h"
#include "common/status.h"
#include "services/moderation/case_util.h"
#include "services/moderation/report_rows.h"

namespace qunzu::moderation {
namespace {

absl::Status ReportNotFound(uint64_t report_id) {
  return MakeError(absl::StatusCode::kNotFound, "REPORT_NOT_FOUND",
                   absl::StrCat("no report ", report_id), {{"report_id", absl::StrCat(report_id)}});
}

std::string TargetKey(const v1::ReportTarget& target) {
  switch (target.kind()) {
    case v1::REPORT_TARGET_KIND_MESSAGE:
      return absl::StrCat("m:", target.group_id(), ":", target.message_id());
    case v1::REPORT_TARGET_KIND_GROUP:
      return absl::StrCat("g:", target.group_id());
    default:
      return absl::StrCat("a:", target.account_id());
  }
}

}  // namespace

absl::Duration ReportOptions::DeadlineFor(v1::ContentCategory category) const {
  if (category == v1::CONTENT_CATEGORY_FRAUD || category == v1::CONTENT_CATEGORY_VIOLENCE_TERROR) {
    return urgent_deadline;
  }
  return deadline;
}

bool IsOverdue(const v1::Report& report, absl::Time now) {
  const absl::Time deadline = FromProto(report.deadline());
  if (report.state() == v1::REPORT_STATE_RESOLVED)
    return FromProto(report.resolved_at()) > deadline;
  return now > deadline;
}

absl::StatusOr<v1::Report> ReportStore::Load(sql::Connection& conn, uint64_t report_id,
                                             bool for_update) {
  std::optional<v1::Report> report;
  RETURN_IF_ERROR(Query(conn,
                        absl::StrCat("SELECT ", kReportColumns, " FROM reports WHERE report_id = ?",
                                     for_update ? " FOR UPDATE" : ""),
                        {report_id}, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(report, ReadReportRow(row));
                          return absl::OkStatus();
                        }));
  if (!report) return ReportNotFound(report_id);
  RETURN_IF_ERROR(LoadSubmissions(conn, &*report));
  report->set_overdue(IsOverdue(*report, clock_.Now()));
  return *std::move(report);
}

absl::Status ReportStore::CheckTarget(const v1::ReportTarget& target) {
  absl::StatusOr<bool> exists = true;
  if (target.kind() == v1::REPORT_TARGET_KIND_ACCOUNT || target.account_id() != 0) {
    exists = subjects_.AccountExists(target.account_id());
    if (!exists.ok() || !*exists) {
      if (!exists.ok()) return exists.status();
      return MakeError(absl::StatusCode::kNotFound, "TARGET_NOT_FOUND", "no such account",
                       {{"account_id", absl::StrCat(target.account_id())}});
    }
  }
  if (target.kind() != v1::REPORT_TARGET_KIND_ACCOUNT) {
    ASSIGN_OR_RETURN(bool group, subjects_.GroupExists(target.group_id()));
    if (!group) {
      return MakeError(absl::StatusCode::kNotFound, "TARGET_NOT_FOUND", "no such group",
                       {{"group_id", absl::StrCat(target.group_id())}});
    }
  }
  return absl::OkStatus();
}

absl::Status ReportStore::CheckRate(sql::Connection& conn, const v1::SubmitReportRequest& request,
                                    absl::Time now) {
  const absl::Time since = now - options_.reporter_window;
  int64_t count = 0;
  absl::Time oldest = now;
  const bool anonymous = request.actor_account_id() == 0;
  RETURN_IF_ERROR(Query(
      conn,
      anonymous ? "SELECT COUNT(*), MIN(submitted_at) FROM report_submissions "
                  "WHERE reporter_account_id = 0 AND client_ip = ? AND submitted_at >= ?"
                : "SELECT COUNT(*), MIN(submitted_at) FROM report_submissions "
                  "WHERE reporter_account_id = ? AND submitted_at >= ?",
      {anonymous ? SqlValue(request.client_ip()) : SqlValue(request.actor_account_id()), since},
      [&](const sql::ResultSet& row) -> absl::Status {
        count = row.getInt64(1);
        if (!row.isNull(2)) {
          ASSIGN_OR_RETURN(oldest, ParseSqlDateTime(row.getString(2)));
        }
        return absl::OkStatus();
      }));
  if (count < options_.reporter_limit) return absl::OkStatus();
  const int64_t retry =
      std::max<int64_t>(1, absl::ToInt64Seconds(oldest + options_.reporter_window - now));
  return MakeError(absl::StatusCode::kResourceExhausted, "REPORT_RATE_LIMITED",
                   "too many reports from this reporter; try again later",
                   {{"retry_after_seconds", absl::StrCat(retry)}});
}

absl::StatusOr<v1::SubmitReportResponse> ReportStore::Submit(
    const RequestContext& context, const v1::SubmitReportRequest& request) {
  RETURN_IF_ERROR(CheckTarget(request.target()));
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  bool fresh = false;  // a replay of the same request is not a second report
  ASSIGN_OR_RETURN(v1::SubmitReportResponse response,
                   WithTransaction(pool_, [&](sql::Connection& conn) {
                     fresh = false;  // per attempt: a retried transaction may find a replay
                     return RunIdempotent<v1::SubmitReportResponse>(conn, key, request, [&]() {
                       fresh = true;
                       return SubmitInTransaction(conn, context, request);
                     });
                   }));
  if (fresh && metrics_ != nullptr) metrics_->ReportReceived(request.category());
  return response;
}

absl::StatusOr<v1::SubmitReportResponse> ReportStore::SubmitInTransaction(
    sql::Connection& conn, const RequestContext& context, const v1::SubmitReportRequest& request) {
  const absl::Time now = clock_.Now();
  RETURN_IF_ERROR(CheckRate(conn, request, now));
  const v1::ReportTarget& target = request.target();
  const std::string open_key = TargetKey(target);
  uint64_t report_id = 0;
  RETURN_IF_ERROR(Query(conn, "SELECT report_id FROM reports WHERE open_key = ? FOR UPDATE",
                        {open_key}, [&](const sql::ResultSet& row) {
                          report_id = row.getUInt64(1);
                          return absl::OkStatus();
                        }));
  const bool folded = report_id != 0;
  if (!folded) {
    absl::StatusOr<int64_t> inserted =
        Execute(conn,
                "INSERT INTO reports (source, target_kind, target_group_id, target_account_id, "
                "target_message_id, open_key, category, state, distinct_reporters, submissions, "
                "created_at, deadline, statement) VALUES (?,?,?,?,?,?,?,?,0,0,?,?,'')",
                {static_cast<int>(v1::REPORT_SOURCE_USER), static_cast<int>(target.kind()),
                 target.group_id(), target.account_id(), target.message_id(), open_key,
                 static_cast<int>(request.category()), static_cast<int>(v1::REPORT_STATE_OPEN), now,
                 now + options_.DeadlineFor(request.category())});
    if (!inserted.ok() && inserted.status().code() == absl::StatusCode::kAlreadyExists) {
      // A concurrent first report on this target won: retry and fold.
      return MakeError(absl::StatusCode::kAborted, kMysqlConflict, "concurrent report");
    }
    RETURN_IF_ERROR(inserted.status());
    ASSIGN_OR_RETURN(report_id, LastInsertId(conn));
  } else if (request.actor_account_id() != 0) {
    bool already = false;
    RETURN_IF_ERROR(Query(conn,
                          "SELECT 1 FROM report_submissions WHERE report_id = ? AND "
                          "reporter_account_id = ? LIMIT 1",
                          {report_id, request.actor_account_id()}, [&](const sql::ResultSet&) {
                            already = true;
                            return absl::OkStatus();
                          }));
    if (already) {
      return MakeError(absl::StatusCode::kAlreadyExists, "ALREADY_REPORTED",
                       "this reporter already reported this open case",
                       {{"report_id", absl::StrCat(report_id)}});
    }
  }
  v1::ReportSubmission submission;
  submission.set_reporter_account_id(request.actor_account_id());
  submission.set_category(request.category());
  submission.set_description(request.description());
  *submission.mutable_evidence() = request.evidence();
  *submission.mutable_submitted_at() = ToProto(now);
  RETURN_IF_ERROR(
      Execute(conn,
              "INSERT INTO report_submissions (report_id, reporter_account_id, "
              "client_ip, category, submission_pb, submitted_at) VALUES (?,?,?,?,?,?)",
              {report_id, request.actor_account_id(), request.client_ip(),
               static_cast<int>(request.category()), submission.SerializeAsString(), now})
          .status());
  ASSIGN_OR_RETURN(v1::Report report, Load(conn, report_id, true));
  RETURN_IF_ERROR(Refold(conn, options_, now, request.category(), &report));
  RETURN_IF_ERROR(AuditChange(conn, context, "REPORT_SUBMITTED", request.request_id(), now,
                              {{audit::v1::SUBJECT_KIND_REPORT, report_id}},
                              {{"target", open_key},
                               {"category", v1::ContentCategory_Name(request.category())},
                               {"folded", folded ? "true" : "false"},
                               {"escalated", report.escalated() ? "true" : "false"}}));
  v1::SubmitReportResponse response;
  response.set_submission_id(report.submissions(report.submissions_size() - 1).submission_id());
  response.set_folded(folded);
  *response.mutable_report() = ReporterView(report, request.actor_account_id());
  return response;
}

absl::StatusOr<v1::ListReportsResponse> ReportStore::List(const v1::ListReportsRequest& request) {
  ASSIGN_OR_RETURN(PageWindow window, ReadPage(request.page()));
  const absl::Time now = clock_.Now();
  std::string where = "1=1";
  std::vector<SqlValue> params;
  auto add = [&](const std::string& clause, std::vector<SqlValue> values) {
    absl::StrAppend(&where, " AND ", clause);
    params.insert(params.end(), values.begin(), values.end());
  };
  const int resolved = static_cast<int>(v1::REPORT_STATE_RESOLVED);
  if (request.state() != 0) add("state = ?", {static_cast<int>(request.state())});
  if (request.category() != 0) add("category = ?", {static_cast<int>(request.category())});
  if (request.has_overdue()) {
    add(absl::StrCat(request.overdue() ? "" : "NOT ",
                     "((state <> ? AND deadline < ?) OR (state = ? AND resolved_at > deadline))"),
        {resolved, now, resolved});
  }
  if (request.has_escalated()) add("escalated = ?", {request.escalated()});
  if (!request.assignee().empty()) add("assignee = ?", {request.assignee()});
  if (request.source() != 0) add("source = ?", {static_cast<int>(request.source())});
  const v1::ReportTarget& target = request.target();
  if (target.kind() != 0) add("target_kind = ?", {static_cast<int>(target.kind())});
  if (target.group_id() != 0) add("target_group_id = ?", {target.group_id()});
  if (target.account_id() != 0) add("target_account_id = ?", {target.account_id()});
  if (!target.message_id().empty()) add("target_message_id = ?", {target.message_id()});
  if (request.has_created_after()) add("created_at >= ?", {FromProto(request.created_after())});
  if (request.has_created_before()) add("created_at < ?", {FromProto(request.created_before())});
  params.emplace_back(window.size + 1);
  params.emplace_back(window.offset);
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
  std::vector<v1::Report> reports;
  RETURN_IF_ERROR(Query(*lease,
                        absl::StrCat("SELECT ", kReportColumns, " FROM reports WHERE ", where,
                                     " ORDER BY deadline, escalated DESC, report_id LIMIT ? "
                                     "OFFSET ?"),
                        params, [&](const sql::ResultSet& row) -> absl::Status {
                          ASSIGN_OR_RETURN(v1::Report report, ReadReportRow(row));
                          reports.push_back(std::move(report));
                          return absl::OkStatus();
                        }));
  v1::ListReportsResponse response;
  WritePage(window, reports.size(), response.mutable_page());
  if (reports.size() > static_cast<size_t>(window.size)) reports.resize(window.size);
  for (v1::Report& report : reports) {
    RETURN_IF_ERROR(LoadSubmissions(*lease, &report));
    report.set_overdue(IsOverdue(report, now));
    *response.add_reports() = std::move(report);
  }
  return response;
}

absl::StatusOr<v1::ClaimReportResponse> ReportStore::Claim(const RequestContext& context,
                                                           const v1::ClaimReportRequest& request) {
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  const std::string& me = context.caller.principal;
  return WithTransaction(pool_, [&](sql::Connection& conn) {
    return RunIdempotent<v1::ClaimReportResponse>(
        conn, key, request, [&]() -> absl::StatusOr<v1::ClaimReportResponse> {
          const absl::Time now = clock_.Now();
          ASSIGN_OR_RETURN(v1::Report report, Load(conn, request.report_id(), true));
          if (report.state() == v1::REPORT_STATE_RESOLVED) {
            return MakeError(absl::StatusCode::kFailedPrecondition, "REPORT_RESOLVED",
                             "the report is resolved");
          }
          const bool mine = report.state() == v1::REPORT_STATE_IN_REVIEW && report.assignee() == me;
          std::string action;
          if (request.action() == v1::CLAIM_ACTION_CLAIM) {
            if (report.state() == v1::REPORT_STATE_IN_REVIEW && !mine) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "REPORT_ALREADY_CLAIMED",
                               "another moderator claimed the report",
                               {{"assignee", report.assignee()}});
            }
            action = "REPORT_CLAIMED";
          } else if (request.action() == v1::CLAIM_ACTION_TAKE_OVER) {
            action = "REPORT_TAKEN_OVER";
          } else {
            if (!mine) {
              return MakeError(absl::StatusCode::kFailedPrecondition, "NOT_CLAIMED_BY_CALLER",
                               "the caller does not hold this report");
            }
            action = "REPORT_RELEASED";
          }
          const bool release = request.action() == v1::CLAIM_ACTION_RELEASE;
          RETURN_IF_ERROR(Execute(conn,
                                  "UPDATE reports SET state = ?, assignee = ?, claimed_at = ? "
                                  "WHERE report_id = ?",
                                  {static_cast<int>(release ? v1::REPORT_STATE_OPEN
                                                            : v1::REPORT_STATE_IN_REVIEW),
                                   release ? std::string() : me,
                                   release ? SqlValue(nullptr) : SqlValue(now), report.report_id()})
                              .status());
          RETURN_IF_ERROR(AuditChange(conn, context, action, request.request_id(), now,
                                      {{audit::v1::SUBJECT_KIND_REPORT, report.report_id()}},
                                      {{"previous_assignee", report.assignee()}}));
          v1::ClaimReportResponse response;
          ASSIGN_OR_RETURN(*response.mutable_report(), Load(conn, report.report_id(), false));
          return response;
        });
  });
}

absl::StatusOr<v1::ResolveReportResponse> ReportStore::Resolve(
    const RequestContext& context, const v1::ResolveReportRequest& request) {
  const IdempotencyKey key{context.caller.principal, context.method, request.request_id()};
  return WithTransaction(pool_, [&](sql::Connection& conn) {
    return RunIdempotent<v1::ResolveReportResponse>(
        conn, key, request, [&]() -> absl::StatusOr<v1::ResolveReportResponse> {
          const absl::Time now = clock_.Now();
          ASSIGN_OR_RETURN(v1::Report report, Load(conn, request.report_id(), true));
          if (report.state() == v1::REPORT_STATE_RESOLVED) {
            return MakeError(absl::StatusCode::kFailedPrecondition, "REPORT_ALREADY_RESOLVED",
                             "the report is already resolved",
                             {{"outcome", v1::ReportOutcome_Name(report.outcome())}});
          }
          if (report.state() != v1::REPORT_STATE_IN_REVIEW ||
              report.assignee() != context.caller.principal) {
            return MakeError(absl::StatusCode::kFailedPrecondition, "NOT_CLAIMED_BY_CALLER",
                             "claim the report before resolving it");
          }
          if (request.outcome() == v1::REPORT_OUTCOME_DUPLICATE) {
            if (request.duplicate_of_report_id() == report.report_id()) {
              return InvalidField("duplicate_of_report_id", "names the report itself");
            }
            RETURN_IF_ERROR(Load(conn, request.duplicate_of_report_id(), false).status());
          }
          RETURN_IF_ERROR(CheckCitedDispositions(conn, report.report_id(), request));
          std::vector<uint64_t> cited(request.disposition_ids().begin(),
                                      request.disposition_ids().end());
          RETURN_IF_ERROR(
              Execute(
                  conn,
                  "UPDATE reports SET state = ?, open_key = NULL, outcome = ?, statement = ?, "
                  "resolved_by = ?, resolved_at = ?, duplicate_of = ?, disposition_ids = ? "
                  "WHERE report_id = ?",
                  {static_cast<int>(v1::REPORT_STATE_RESOLVED), static_cast<int>(request.outcome()),
                   request.statement_of_reasons(), context.caller.principal, now,
                   request.duplicate_of_report_id(), JoinIds(cited), report.report_id()})
                  .status());
          RETURN_IF_ERROR(RecordCreditEvents(conn, report, request, now));
          if (report.source() == v1::REPORT_SOURCE_SCREENING) {
            RETURN_IF_ERROR(DecideHeld(conn, report.report_id(),
                                       request.outcome() == v1::REPORT_OUTCOME_NO_VIOLATION, now));
          }
          RETURN_IF_ERROR(
              AuditChange(conn, context, "REPORT_RESOLVED", request.request_id(), now,
                          {{audit::v1::SUBJECT_KIND_REPORT, report.report_id()}},
                          {{"outcome", v1::ReportOutcome_Name(request.outcome())},
                           {"statement_of_reasons", request.statement_of_reasons()},
                           {"disposition_ids", JoinIds(cited)},
                           {"false_report", request.false_report() ? "true" : "false"}}));
          v1::ResolveReportResponse response;
          ASSIGN_OR_RETURN(*response.mutable_report(), Load(conn, report.report_id(), false));
          return response;
        });
  });
}

absl::StatusOr<v1::GetReportResponse> ReportStore::Get(const Caller& caller,
                                                       const v1::GetReportRequest& request) {
  const bool platform = caller.role == common::v1::ROLE_PLATFORM;
  if (platform && request.actor_account_id() == 0) {
    return InvalidField("actor_account_id", "is required for the platform: the reporter");
  }
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(kCaseAcquireTimeout));
  ASSIGN_OR_RETURN(v1::Report report, Load(*lease, request.report_id(), false));
  v1::GetReportResponse response;
  if (!platform) {
    *response.mutable_report() = std::move(report);
    return response;
  }
  const bool reporter = std::any_of(report.submissions().begin(), report.submissions().end(),
                                    [&](const v1::ReportSubmission& s) {
                                      return s.reporter_account_id() == request.actor_account_id();
                                    });
  if (!reporter) return ReportNotFound(request.report_id());
  *response.mutable_report() = ReporterView(report, request.actor_account_id());
  return response;
}

}  // namespace qunzu::moderation
