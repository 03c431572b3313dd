// qunzu-bench --target=...: the flags, the method looked up in Qunzu's
// protos, the text-proto request and --vary, driven against a real server.
#include "tests/bench/load_cli.h"

#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "gtest/gtest.h"
#include "tests/bench/recording_echo.h"

namespace qunzu::bench {
namespace {

class LoadCliTest : public RecordingEchoTest {
 protected:
  std::string Target() const { return "--target=127.0.0.1:" + std::to_string(port_); }
};

TEST_F(LoadCliTest, DrivesTheMethodWithTheRequestVariedPerCall) {
  ASSERT_TRUE(WantsLoadCli({Target()}));
  absl::StatusOr<LoadResult> result = RunLoadCli(
      {Target(), "--method=/qunzu.testing.v1.TestService/PlatformEcho", "--request=text: \"hi\"",
       "--vary=text", "--token=t0k", "--rate=1000", "--duration=100ms"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->calls, 100);
  EXPECT_EQ(result->errors, 0);
  const std::set<std::string> texts = echo_.texts();
  EXPECT_EQ(texts.size(), 400U);  // 300 warm-up calls and 100 measured ones
  EXPECT_EQ(texts.count("hi-0"), 1U);
  EXPECT_EQ(texts.count("hi-399"), 1U);
  EXPECT_EQ(echo_.tokens(), std::set<std::string>{"Bearer t0k"});
}

TEST_F(LoadCliTest, WithoutVaryEveryCallSendsTheSameRequest) {
  absl::StatusOr<LoadResult> result =
      RunLoadCli({Target(), "--method=/qunzu.testing.v1.TestService/PlatformEcho",
                  "--request=text: \"same\"", "--in-flight=2", "--duration=50ms"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_GT(result->calls, 0);
  EXPECT_EQ(echo_.texts(), std::set<std::string>{"same"});
}

TEST_F(LoadCliTest, BadFlagsAreRefusedWithTheField) {
  const std::string echo = "--method=/qunzu.testing.v1.TestService/PlatformEcho";
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--method=/x.Y/Z"}, "target"},
      {{Target()}, "method"},
      {{Target(), "--method=/qunzu.moderation.v1.ModerationService/NoSuchMethod"}, "method"},
      {{Target(), "--method=qunzu.testing.v1.TestService.PlatformEcho"}, "method"},
      {{Target(), echo, "--request=no_such_field: 1"}, "request"},
      {{Target(), echo, "--vary=fail_code"}, "vary"},
      {{Target(), echo, "--rate=-5"}, "rate"},
      {{Target(), echo, "--in-flight=0"}, "in-flight"},
      {{Target(), echo, "--duration=soon"}, "duration"},
      {{Target(), echo, "--colour=blue"}, "arguments"},
      {{Target(), echo, "positional"}, "arguments"},
  };
  for (const auto& [args, field] : cases) {
    absl::StatusOr<LoadResult> result = RunLoadCli(args);
    ASSERT_FALSE(result.ok()) << field;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_EQ(ErrorMetadata(result.status(), "field"), field) << result.status();
  }
  EXPECT_TRUE(echo_.texts().empty()) << "nothing is sent when the flags are wrong";
}

TEST_F(LoadCliTest, FindsTheServicesOfEveryQunzuProto) {
  // A method of a service the test's server does not serve: the flags are
  // accepted and every call fails (UNIMPLEMENTED) as an error, not a crash.
  absl::StatusOr<LoadResult> result =
      RunLoadCli({Target(), "--method=/qunzu.audit.v1.AuditService/GetCheckpoint",
                  "--request=", "--rate=200", "--duration=50ms"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->calls, 10);
  EXPECT_EQ(result->errors, 10);
}

}  // namespace
}  // namespace qunzu::bench
