// The load generator against a real gRPC server on a free port: it issues
// the calls it says it did, with the requests and metadata it was given,
// and counts failures as errors. No assertion on speed: that is what the
// benchmarks measure.
#include "tests/bench/rpc_load.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <memory>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "qunzu/testing/v1/testing.grpc.pb.h"

namespace qunzu::bench {
namespace {

namespace tv1 = testing::v1;

// Echoes, remembering every request text and the token it came with;
// StaffEcho always fails.
class RecordingEcho final : public tv1::TestService::Service {
 public:
  grpc::Status PlatformEcho(grpc::ServerContext* context, const tv1::EchoRequest* request,
                            tv1::EchoResponse* response) override {
    const auto token = context->client_metadata().find("authorization");
    absl::MutexLock lock(&mu_);
    texts_.insert(request->text());
    if (token == context->client_metadata().end() || token->second != "Bearer t") ++untokened_;
    response->set_text(request->text());
    return grpc::Status::OK;
  }
  grpc::Status StaffEcho(grpc::ServerContext*, const tv1::EchoRequest*,
                         tv1::EchoResponse*) override {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "no");
  }
  std::set<std::string> texts() {
    absl::MutexLock lock(&mu_);
    return texts_;
  }
  int untokened() {
    absl::MutexLock lock(&mu_);
    return untokened_;
  }

 private:
  absl::Mutex mu_;
  std::set<std::string> texts_ ABSL_GUARDED_BY(mu_);
  int untokened_ ABSL_GUARDED_BY(mu_) = 0;
};

class RpcLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&echo_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  RpcTarget Target(const std::string& method) {
    RpcTarget target;
    target.channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                                         grpc::InsecureChannelCredentials());
    target.method = "/qunzu.testing.v1.TestService/" + method;
    target.metadata = {{"authorization", "Bearer t"}};
    target.request = [](uint64_t n) {
      tv1::EchoRequest request;
      request.set_text(std::to_string(n));
      return request.SerializeAsString();
    };
    return target;
  }

  RecordingEcho echo_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(RpcLoadTest, AtARateEveryScheduledCallIsMadeOnceWithItsOwnRequest) {
  const LoadResult result =
      DriveAtRate("echo", Target("PlatformEcho"), 2000, absl::Milliseconds(250));
  EXPECT_EQ(result.calls, 500);
  EXPECT_EQ(result.errors, 0);
  EXPECT_GT(result.qps, 0);
  EXPECT_LE(result.p50_us, result.p99_us);
  EXPECT_LE(result.p99_us, result.p999_us);
  // The 300 warm-up calls and the 500 measured ones reached the server,
  // each with its own request (numbers 0..799) and the metadata.
  const std::set<std::string> texts = echo_.texts();
  EXPECT_EQ(texts.size(), 800U);
  EXPECT_EQ(texts.count("0"), 1U);
  EXPECT_EQ(texts.count("799"), 1U);
  EXPECT_EQ(echo_.untokened(), 0);
}

TEST_F(RpcLoadTest, SaturatedKeepsCallsInFlightAndCountsThem) {
  const LoadResult result =
      DriveSaturated("echo", Target("PlatformEcho"), 2, 4, absl::Milliseconds(200));
  EXPECT_GT(result.calls, 0);
  EXPECT_EQ(result.errors, 0);
  // The warm-up and every measured call reached the server, each with its
  // own request number.
  EXPECT_EQ(echo_.texts().size(), 300U + static_cast<size_t>(result.calls));
  EXPECT_GT(result.client_cpu_ms_per_kcall, 0);
  EXPECT_GE(result.process_cpu_ms_per_kcall, result.client_cpu_ms_per_kcall);
}

TEST_F(RpcLoadTest, FailedCallsAreErrors) {
  const LoadResult rate = DriveAtRate("staff", Target("StaffEcho"), 1000, absl::Milliseconds(100));
  EXPECT_EQ(rate.calls, 100);
  EXPECT_EQ(rate.errors, 100);
  const LoadResult saturated =
      DriveSaturated("staff", Target("StaffEcho"), 1, 2, absl::Milliseconds(50));
  EXPECT_GT(saturated.calls, 0);
  EXPECT_EQ(saturated.errors, saturated.calls);
}

}  // namespace
}  // namespace qunzu::bench
