// identity's credit events reach a fake credit service the test starts:
// queued in the verification's transaction, delivered by the relay with the
// service token, redelivered after credit was down.
#include "services/identity/credit_events.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/outbox.h"
#include "tests/identity/identity_fixture.h"

namespace qunzu::identity {
namespace {

class FakeCredit final : public credit::v1::CreditService::Service {
 public:
  grpc::Status RecordEvent(grpc::ServerContext* context,
                           const credit::v1::RecordEventRequest* request,
                           credit::v1::RecordEventResponse* /*response*/) override {
    absl::MutexLock lock(&mu);
    auto auth = context->client_metadata().find("authorization");
    authorization = auth == context->client_metadata().end()
                        ? ""
                        : std::string(auth->second.data(), auth->second.size());
    if (down) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "credit is down");
    events.push_back(*request);
    return grpc::Status::OK;
  }

  absl::Mutex mu;
  bool down ABSL_GUARDED_BY(mu) = false;
  std::string authorization ABSL_GUARDED_BY(mu);
  std::vector<credit::v1::RecordEventRequest> events ABSL_GUARDED_BY(mu);
};

class IdentityCreditEventsTest : public IdentityFixture {
 protected:
  void SetUp() override {
    IdentityFixture::SetUp();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&credit_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    receiver_ = std::make_unique<CreditEventReceiver>(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                            grpc::InsecureChannelCredentials()),
        "identity-token", absl::Seconds(5));
    OutboxRelayOptions options;
    options.topic = kCreditTopic;
    relay_ = OutboxRelay::Create(*pool_, *receiver_, registry_, options).value();
  }
  void TearDown() override {
    relay_.reset();
    server_->Shutdown();
    IdentityFixture::TearDown();
  }

  FakeCredit credit_;
  std::unique_ptr<grpc::Server> server_;
  prometheus::Registry registry_;
  std::unique_ptr<CreditEventReceiver> receiver_;
  std::unique_ptr<OutboxRelay> relay_;
};

TEST_F(IdentityCreditEventsTest, VerificationDeliversIdentityVerifiedWithTheServiceToken) {
  const uint64_t account = NewAccount();
  ASSERT_TRUE(SubmitId(account).ok());
  auto pass = relay_->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->delivered, 1);
  absl::MutexLock lock(&credit_.mu);
  ASSERT_EQ(credit_.events.size(), 1u);
  EXPECT_EQ(credit_.authorization, "Bearer identity-token");
  EXPECT_EQ(credit_.events[0].account_id(), account);
  EXPECT_EQ(credit_.events[0].event_type(), credit::v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED);
  EXPECT_EQ(credit_.events[0].request_id(), absl::StrCat("identity:verified:", account));
}

TEST_F(IdentityCreditEventsTest, EventWaitsWhileCreditIsDownAndArrivesAfter) {
  {
    absl::MutexLock lock(&credit_.mu);
    credit_.down = true;
  }
  ASSERT_TRUE(SubmitId(NewAccount()).ok());
  EXPECT_FALSE(relay_->RunOnce().ok());
  EXPECT_EQ(CountRows("SELECT COUNT(*) FROM outbox WHERE topic = 'credit' AND "
                      "delivered_at IS NULL"),
            1);
  {
    absl::MutexLock lock(&credit_.mu);
    credit_.down = false;
  }
  auto pass = relay_->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->delivered, 1);
  absl::MutexLock lock(&credit_.mu);
  EXPECT_EQ(credit_.events.size(), 1u);
}

TEST_F(IdentityCreditEventsTest, RejectedVerificationSendsNothing) {
  verifier_.match = false;
  ASSERT_TRUE(SubmitId(NewAccount()).ok());
  auto pass = relay_->RunOnce();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->delivered, 0);
}

}  // namespace
}  // namespace qunzu::identity
