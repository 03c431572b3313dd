// Reports against real MariaDB and Redis (R12.1-R12.4): folding by target
// with distinct reporters, escalation, the reporter rate limit, the queue
// with claims and resolutions, what a reporter may read, deadlines and
// overdue by an injected clock, handling statistics, and held messages.
#include <gtest/gtest.h>

#include <string>

#include "tests/moderation/case_fixture.h"

namespace qunzu::moderation {
namespace {

class CaseReportsTest : public CaseTest {
 protected:
  v1::SubmitReportRequest Report(uint64_t reporter, uint64_t group,
                                 v1::ContentCategory category = v1::CONTENT_CATEGORY_SPAM) {
    v1::SubmitReportRequest r;
    r.set_request_id(absl::StrCat("rep-", reporter, "-", group, "-", ++seq_));
    r.set_actor_account_id(reporter);
    r.mutable_target()->set_kind(v1::REPORT_TARGET_KIND_GROUP);
    r.mutable_target()->set_group_id(group);
    r.set_category(category);
    r.set_description("spam links all day");
    v1::EvidenceItem* e = r.add_evidence();
    e->set_message_id("m1");
    e->set_text("buy now at example.invalid");
    return r;
  }
  absl::StatusOr<v1::SubmitReportResponse> Submit(const v1::SubmitReportRequest& r) {
    return cases_->reports().Submit(Platform("SubmitReport"), r);
  }
  absl::StatusOr<v1::ClaimReportResponse> Claim(uint64_t id, const std::string& who,
                                                v1::ClaimAction action = v1::CLAIM_ACTION_CLAIM) {
    v1::ClaimReportRequest r;
    r.set_request_id(absl::StrCat("claim-", ++seq_));
    r.set_report_id(id);
    r.set_action(action);
    return cases_->reports().Claim(Moderator("ClaimReport", who), r);
  }
  absl::StatusOr<v1::ResolveReportResponse> Resolve(uint64_t id, const std::string& who,
                                                    v1::ReportOutcome outcome) {
    v1::ResolveReportRequest r;
    r.set_request_id(absl::StrCat("resolve-", ++seq_));
    r.set_report_id(id);
    r.set_outcome(outcome);
    r.set_statement_of_reasons("Checked the messages; no rule was broken.");
    return cases_->reports().Resolve(Moderator("ResolveReport", who), r);
  }
  // qunzu_moderation_reports_received_total, all categories.
  double ReportsReceived() {
    double total = 0;
    for (const auto& family : registry_.Collect()) {
      if (family.name != "qunzu_moderation_reports_received_total") continue;
      for (const auto& metric : family.metric) total += metric.counter.value;
    }
    return total;
  }
  int seq_ = 0;
};

TEST_F(CaseReportsTest, ReportsOnOneTargetFoldCountDistinctReportersAndEscalate) {
  Start();
  const uint64_t group = Group();
  const uint64_t a = Account(), b = Account(), c = Account();
  auto first = Submit(Report(a, group));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->folded());
  const uint64_t id = first->report().report_id();
  auto again = Submit(Report(a, group));
  EXPECT_EQ(ErrorReason(again.status()), "ALREADY_REPORTED");
  auto second = Submit(Report(b, group, v1::CONTENT_CATEGORY_FRAUD));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->folded());
  EXPECT_EQ(second->report().report_id(), id);
  EXPECT_EQ(second->report().distinct_reporter_count(), 2u);
  EXPECT_FALSE(second->report().escalated());
  // The shorter deadline of FRAUD wins.
  EXPECT_EQ(second->report().category(), v1::CONTENT_CATEGORY_FRAUD);
  EXPECT_EQ(FromProto(second->report().deadline()) - FromProto(second->report().created_at()),
            absl::Hours(2));
  // A reporter sees only its own submission.
  ASSERT_EQ(second->report().submissions_size(), 1);
  EXPECT_EQ(second->report().submissions(0).reporter_account_id(), b);
  auto third = Submit(Report(c, group));
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->report().escalated());
  EXPECT_EQ(third->report().distinct_reporter_count(), 3u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM reports"), 1);
  // A retry with the same request_id returns the first result.
  v1::SubmitReportRequest retry = Report(a, group);
  retry.set_request_id(absl::StrCat("rep-", a, "-", group, "-1"));
  const double received = ReportsReceived();
  auto replay = Submit(retry);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->submission_id(), first->submission_id());
  EXPECT_EQ(ReportsReceived(), received);  // a replay is not a second report
}

TEST_F(CaseReportsTest, MissingTargetAndRateLimit) {
  options_.reporter_limit = 2;
  Start();
  const uint64_t reporter = Account();
  auto missing = Submit(Report(reporter, next_id_ + 1000));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorReason(missing.status()), "TARGET_NOT_FOUND");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM reports"), 0);
  ASSERT_TRUE(Submit(Report(reporter, Group())).ok());
  ASSERT_TRUE(Submit(Report(reporter, Group())).ok());
  auto limited = Submit(Report(reporter, Group()));
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ErrorReason(limited.status()), "REPORT_RATE_LIMITED");
  EXPECT_FALSE(ErrorMetadata(limited.status(), "retry_after_seconds").empty());
  clock_.Advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_TRUE(Submit(Report(reporter, Group())).ok());
}

TEST_F(CaseReportsTest, ClaimResolveAndTheReporterReadsTheOutcome) {
  Start();
  const uint64_t reporter = Account();
  const uint64_t stranger = Account();
  auto submitted = Submit(Report(reporter, Group()));
  ASSERT_TRUE(submitted.ok());
  const uint64_t id = submitted->report().report_id();
  EXPECT_EQ(ErrorReason(Resolve(id, "mod-a", v1::REPORT_OUTCOME_NO_VIOLATION).status()),
            "NOT_CLAIMED_BY_CALLER");
  ASSERT_TRUE(Claim(id, "mod-a").ok());
  auto taken = Claim(id, "mod-b");
  EXPECT_EQ(ErrorReason(taken.status()), "REPORT_ALREADY_CLAIMED");
  EXPECT_EQ(ErrorMetadata(taken.status(), "assignee"), "mod-a");
  v1::ListReportsRequest mine;
  mine.set_assignee("mod-a");
  auto listed = cases_->reports().List(mine);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->reports_size(), 1);
  EXPECT_EQ(listed->reports(0).state(), v1::REPORT_STATE_IN_REVIEW);
  auto resolved = Resolve(id, "mod-a", v1::REPORT_OUTCOME_NO_VIOLATION);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->report().state(), v1::REPORT_STATE_RESOLVED);
  auto twice = Resolve(id, "mod-a", v1::REPORT_OUTCOME_VIOLATION);
  EXPECT_EQ(twice.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(twice.status()), "REPORT_ALREADY_RESOLVED");
  EXPECT_EQ(ErrorReason(Claim(id, "mod-b").status()), "REPORT_RESOLVED");

  v1::GetReportRequest get;
  get.set_report_id(id);
  get.set_actor_account_id(reporter);
  auto seen = cases_->reports().Get(Caller{"chat-backend", common::v1::ROLE_PLATFORM, ""}, get);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->report().outcome(), v1::REPORT_OUTCOME_NO_VIOLATION);
  EXPECT_EQ(seen->report().statement_of_reasons(), "Checked the messages; no rule was broken.");
  EXPECT_TRUE(seen->report().assignee().empty());
  EXPECT_TRUE(seen->report().resolved_by().empty());
  get.set_actor_account_id(stranger);
  EXPECT_EQ(ErrorReason(cases_->reports()
                            .Get(Caller{"chat-backend", common::v1::ROLE_PLATFORM, ""}, get)
                            .status()),
            "REPORT_NOT_FOUND");
  // A new report on the same target opens a new case once this one is closed.
  auto next = Submit(Report(reporter, submitted->report().target().group_id()));
  ASSERT_TRUE(next.ok());
  EXPECT_NE(next->report().report_id(), id);
  // Submit, claim, resolve, submit: the refused calls left no record.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'audit'"), 4);
}

TEST_F(CaseReportsTest, ResolutionsRecordTheirCreditEventsOnce) {
  Start();
  const uint64_t accused = Account();
  const uint64_t a = Account(), b = Account();
  v1::SubmitReportRequest first = Report(a, 0);
  first.mutable_target()->set_kind(v1::REPORT_TARGET_KIND_ACCOUNT);
  first.mutable_target()->clear_group_id();
  first.mutable_target()->set_account_id(accused);
  auto submitted = Submit(first);
  ASSERT_TRUE(submitted.ok()) << submitted.status();
  v1::SubmitReportRequest second = first;
  second.set_request_id("second");
  second.set_actor_account_id(b);
  ASSERT_TRUE(Submit(second).ok());
  const uint64_t id = submitted->report().report_id();
  ASSERT_TRUE(Claim(id, "mod-a").ok());
  ASSERT_TRUE(Resolve(id, "mod-a", v1::REPORT_OUTCOME_VIOLATION).ok());
  const std::string prefix = absl::StrCat("moderation:report:", id, ":");
  auto events = WaitForEvents(3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[prefix + "target"].account_id(), accused);
  EXPECT_EQ(events[prefix + "target"].event_type(), credit::v1::CREDIT_EVENT_TYPE_REPORT_UPHELD);
  EXPECT_EQ(events[absl::StrCat(prefix, "reporter:", a)].event_type(),
            credit::v1::CREDIT_EVENT_TYPE_ACCURATE_REPORT_FILED);
  EXPECT_EQ(events[absl::StrCat(prefix, "reporter:", b)].account_id(), b);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'credit'"), 3);
}

TEST_F(CaseReportsTest, DeadlinesOverdueAndHandlingStats) {
  Start();
  const absl::Time start = clock_.Now();
  auto fraud = Submit(Report(Account(), Group(), v1::CONTENT_CATEGORY_FRAUD));
  auto spam = Submit(Report(Account(), Group(), v1::CONTENT_CATEGORY_SPAM));
  ASSERT_TRUE(fraud.ok() && spam.ok());
  EXPECT_EQ(FromProto(spam->report().deadline()) - start, absl::Hours(24));
  v1::ListReportsRequest overdue;
  overdue.set_overdue(true);
  EXPECT_EQ(cases_->reports().List(overdue)->reports_size(), 0);
  clock_.Advance(absl::Hours(3));
  auto late = cases_->reports().List(overdue);
  ASSERT_TRUE(late.ok());
  ASSERT_EQ(late->reports_size(), 1);
  EXPECT_EQ(late->reports(0).report_id(), fraud->report().report_id());
  EXPECT_TRUE(late->reports(0).overdue());
  // The queue is earliest deadline first.
  auto queue = cases_->reports().List(v1::ListReportsRequest());
  ASSERT_EQ(queue->reports_size(), 2);
  EXPECT_EQ(queue->reports(0).report_id(), fraud->report().report_id());

  v1::GetHandlingStatsRequest stats;
  *stats.mutable_start_time() = ToProto(start - absl::Hours(1));
  *stats.mutable_end_time() = ToProto(clock_.Now() + absl::Hours(1));
  auto before = cases_->reports().Stats(stats);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->total().received(), 2u);
  EXPECT_EQ(before->total().open(), 2u);
  EXPECT_EQ(before->total().overdue(), 1u);
  ASSERT_TRUE(Claim(fraud->report().report_id(), "mod-a").ok());
  ASSERT_TRUE(Resolve(fraud->report().report_id(), "mod-a", v1::REPORT_OUTCOME_INVALID).ok());
  auto after = cases_->reports().Stats(stats);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->total().handled(), 1u);
  EXPECT_EQ(after->total().handled_late(), 1u);
  EXPECT_EQ(after->total().overdue(), 0u);
  EXPECT_EQ(after->total().worst_time_to_handle().seconds(), 3 * 3600);
  EXPECT_EQ(after->by_category_size(), 2);
  stats.set_period(v1::STATS_PERIOD_DAY);
  EXPECT_EQ(cases_->reports().Stats(stats)->periods_size(), 1);
  *stats.mutable_end_time() = ToProto(start + absl::Hours(24 * 400));
  EXPECT_EQ(ErrorReason(cases_->reports().Stats(stats).status()), "PERIOD_TOO_LONG");
}

TEST_F(CaseReportsTest, HeldMessagesAreReviewReportsReleasedOrRejected) {
  Start();
  const uint64_t group = Group();
  HeldMessageInput input;
  input.request_id = "screen-1";
  input.message_id = "msg-1";
  input.group_id = group;
  input.sender_account_id = Account();
  input.text = "a held text";
  v1::ScreenReason reason;
  reason.set_code(v1::SCREEN_REASON_CODE_CONTENT_RULE);
  reason.set_category(v1::CONTENT_CATEGORY_VIOLENCE_TERROR);
  input.reasons.push_back(reason);
  input.held_at = clock_.Now();
  const double received = ReportsReceived();
  auto held = cases_->reports().Hold(input);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(ReportsReceived(), received + 1);
  EXPECT_EQ(held->state(), v1::HELD_MESSAGE_STATE_PENDING);
  EXPECT_EQ(FromProto(held->deadline()) - input.held_at, absl::Hours(2));
  auto again = cases_->reports().Hold(input);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->report_id(), held->report_id());
  input.request_id = "screen-2";
  input.message_id = "msg-2";
  auto other = cases_->reports().Hold(input);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(ReportsReceived(), received + 2);  // the repeated hold counted once

  v1::ListReportsRequest screening;
  screening.set_source(v1::REPORT_SOURCE_SCREENING);
  auto queue = cases_->reports().List(screening);
  ASSERT_EQ(queue->reports_size(), 2);
  EXPECT_EQ(queue->reports(0).held_message().text(), "a held text");

  ASSERT_TRUE(Claim(held->report_id(), "mod-a").ok());
  ASSERT_TRUE(Resolve(held->report_id(), "mod-a", v1::REPORT_OUTCOME_NO_VIOLATION).ok());
  ASSERT_TRUE(Claim(other->report_id(), "mod-a").ok());
  ASSERT_TRUE(Resolve(other->report_id(), "mod-a", v1::REPORT_OUTCOME_VIOLATION).ok());
  v1::GetHeldMessageRequest get;
  get.set_report_id(held->report_id());
  EXPECT_EQ(cases_->reports().GetHeld(get)->held_message().state(),
            v1::HELD_MESSAGE_STATE_RELEASED);
  get.set_report_id(other->report_id());
  EXPECT_EQ(cases_->reports().GetHeld(get)->held_message().state(),
            v1::HELD_MESSAGE_STATE_REJECTED);
  v1::ListHeldMessagesRequest decided;
  decided.set_group_id(group);
  *decided.mutable_decided_after() = ToProto(input.held_at);
  EXPECT_EQ(cases_->reports().ListHeld(decided)->held_messages_size(), 2);
  get.set_report_id(999999);
  EXPECT_EQ(ErrorReason(cases_->reports().GetHeld(get).status()), "HELD_MESSAGE_NOT_FOUND");
}

}  // namespace
}  // namespace qunzu::moderation
