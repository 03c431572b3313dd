// The load generator against a real gRPC server on a free port: it issues
// the calls it says it did, with the requests and metadata it was given,
// and counts failures as errors. No assertion on speed: that is what the
// benchmarks measure.
#include "tests/bench/rpc_load.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <memory>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "qunzu/testing/v1/testing.pb.h"
#include "tests/bench/recording_echo.h"

namespace qunzu::bench {
namespace {

namespace tv1 = testing::v1;

class RpcLoadTest : public RecordingEchoTest {
 protected:
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
  EXPECT_EQ(echo_.tokens(), std::set<std::string>{"Bearer t"});
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

TEST_F(RpcLoadTest, CallsAServerNeverAnswersEndAtTheirDeadlineAsErrors) {
  RpcTarget target = Target("ServiceEcho");
  target.deadline = absl::Milliseconds(200);
  const LoadResult rate = DriveAtRate("hung", target, 100, absl::Milliseconds(100));
  EXPECT_EQ(rate.calls, 10);
  EXPECT_EQ(rate.errors, 10);
  const LoadResult saturated = DriveSaturated("hung", target, 1, 2, absl::Milliseconds(50));
  EXPECT_EQ(saturated.calls, 2);
  EXPECT_EQ(saturated.errors, 2);
}

}  // namespace
}  // namespace qunzu::bench
