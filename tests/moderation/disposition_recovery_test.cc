// The recovery of dispositions whose process died between applying them and
// recording them (disposition_recovery.h), against real MariaDB and Redis:
// the crash is simulated by running the first two steps (Reserve, Apply)
// and not the third; the recovery then records it with exactly one filing,
// audit row and credit event, abandons what the enforcing service refuses
// for good, retries what failed transiently, and records once when a
// caller's retry (or another replica) races it. Revocations likewise. One
// test serves groups over gRPC to the real client: a late answer (deadline)
// is retried, a FAILED_PRECONDITION abandons.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "services/moderation/disposition_rows.h"
#include "tests/moderation/case_fixture.h"

namespace qunzu::moderation {
namespace {

class DispositionRecoveryTest : public CaseTest {
 protected:
  void SetUp() override {
    CaseTest::SetUp();
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(Execute(**lease,
                        "INSERT INTO rule_set_rules (rule_set_id, version, rule_id, kind, "
                        "pattern, category, action, note) VALUES (1, 1, 77, 1, 'x', 2, 1, '')")
                    .ok());
    recovery_.grace = absl::Minutes(1);
  }

  static v1::DisposeGroupRequest Suspend(uint64_t group, const std::string& request_id,
                                         absl::Time until) {
    v1::DisposeGroupRequest r;
    r.set_request_id(request_id);
    r.set_group_id(group);
    r.set_kind(v1::DISPOSITION_KIND_SUSPEND_POSTING);
    *r.mutable_until() = ToProto(until);
    r.mutable_basis()->add_rule_ids(77);
    r.set_statement_of_reasons("Gambling promotion.");
    return r;
  }

  // Steps 1 and 2 of DisposeGroup as the moderator, then the "crash": the
  // disposition is reserved (and applied when `apply`) but not recorded.
  uint64_t ReserveWithoutRecording(const v1::DisposeGroupRequest& r, bool apply) {
    v1::Disposition d;
    d.set_kind(r.kind());
    d.set_group_id(r.group_id());
    *d.mutable_until() = r.until();
    *d.mutable_basis() = r.basis();
    d.set_statement_of_reasons(r.statement_of_reasons());
    d.set_decided_by("mod-a");
    *d.mutable_decided_at() = ToProto(clock_.Now());
    d.set_state(v1::DISPOSITION_STATE_ACTIVE);
    auto reserved = cases_->dispositions().Reserve(Moderator("DisposeGroup"), r, r.request_id(), d);
    EXPECT_TRUE(reserved.ok()) << reserved.status();
    if (!reserved.ok()) return 0;
    d.set_disposition_id(reserved->disposition_id);
    if (apply) {
      EXPECT_TRUE(cases_->dispositions().Apply(d).ok());
    }
    return d.disposition_id();
  }

  RecoveryPass Pass() {
    auto pass = cases_->recovery().RunOnce();
    EXPECT_TRUE(pass.ok()) << pass.status();
    return pass.ok() ? *pass : RecoveryPass{-1, -1, -1, -1};
  }

  double Metric(const std::string& name, const std::string& outcome = "") {
    for (const auto& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        if (!outcome.empty() && (metric.label.empty() || metric.label[0].value != outcome)) {
          continue;
        }
        return family.type == prometheus::MetricType::Gauge ? metric.gauge.value
                                                            : metric.counter.value;
      }
    }
    return -1;
  }
  int64_t Audits(const std::string& action) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    int64_t n = 0;
    EXPECT_TRUE(Query(**lease, "SELECT payload FROM outbox WHERE topic = 'audit'", {},
                      [&](const sql::ResultSet& row) {
                        audit::v1::AuditEvent event;
                        EXPECT_TRUE(event.ParseFromString(row.getString(1)));
                        if (event.action() == action) ++n;
                        return absl::OkStatus();
                      })
                    .ok());
    return n;
  }
};

TEST_F(DispositionRecoveryTest, AppliedButUnrecordedIsRecordedOnceAfterTheGrace) {
  Start();
  const uint64_t group = Group();
  const v1::DisposeGroupRequest r = Suspend(group, "crash-1", clock_.Now() + absl::Hours(24));
  const uint64_t id = ReserveWithoutRecording(r, true);
  ASSERT_NE(id, 0u);
  ASSERT_EQ(enforcers_.GroupCalls(), 1u);
  EXPECT_EQ(cases_->dispositions().List(v1::ListDispositionsRequest())->dispositions_size(), 0);
  // Within the grace a call may still be in flight: left alone.
  clock_.Advance(absl::Seconds(30));
  RecoveryPass pass = Pass();
  EXPECT_EQ(pass.recovered, 0);
  EXPECT_EQ(enforcers_.GroupCalls(), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 0);

  clock_.Advance(absl::Minutes(1));
  pass = Pass();
  EXPECT_EQ(pass.recovered, 1);
  // Applied again under the same idempotency key, then recorded.
  ASSERT_EQ(enforcers_.GroupCalls(), 2u);
  EXPECT_EQ(enforcers_.group_calls[1].request_id(), absl::StrCat("disposition-", id));
  EXPECT_EQ(enforcers_.group_calls[1].SerializeAsString(),
            enforcers_.group_calls[0].SerializeAsString());
  v1::GetDispositionRequest get;
  get.set_disposition_id(id);
  auto got = cases_->dispositions().Get(get);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->disposition().state(), v1::DISPOSITION_STATE_ACTIVE);
  EXPECT_EQ(got->disposition().decided_by(), "mod-a");
  EXPECT_NE(got->disposition().filing_id(), 0u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  EXPECT_EQ(Audits("DISPOSITION_APPLIED"), 1);
  auto events = WaitForEvents(1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events.begin()->first, absl::StrCat("moderation:disposition:", id, ":", group + 1));
  EXPECT_EQ(events.begin()->second.event_type(),
            credit::v1::CREDIT_EVENT_TYPE_GROUP_POSTING_SUSPENDED);
  EXPECT_EQ(Metric("qunzu_moderation_disposition_recoveries_total", "recovered"), 1);
  EXPECT_EQ(Metric("qunzu_moderation_disposition_reservations_stale"), 0);

  // Nothing more on the next pass, and the caller's late retry gets the
  // recorded disposition without a second filing, audit row or call.
  EXPECT_EQ(Pass().recovered, 0);
  auto retried = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), r);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->disposition().disposition_id(), id);
  EXPECT_EQ(retried->disposition().filing_id(), got->disposition().filing_id());
  EXPECT_EQ(enforcers_.GroupCalls(), 2u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'filing'"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'credit'"), 1);
  EXPECT_EQ(Audits("DISPOSITION_APPLIED"), 1);
}

TEST_F(DispositionRecoveryTest, ADefinitiveRefusalAbandonsTheReservationForGood) {
  Start();
  const v1::DisposeGroupRequest r = Suspend(Group(), "crash-2", clock_.Now() + absl::Hours(24));
  const uint64_t id = ReserveWithoutRecording(r, false);
  ASSERT_NE(id, 0u);
  enforcers_.Fail(MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_DISSOLVED", "gone"));
  clock_.Advance(absl::Minutes(2));
  RecoveryPass pass = Pass();
  EXPECT_EQ(pass.abandoned, 1);
  EXPECT_EQ(pass.recovered, 0);
  EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM dispositions WHERE applied = 2 AND "
                               "abandon_reason LIKE 'GROUP_DISSOLVED%' AND disposition_id = ",
                               id)),
            1);
  EXPECT_EQ(Audits("DISPOSITION_ABANDONED"), 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'credit'"), 0);
  EXPECT_EQ(Metric("qunzu_moderation_disposition_recoveries_total", "abandoned"), 1);
  // Never retried, even once the service would accept it.
  enforcers_.Fail(absl::OkStatus());
  pass = Pass();
  EXPECT_EQ(pass.recovered + pass.abandoned + pass.retrying, 0);
  EXPECT_EQ(enforcers_.GroupCalls(), 0u);
  // Invisible, and the caller's retry learns why.
  v1::GetDispositionRequest get;
  get.set_disposition_id(id);
  EXPECT_EQ(ErrorReason(cases_->dispositions().Get(get).status()), "DISPOSITION_NOT_FOUND");
  auto retried = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), r);
  EXPECT_EQ(retried.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(retried.status()), "DISPOSITION_ABANDONED");
  EXPECT_EQ(enforcers_.GroupCalls(), 0u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 0);
}

TEST_F(DispositionRecoveryTest, ATransientFailureIsRetriedOnTheNextPass) {
  Start();
  const v1::DisposeGroupRequest r = Suspend(Group(), "crash-3", clock_.Now() + absl::Hours(24));
  const uint64_t id = ReserveWithoutRecording(r, true);
  ASSERT_NE(id, 0u);
  clock_.Advance(absl::Minutes(2));
  for (absl::StatusCode code :
       {absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded}) {
    enforcers_.Fail(absl::Status(code, "down"));
    RecoveryPass pass = Pass();
    EXPECT_EQ(pass.retrying, 1);
    EXPECT_EQ(pass.recovered + pass.abandoned, 0);
    EXPECT_EQ(Metric("qunzu_moderation_disposition_reservations_stale"), 1);
    EXPECT_EQ(Count(absl::StrCat(
                  "SELECT COUNT(*) FROM dispositions WHERE applied = 0 AND disposition_id = ", id)),
              1);
  }
  enforcers_.Fail(absl::OkStatus());
  EXPECT_EQ(Pass().recovered, 1);
  EXPECT_EQ(Metric("qunzu_moderation_disposition_reservations_stale"), 0);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  EXPECT_EQ(Audits("DISPOSITION_APPLIED"), 1);
}

TEST_F(DispositionRecoveryTest, ACallerRetryAndTwoReplicasRacingRecordOnce) {
  Start();
  const int kRounds = 4;
  for (int round = 0; round < kRounds; ++round) {
    const uint64_t group = Group();
    const v1::DisposeGroupRequest r =
        Suspend(group, absl::StrCat("race-", round), clock_.Now() + absl::Hours(24));
    const uint64_t id = ReserveWithoutRecording(r, true);
    ASSERT_NE(id, 0u);
    clock_.Advance(absl::Minutes(2));
    // A second replica's recovery over the same database.
    DispositionRecovery replica(*pool_, cases_->dispositions(), nullptr, clock_, recovery_);
    std::atomic<int> recovered{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&] {
        auto done = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), r);
        if (!done.ok() || done->disposition().disposition_id() != id) ++failures;
      });
      threads.emplace_back([&, i] {
        auto pass = i == 0 ? cases_->recovery().RunOnce() : replica.RunOnce();
        if (!pass.ok()) ++failures;
        if (pass.ok()) recovered += pass->recovered;
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_LE(recovered.load(), 1);
    EXPECT_EQ(Count(absl::StrCat("SELECT COUNT(*) FROM filings WHERE disposition_id = ", id)), 1);
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), kRounds);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'filing'"), kRounds);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM outbox WHERE topic = 'credit'"), kRounds);
  EXPECT_EQ(Audits("DISPOSITION_APPLIED"), kRounds);
}

TEST_F(DispositionRecoveryTest, TheServiceRunsItInTheBackground) {
  recovery_.interval = absl::Milliseconds(20);
  run_recovery_ = true;
  Start();
  const uint64_t id =
      ReserveWithoutRecording(Suspend(Group(), "crash-5", clock_.Now() + absl::Hours(24)), true);
  ASSERT_NE(id, 0u);
  clock_.Advance(absl::Minutes(2));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (Count("SELECT COUNT(*) FROM filings") < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  cases_.reset();  // stops it
  EXPECT_EQ(Audits("DISPOSITION_APPLIED"), 1);
}

TEST_F(DispositionRecoveryTest, ALiftedButUnrecordedRevocationIsRecordedOnce) {
  Start();
  const uint64_t account = Account();
  v1::DisposeAccountRequest a;
  a.set_request_id("d-rev");
  a.set_account_id(account);
  a.set_kind(v1::DISPOSITION_KIND_REVOKE_CREATION);
  a.mutable_basis()->add_rule_ids(77);
  a.set_statement_of_reasons("Created groups for fraud.");
  *a.mutable_until() = ToProto(clock_.Now() + absl::Hours(48));
  auto done = cases_->dispositions().DisposeAccount(Moderator("DisposeAccount"), a);
  ASSERT_TRUE(done.ok()) << done.status();
  const uint64_t id = done->disposition().disposition_id();
  // The revoking call reserves and lifts, then "crashes".
  v1::RevokeDispositionRequest revoke;
  revoke.set_request_id("r-1");
  revoke.set_disposition_id(id);
  revoke.set_reason("Appeal upheld.");
  const RequestContext compliance =
      As(common::v1::ROLE_COMPLIANCE, "compliance-a", "RevokeDisposition");
  const std::string key = RequestKey{"compliance-a", compliance.method, revoke.request_id()}.Join();
  auto reserved = cases_->dispositions().ReserveRevocation(key, id, revoke.reason(), clock_.Now());
  ASSERT_TRUE(reserved.ok()) << reserved.status();
  ASSERT_TRUE(cases_->dispositions().Lift(*reserved, revoke.reason()).ok());
  // Another request cannot revoke it meanwhile.
  v1::RevokeDispositionRequest other = revoke;
  other.set_request_id("r-2");
  EXPECT_EQ(ErrorReason(cases_->dispositions().Revoke(compliance, other).status()),
            "REVOCATION_IN_PROGRESS");
  EXPECT_EQ(Pass().recovered, 0);  // within the grace
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(Pass().recovered, 1);
  v1::GetDispositionRequest get;
  get.set_disposition_id(id);
  auto got = cases_->dispositions().Get(get);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->disposition().state(), v1::DISPOSITION_STATE_REVOKED);
  EXPECT_EQ(got->disposition().revoked_by(), "compliance-a");
  EXPECT_EQ(got->disposition().revocation_reason(), "Appeal upheld.");
  EXPECT_NE(got->disposition().revocation_filing_id(), 0u);
  EXPECT_EQ(redis_->Command({"EXISTS", projection::AccountRestrictionsKey(account)})->integer(), 0);
  ASSERT_EQ(enforcers_.lift_calls.size(), 2u);
  EXPECT_EQ(enforcers_.lift_calls[1].SerializeAsString(),
            enforcers_.lift_calls[0].SerializeAsString());
  // The caller's retry replays it; another request finds it revoked.
  auto retried = cases_->dispositions().Revoke(compliance, revoke);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->disposition().revocation_filing_id(),
            got->disposition().revocation_filing_id());
  EXPECT_EQ(ErrorReason(cases_->dispositions().Revoke(compliance, other).status()),
            "DISPOSITION_NOT_ACTIVE");
  EXPECT_EQ(enforcers_.lift_calls.size(), 2u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 2);
  EXPECT_EQ(Audits("DISPOSITION_REVOKED"), 1);
  auto events = WaitForEvents(2);
  const std::string event = absl::StrCat("moderation:disposition:", id, ":", account);
  EXPECT_EQ(events.count(event + ":reversal"), 1u);
  EXPECT_EQ(Pass().recovered, 0);
}

TEST_F(DispositionRecoveryTest, ARefusedLiftAbandonsTheRevocationAndTheDispositionStays) {
  Start();
  v1::DisposeGroupRequest r = Suspend(Group(), "d-close", clock_.Now() + absl::Hours(24));
  r.set_kind(v1::DISPOSITION_KIND_CLOSE);
  r.clear_until();
  auto done = cases_->dispositions().DisposeGroup(Moderator("DisposeGroup"), r);
  ASSERT_TRUE(done.ok()) << done.status();
  const uint64_t id = done->disposition().disposition_id();
  const RequestContext compliance =
      As(common::v1::ROLE_COMPLIANCE, "compliance-a", "RevokeDisposition");
  const std::string key = RequestKey{"compliance-a", compliance.method, "r-3"}.Join();
  ASSERT_TRUE(cases_->dispositions().ReserveRevocation(key, id, "mistake", clock_.Now()).ok());
  enforcers_.Fail(MakeError(absl::StatusCode::kFailedPrecondition, "GROUP_DISSOLVED", "gone"));
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(Pass().abandoned, 1);
  EXPECT_EQ(Audits("REVOCATION_ABANDONED"), 1);
  v1::GetDispositionRequest get;
  get.set_disposition_id(id);
  EXPECT_EQ(cases_->dispositions().Get(get)->disposition().state(), v1::DISPOSITION_STATE_ACTIVE);
  enforcers_.Fail(absl::OkStatus());
  RecoveryPass pass = Pass();
  EXPECT_EQ(pass.recovered + pass.abandoned + pass.retrying, 0);
  // Nothing pending any more: a new request may revoke it.
  v1::RevokeDispositionRequest revoke;
  revoke.set_request_id("r-4");
  revoke.set_disposition_id(id);
  revoke.set_reason("Appeal upheld.");
  auto revoked = cases_->dispositions().Revoke(compliance, revoke);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->disposition().state(), v1::DISPOSITION_STATE_REVOKED);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 2);
}

// Groups over gRPC, as the recovery meets it: idempotent by request_id,
// answering late (past the caller's deadline, the change made) until
// released, or refusing for good.
class SlowGroups final : public groups::v1::GroupService::Service {
 public:
  grpc::Status SetGroupState(grpc::ServerContext*, const groups::v1::SetGroupStateRequest* request,
                             groups::v1::SetGroupStateResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (gone_) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "group dissolved");
    applied_.insert(request->request_id());
    auto released = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return released_; };
    mu_.AwaitWithTimeout(absl::Condition(&released), absl::Seconds(5));
    response->mutable_group()->set_group_id(request->group_id());
    response->mutable_group()->set_owner_account_id(request->group_id() + 1);
    return grpc::Status::OK;
  }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  void Dissolve() {
    absl::MutexLock lock(&mu_);
    gone_ = true;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  size_t applied() {
    absl::MutexLock lock(&mu_);
    return applied_.size();
  }

 private:
  absl::Mutex mu_;
  bool released_ = false;
  bool gone_ = false;
  int calls_ = 0;
  std::set<std::string> applied_;
};

TEST_F(DispositionRecoveryTest, OverGrpcADeadlineIsRetriedAndARefusalAbandons) {
  SlowGroups groups;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&groups);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  groups_client_ = std::make_unique<GrpcGroupsClient>(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()),
      "token", absl::Milliseconds(200));
  Start();
  const uint64_t id =
      ReserveWithoutRecording(Suspend(Group(), "grpc-1", clock_.Now() + absl::Hours(24)), false);
  ASSERT_NE(id, 0u);
  clock_.Advance(absl::Minutes(2));
  // Applied there, but the answer missed the deadline: tried again later.
  RecoveryPass pass = Pass();
  EXPECT_EQ(pass.retrying, 1);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 0);
  groups.Release();
  EXPECT_EQ(Pass().recovered, 1);
  EXPECT_EQ(groups.calls(), 2);
  EXPECT_EQ(groups.applied(), 1u);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 1);
  EXPECT_EQ(Audits("DISPOSITION_APPLIED"), 1);

  groups.Dissolve();
  ASSERT_NE(
      ReserveWithoutRecording(Suspend(Group(), "grpc-2", clock_.Now() + absl::Hours(24)), false),
      0u);
  clock_.Advance(absl::Minutes(2));
  EXPECT_EQ(Pass().abandoned, 1);
  EXPECT_EQ(Audits("DISPOSITION_ABANDONED"), 1);
  cases_.reset();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

TEST_F(DispositionRecoveryTest, AGraceWithinTheDependencyDeadlineIsRefusedAtStart) {
  ServiceDeps deps{*pool_, redis_.get(), registry_, nullptr, ""};
  CaseFlags flags;
  flags.call_deadline = absl::Seconds(5);
  flags.recovery.grace = absl::Seconds(5);
  EXPECT_EQ(MakeCases(deps, flags).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace qunzu::moderation
