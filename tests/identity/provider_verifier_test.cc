// The provider adapter against a provider the test starts: answers, retries
// only on UNAVAILABLE, deadline on a slow provider, a provider that is down.
#include "services/identity/provider_verifier.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <deque>

#include "absl/synchronization/notification.h"
#include "common/status.h"

namespace qunzu::identity {
namespace {

class FakeProvider final : public v1::VerificationProvider::Service {
 public:
  grpc::Status VerifyIdentity(grpc::ServerContext* /*context*/,
                              const v1::VerifyIdentityRequest* request,
                              v1::VerifyIdentityResponse* response) override {
    ++calls;
    last_request_id = request->request_id();
    if (slow) release.WaitForNotificationWithTimeout(absl::Seconds(10));
    grpc::Status status = grpc::Status::OK;
    if (!script.empty()) {
      status = script.front();
      script.pop_front();
    }
    if (!status.ok()) return status;
    const bool match =
        request->has_resident_identity() && request->resident_identity().legal_name() == "王小明";
    response->set_match(match);
    if (!match) response->set_rejection_reason(v1::REJECTION_REASON_NAME_ID_MISMATCH);
    response->set_provider_reference("ref-42");
    return grpc::Status::OK;
  }

  std::atomic<int> calls{0};
  std::string last_request_id;
  // Statuses returned by the next calls, in order (set before calls start).
  std::deque<grpc::Status> script;
  bool slow = false;
  absl::Notification release;
};

class IdentityProviderVerifierTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&provider_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    target_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (!provider_.release.HasBeenNotified()) provider_.release.Notify();
    server_->Shutdown();
  }

  ProviderVerifier Make(const std::string& target, absl::Duration deadline = absl::Seconds(2)) {
    ProviderOptions options;
    options.name = "fake-provider";
    options.deadline = deadline;
    options.max_attempts = 3;
    options.backoff = absl::Milliseconds(1);
    return ProviderVerifier(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()),
                            options);
  }

  static Evidence Resident(const std::string& name) {
    Evidence e;
    e.method = v1::VERIFICATION_METHOD_RESIDENT_ID;
    e.legal_name = name;
    e.resident_id_number = "11010519491231002X";
    return e;
  }

  FakeProvider provider_;
  std::unique_ptr<grpc::Server> server_;
  std::string target_;
};

TEST_F(IdentityProviderVerifierTest, ReturnsTheProvidersDecision) {
  ProviderVerifier verifier = Make(target_);
  EXPECT_EQ(verifier.name(), "fake-provider");
  auto match = verifier.Verify(Resident("王小明"), "attempt-1");
  ASSERT_TRUE(match.ok()) << match.status();
  EXPECT_TRUE(match->match);
  EXPECT_EQ(match->provider_reference, "ref-42");
  EXPECT_EQ(provider_.last_request_id, "attempt-1");
  auto mismatch = verifier.Verify(Resident("李四"), "attempt-2");
  ASSERT_TRUE(mismatch.ok());
  EXPECT_FALSE(mismatch->match);
  EXPECT_EQ(mismatch->rejection_reason, v1::REJECTION_REASON_NAME_ID_MISMATCH);
}

TEST_F(IdentityProviderVerifierTest, RetriesOnlyUnavailable) {
  provider_.script = {grpc::Status(grpc::StatusCode::UNAVAILABLE, "busy"),
                      grpc::Status(grpc::StatusCode::UNAVAILABLE, "busy")};
  auto decision = Make(target_).Verify(Resident("王小明"), "a");
  ASSERT_TRUE(decision.ok()) << decision.status();
  EXPECT_TRUE(decision->match);
  EXPECT_EQ(provider_.calls, 3);
}

TEST_F(IdentityProviderVerifierTest, FailsClosedAfterTheLastAttempt) {
  for (int i = 0; i < 5; ++i) {
    provider_.script.push_back(grpc::Status(grpc::StatusCode::UNAVAILABLE, "busy"));
  }
  auto decision = Make(target_).Verify(Resident("王小明"), "a");
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(decision.status()), "VERIFIER_UNAVAILABLE");
  EXPECT_EQ(provider_.calls, 3);
}

TEST_F(IdentityProviderVerifierTest, OtherErrorsAreNotRetried) {
  provider_.script = {grpc::Status(grpc::StatusCode::INTERNAL, "bug")};
  auto decision = Make(target_).Verify(Resident("王小明"), "a");
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(provider_.calls, 1);
}

TEST_F(IdentityProviderVerifierTest, SlowProviderHitsTheDeadlineAndFailsClosed) {
  provider_.slow = true;
  const absl::Time start = absl::Now();
  auto decision = Make(target_, absl::Milliseconds(200)).Verify(Resident("王小明"), "a");
  EXPECT_EQ(ErrorReason(decision.status()), "VERIFIER_UNAVAILABLE");
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  provider_.release.Notify();
}

TEST_F(IdentityProviderVerifierTest, ProviderThatIsDownFailsClosed) {
  // A port nothing listens on.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin_port);
  close(fd);
  auto decision = Make("127.0.0.1:" + std::to_string(port), absl::Milliseconds(500))
                      .Verify(Resident("王小明"), "a");
  EXPECT_EQ(decision.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(decision.status()), "VERIFIER_UNAVAILABLE");
}

}  // namespace
}  // namespace qunzu::identity
