// Filings reach the authority (R11.5) through the outbox relay, against a
// FilingReceiver this test serves over gRPC: down for a while, then back,
// and once losing its acknowledgement. Nothing is lost and the authority
// holds each filing once; ListFilings shows the delivery state.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "tests/moderation/case_fixture.h"

namespace qunzu::moderation {
namespace {

class Authority final : public v1::FilingReceiver::Service {
 public:
  grpc::Status ReceiveFiling(grpc::ServerContext*, const v1::ReceiveFilingRequest* request,
                             v1::ReceiveFilingResponse* response) override {
    absl::MutexLock lock(&mu_);
    ++calls_;
    if (down_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "authority down");
    const uint64_t id = request->filing().filing_id();
    // Idempotent by filing_id: one record per filing.
    filings_.emplace(id, request->filing());
    if (lose_ack_of_ == id) {
      lose_ack_of_ = 0;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "acknowledgement lost");
    }
    response->set_receipt_id(absl::StrCat("receipt-", id));
    return grpc::Status::OK;
  }
  void SetDown(bool down) {
    absl::MutexLock lock(&mu_);
    down_ = down;
  }
  void LoseAckOf(uint64_t id) {
    absl::MutexLock lock(&mu_);
    lose_ack_of_ = id;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  std::map<uint64_t, v1::Filing> filings() {
    absl::MutexLock lock(&mu_);
    return filings_;
  }

 private:
  absl::Mutex mu_;
  bool down_ = true;
  uint64_t lose_ack_of_ = 0;
  int calls_ = 0;
  std::map<uint64_t, v1::Filing> filings_;
};

class CaseFilingsTest : public CaseTest {
 protected:
  void StartAuthority() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&authority_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto channel =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    Start(
        std::make_unique<FilingDelivery>(*pool_, channel, "example-chat", absl::Seconds(2), clock_),
        absl::Milliseconds(100));
  }
  void TearDown() override {
    cases_.reset();
    if (server_) server_->Shutdown();
    CaseTest::TearDown();
  }
  void Blacklist(const std::string& request_id) {
    v1::AddToBlacklistRequest add;
    add.set_request_id(request_id);
    add.set_subject_kind(v1::SUBJECT_KIND_ACCOUNT);
    add.set_subject_id(Account());
    add.set_reason("fraud ring");
    auto added = cases_->blacklist().Add(Moderator("AddToBlacklist"), add);
    ASSERT_TRUE(added.ok()) << added.status();
    accounts_.insert(add.subject_id());
  }
  // Waits (bounded) until `count` filings are in `state`.
  bool WaitFor(v1::FilingDeliveryState state, int count) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (absl::Now() < deadline) {
      v1::ListFilingsRequest request;
      request.set_delivery_state(state);
      auto listed = cases_->filings().List(request);
      if (listed.ok() && listed->filings_size() == count) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  Authority authority_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::set<uint64_t> accounts_;
};

TEST_F(CaseFilingsTest, AnAuthorityDownForAWhileGetsEveryFilingOnce) {
  StartAuthority();
  Blacklist("f-1");
  Blacklist("f-2");
  // Down: the first filing is retried and shows RETRYING with its error.
  ASSERT_TRUE(WaitFor(v1::FILING_DELIVERY_STATE_RETRYING, 1));
  v1::ListFilingsRequest retrying;
  retrying.set_delivery_state(v1::FILING_DELIVERY_STATE_RETRYING);
  auto listed = cases_->filings().List(retrying);
  EXPECT_GE(listed->filings(0).attempts(), 1u);
  EXPECT_NE(listed->filings(0).last_error().find("authority down"), std::string::npos);
  Blacklist("f-3");
  auto all = cases_->filings().List(v1::ListFilingsRequest());
  ASSERT_EQ(all->filings_size(), 3);
  // Back, but the acknowledgement of the newest filing is lost once.
  authority_.LoseAckOf(all->filings(0).filing_id());
  authority_.SetDown(false);
  ASSERT_TRUE(WaitFor(v1::FILING_DELIVERY_STATE_DELIVERED, 3));
  const std::map<uint64_t, v1::Filing> received = authority_.filings();
  ASSERT_EQ(received.size(), 3u);
  auto delivered = cases_->filings().List(v1::ListFilingsRequest());
  ASSERT_TRUE(delivered.ok());
  for (const v1::Filing& filing : delivered->filings()) {
    ASSERT_EQ(received.count(filing.filing_id()), 1u);
    const v1::Filing& got = received.at(filing.filing_id());
    EXPECT_EQ(got.kind(), v1::FILING_KIND_BLACKLIST_ADDED);
    EXPECT_EQ(accounts_.count(got.blacklist_entry().subject_id()), 1u);
    // What the authority gets carries none of our delivery bookkeeping.
    EXPECT_EQ(got.attempts(), 0u);
    EXPECT_EQ(filing.receipt_id(), absl::StrCat("receipt-", filing.filing_id()));
    EXPECT_TRUE(filing.has_delivered_at());
  }
  // Nothing more goes out once all are acknowledged.
  const int calls = authority_.calls();
  ASSERT_TRUE(cases_->filing_relay()->RunOnce().ok());
  EXPECT_EQ(authority_.calls(), calls);
  EXPECT_EQ(Count("SELECT COUNT(*) FROM filings"), 3);
}

}  // namespace
}  // namespace qunzu::moderation
