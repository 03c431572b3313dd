// Dispositions and the blacklist against real MariaDB and Redis (R11.1-
// R11.5): applied at the enforcing service before they are recorded,
// nothing recorded when it fails, idempotent retries, one filing and one
// audit record each, restriction and blacklist projections written and
// lifted, and the bad inputs the issue names.
#include <gtest/gtest.h>

#include <string>

#include "services/moderation/case_validation.h"
#include "tests/moderation/case_fixture.h"

namespace qunzu::moderation {
namespace {

class CaseDispositionsTest : public CaseTest {
 protected:
  v1::DisposeGroupRequest Close(uint64_t group, const std::string& request_id) {
    v1::DisposeGroupRequest r;
    r.set_request_id(request_id);
    r.set_group_id(group);
    r.set_kind(v1::DISPOSITION_KIND_CLOSE);
    r.mutable_basis()->add_rule_ids(rule_id_);
    r.set_statement_of_reasons("Repeated gambling promotion after a warning.");
    return r;
  }
  void SetUp() override {
    CaseTest::SetUp();
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(Execute(**lease,
                        "INSERT INTO rule_set_rules (rule_set_id, version, rule_id, kind, "
                        "pattern, category, action, note) VALUES (1, 1, ?, 1, 'x', 2, 1, '')",
                        {rule_id_})
                    .ok());
  }
  const uint64_t rule_id_ = 77;
};

TEST_F(CaseDispositionsTest, GroupDispositionAppliedAtGroupsThenRecordedOnce) {
  Start();
  const uint64_t group = Group();
  auto done = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), Close(group, "d-1"));
  ASSERT_TRUE(done.ok()) << done.status();
  const v1::Disposition& d = done->disposition();
  EXPECT_EQ(d.state(), v1::DISPOSITION_STATE_ACTIVE);
  EXPECT_EQ(d.decided_by(), "mod-a");
  EXPECT_NE(d.filing_id(), 0u);
  ASSERT_EQ(enforcers_.group_calls.size(), 1u);
  EXPECT_EQ(enforcers_.group_calls[0].state(), groups::v1::GROUP_STATE_CLOSED);
  EXPECT_EQ(enforcers_.group_calls[0].disposition_id(), d.disposition_id());
  // A retry returns the first result and files nothing more.
  auto again = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), Close(group, "d-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->disposition().disposition_id(), d.disposition_id());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'filing'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'audit'"), 1);
  v1::DisposeGroupRequest changed = Close(group, "d-1");
  changed.set_statement_of_reasons("something else");
  EXPECT_EQ(
      ErrorReason(cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), changed).status()),
      "REQUEST_ID_REUSED");
  v1::ListFilingsRequest filings;
  filings.set_disposition_id(d.disposition_id());
  auto listed = cases_->filings().List(filings);
  ASSERT_EQ(listed->filings_size(), 1);
  EXPECT_EQ(listed->filings(0).kind(), v1::FILING_KIND_DISPOSITION);
  EXPECT_EQ(listed->filings(0).delivery_state(), v1::FILING_DELIVERY_STATE_PENDING);
  EXPECT_EQ(listed->filings(0).disposition().statement_of_reasons(),
            "Repeated gambling promotion after a warning.");
  // The owner's credit event, once.
  auto events = WaitForEvents(1);
  ASSERT_EQ(events.size(), 1u);
  const auto& event = events.begin()->second;
  EXPECT_EQ(event.account_id(), group + 1);
  EXPECT_EQ(event.event_type(), credit::v1::CREDIT_EVENT_TYPE_GROUP_CLOSED);
  EXPECT_EQ(events.begin()->first,
            absl::StrCat("moderation:disposition:", d.disposition_id(), ":", group + 1));
}

TEST_F(CaseDispositionsTest, AFailureAtTheEnforcingServiceRecordsNothing) {
  Start();
  const uint64_t group = Group();
  enforcers_.Fail(MakeError(absl::StatusCode::kUnavailable, "DEPENDENCY_UNAVAILABLE", "down"));
  auto down = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), Close(group, "d-2"));
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(cases_->dispositions().List(v1::ListDispositionsRequest())->dispositions_size(), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox"), 0);
  // Back up: the retry applies it under the same disposition id.
  enforcers_.Fail(absl::OkStatus());
  auto retried =
      cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), Close(group, "d-2"));
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  // Refused there (not retryable): nothing stays, not even the reservation.
  enforcers_.Fail(MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_DISSOLVED", "gone"));
  auto refused =
      cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), Close(Group(), "d-3"));
  EXPECT_EQ(ErrorReason(refused.status()), "GROUP_DISSOLVED");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM dispositions"), 1);
}

TEST_F(CaseDispositionsTest, BadInputIsRefusedBeforeAnythingHappens) {
  Start();
  const absl::Time now = clock_.Now();
  v1::DisposeGroupRequest r = Close(Group(), "d-4");
  r.clear_basis();
  EXPECT_EQ(ErrorReason(ValidateDisposeGroup(r, now)), "BASIS_REQUIRED");
  r = Close(Group(), "d-4");
  r.clear_statement_of_reasons();
  EXPECT_EQ(ErrorReason(ValidateDisposeGroup(r, now)), "STATEMENT_REQUIRED");
  r = Close(Group(), "d-4");
  r.set_kind(v1::DISPOSITION_KIND_SUSPEND_POSTING);
  EXPECT_EQ(ErrorReason(ValidateDisposeGroup(r, now)), "UNTIL_REQUIRED");
  *r.mutable_until() = ToProto(now - absl::Hours(1));
  EXPECT_EQ(ErrorReason(ValidateDisposeGroup(r, now)), "UNTIL_IN_PAST");
  r.set_kind(v1::DISPOSITION_KIND_CREDIT_DOWNGRADE);
  EXPECT_EQ(ErrorReason(ValidateDisposeGroup(r, now)), "DISPOSITION_KIND_NOT_FOR_GROUP");
  v1::DisposeAccountRequest a;
  a.set_request_id("d-5");
  a.set_account_id(Account());
  a.set_kind(v1::DISPOSITION_KIND_CREDIT_DOWNGRADE);
  a.mutable_basis()->add_report_ids(424242);
  a.set_statement_of_reasons("fraud");
  *a.mutable_until() = ToProto(now + absl::Hours(24));
  EXPECT_EQ(ErrorReason(ValidateDisposeAccount(a, now)), "LEVELS_REQUIRED");
  a.set_levels(1);
  ASSERT_TRUE(ValidateDisposeAccount(a, now).ok());
  EXPECT_EQ(
      ErrorReason(cases_->dispositions().DisposeAccount(Moderator("DisposeAccount"), a).status()),
      "REPORT_NOT_FOUND");
  a.set_account_id(next_id_ + 5000);
  EXPECT_EQ(
      ErrorReason(cases_->dispositions().DisposeAccount(Moderator("DisposeAccount"), a).status()),
      "ACCOUNT_NOT_FOUND");
  EXPECT_TRUE(enforcers_.penalty_calls.empty());
  EXPECT_EQ(Count("SELECT COUNT(*) FROM dispositions"), 0);
}

TEST_F(CaseDispositionsTest, AccountRestrictionsAreProjectedAndLiftedOnRevocation) {
  Start();
  const uint64_t account = Account();
  v1::DisposeAccountRequest a;
  a.set_request_id("d-6");
  a.set_account_id(account);
  a.set_kind(v1::DISPOSITION_KIND_REVOKE_CREATION);
  a.mutable_basis()->add_rule_ids(rule_id_);
  a.set_statement_of_reasons("Created groups for fraud.");
  const absl::Time until = clock_.Now() + absl::Hours(48);
  *a.mutable_until() = ToProto(until);
  auto done = cases_->dispositions().DisposeAccount(Moderator("DisposeAccount"), a);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(enforcers_.penalty_calls.size(), 1u);
  EXPECT_EQ(enforcers_.penalty_calls[0].kind(), credit::v1::PENALTY_KIND_REVOKE_CREATION);
  EXPECT_EQ(done->disposition().credit_penalty_id(), 7000 + done->disposition().disposition_id());
  auto field = redis_->Command(
      {"HGET", projection::AccountRestrictionsKey(account), "creation_revoked_until"});
  ASSERT_TRUE(field.ok());
  EXPECT_EQ(field->str(), absl::StrCat(absl::ToUnixSeconds(until)));

  v1::RevokeDispositionRequest revoke;
  revoke.set_request_id("r-1");
  revoke.set_disposition_id(done->disposition().disposition_id());
  revoke.set_reason("Appeal upheld.");
  auto revoked = cases_->dispositions().Revoke(
      As(common::v1::ROLE_COMPLIANCE, "compliance-a", "RevokeDisposition"), revoke);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->disposition().state(), v1::DISPOSITION_STATE_REVOKED);
  EXPECT_NE(revoked->disposition().revocation_filing_id(), 0u);
  ASSERT_EQ(enforcers_.lift_calls.size(), 1u);
  EXPECT_EQ(enforcers_.lift_calls[0].penalty_id(), done->disposition().credit_penalty_id());
  EXPECT_EQ(redis_->Command({"EXISTS", projection::AccountRestrictionsKey(account)})->integer(), 0);
  revoke.set_request_id("r-2");
  EXPECT_EQ(
      ErrorReason(cases_->dispositions()
                      .Revoke(As(common::v1::ROLE_COMPLIANCE, "c", "RevokeDisposition"), revoke)
                      .status()),
      "DISPOSITION_NOT_ACTIVE");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 2);
  // The account's credit event and its reversal.
  auto events = WaitForEvents(2);
  const std::string id =
      absl::StrCat("moderation:disposition:", done->disposition().disposition_id(), ":", account);
  ASSERT_EQ(events.count(id), 1u);
  EXPECT_EQ(events[id].event_type(), credit::v1::CREDIT_EVENT_TYPE_CREATION_REVOKED);
  ASSERT_EQ(events.count(id + ":reversal"), 1u);
  EXPECT_EQ(events[id + ":reversal"].reverses_event_id(), id);
  v1::ListDispositionsRequest revoked_list;
  revoked_list.set_state(v1::DISPOSITION_STATE_REVOKED);
  EXPECT_EQ(cases_->dispositions().List(revoked_list)->dispositions_size(), 1);
}

TEST_F(CaseDispositionsTest, BlacklistIsProjectedWithItsExpiryAndFiledOnce) {
  Start();
  const uint64_t account = Account();
  v1::AddToBlacklistRequest add;
  add.set_request_id("b-1");
  add.set_subject_kind(v1::SUBJECT_KIND_ACCOUNT);
  add.set_subject_id(account);
  add.set_reason("Organised fraud ring.");
  const absl::Time expires = clock_.Now() + absl::Hours(1);
  *add.mutable_expires_at() = ToProto(expires);
  auto added = cases_->blacklist().Add(Moderator("AddToBlacklist"), add);
  ASSERT_TRUE(added.ok()) << added.status();
  const std::string key = projection::AccountBlacklistKey(account);
  EXPECT_EQ(RedisGet(key), absl::StrCat(absl::ToUnixSeconds(expires)));
  auto ttl = redis_->Command({"TTL", key});
  EXPECT_GT(ttl->integer(), 3000);
  add.set_request_id("b-2");
  EXPECT_EQ(ErrorReason(cases_->blacklist().Add(Moderator("AddToBlacklist"), add).status()),
            "ALREADY_BLACKLISTED");
  // Redis is derived: a lost key comes back from MySQL.
  ASSERT_TRUE(redis_->Command({"DEL", key}).ok());
  ASSERT_TRUE(cases_->projection().Reconcile().ok());
  EXPECT_EQ(RedisGet(key), absl::StrCat(absl::ToUnixSeconds(expires)));

  v1::RemoveFromBlacklistRequest remove;
  remove.set_request_id("b-3");
  remove.set_blacklist_entry_id(added->entry().blacklist_entry_id());
  remove.set_reason("Identity confirmed stolen; not the owner's doing.");
  auto removed = cases_->blacklist().Remove(Moderator("RemoveFromBlacklist"), remove);
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(removed->entry().state(), v1::BLACKLIST_ENTRY_STATE_REMOVED);
  EXPECT_EQ(RedisGet(key), "(nil)");
  remove.set_request_id("b-4");
  EXPECT_EQ(
      ErrorReason(cases_->blacklist().Remove(Moderator("RemoveFromBlacklist"), remove).status()),
      "BLACKLIST_ENTRY_NOT_ACTIVE");
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 2);
  auto events = WaitForEvents(2);
  const std::string id =
      absl::StrCat("moderation:blacklist:", added->entry().blacklist_entry_id(), ":", account);
  EXPECT_EQ(events[id].event_type(), credit::v1::CREDIT_EVENT_TYPE_BLACKLISTED);
  EXPECT_EQ(events[id + ":reversal"].event_type(), credit::v1::CREDIT_EVENT_TYPE_REVERSAL);

  // An entry past its expiry is EXPIRED and does not block a new one.
  add.set_request_id("b-5");
  add.set_subject_kind(v1::SUBJECT_KIND_GROUP);
  add.set_subject_id(Group());
  *add.mutable_expires_at() = ToProto(clock_.Now() + absl::Minutes(5));
  ASSERT_TRUE(cases_->blacklist().Add(Moderator("AddToBlacklist"), add).ok());
  clock_.Advance(absl::Minutes(6));
  v1::ListBlacklistRequest expired;
  expired.set_state(v1::BLACKLIST_ENTRY_STATE_EXPIRED);
  EXPECT_EQ(cases_->blacklist().List(expired)->entries_size(), 1);
  add.set_request_id("b-6");
  add.clear_expires_at();
  EXPECT_TRUE(cases_->blacklist().Add(Moderator("AddToBlacklist"), add).ok());
  EXPECT_EQ(RedisGet(projection::GroupBlacklistKey(add.subject_id())), "0");
  *add.mutable_expires_at() = ToProto(clock_.Now() - absl::Minutes(1));
  EXPECT_EQ(ErrorReason(ValidateAddToBlacklist(add, clock_.Now())), "EXPIRY_IN_PAST");
  add.clear_expires_at();
  add.clear_reason();
  EXPECT_EQ(ErrorReason(ValidateAddToBlacklist(add, clock_.Now())), "REASON_REQUIRED");
  ASSERT_TRUE(redis_->Command({"DEL", projection::GroupBlacklistKey(add.subject_id())}).ok());
}

TEST_F(CaseDispositionsTest, LongStatementsStayWithinTheAuditLogsBounds) {
  Start();
  v1::DisposeGroupRequest r = Close(Group(), "d-long");
  std::string statement;
  for (int i = 0; i < 2000; ++i) statement += "违";  // 6,000 bytes
  r.set_statement_of_reasons(statement);
  ASSERT_TRUE(ValidateDisposeGroup(r, clock_.Now()).ok());
  auto done = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), r);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->disposition().statement_of_reasons(), statement);
  auto lease = pool_->Acquire(absl::Seconds(5));
  ASSERT_TRUE(lease.ok());
  audit::v1::AuditEvent event;
  ASSERT_TRUE(Query(**lease, "SELECT payload FROM outbox WHERE topic = 'audit'", {},
                    [&](const sql::ResultSet& row) {
                      EXPECT_TRUE(event.ParseFromString(row.getString(1)));
                      return absl::OkStatus();
                    })
                  .ok());
  const std::string& kept = event.details().at("statement_of_reasons");
  EXPECT_LE(kept.size(), 4096u);
  EXPECT_EQ(kept.size() % 3, 0u);  // whole characters only
  EXPECT_EQ(statement.substr(0, kept.size()), kept);
}

}  // namespace
}  // namespace qunzu::moderation
