// qunzu-bench --target=...: the flags, the method looked up in Qunzu's
// protos, the text-proto request and --vary, driven against a real server.
#include "tests/bench/load_cli.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
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
  void TearDown() override {
    for (const std::string& path : files_) std::remove(path.c_str());
    RecordingEchoTest::TearDown();
  }
  std::string Target() const { return "--target=127.0.0.1:" + std::to_string(port_); }
  // A file holding `text`, removed after the test.
  std::string File(const std::string& text) {
    std::string path = ::testing::TempDir() + "load_cli_lines_XXXXXX";
    const int fd = mkstemp(path.data());
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    files_.push_back(path);
    return path;
  }

 private:
  std::vector<std::string> files_;
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

TEST_F(LoadCliTest, CyclesAnIntegerFieldAndTakesAStringFieldFromTheLinesOfAFile) {
  // Empty lines are skipped; --vary appends the call number after the line.
  const std::string lines = File("一\n\n二\n三\n");
  absl::StatusOr<LoadResult> result = RunLoadCli(
      {Target(), "--method=/qunzu.testing.v1.TestService/PlatformEcho", "--cycle=fail_code:5:3",
       "--lines=text:" + lines, "--vary=text", "--rate=1000", "--duration=100ms"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->errors, 0);
  EXPECT_EQ(echo_.codes(), (std::set<int32_t>{5, 6, 7}));
  const std::set<std::string> texts = echo_.texts();
  EXPECT_EQ(texts.size(), 400U);
  EXPECT_EQ(texts.count("一-0"), 1U);
  EXPECT_EQ(texts.count("二-1"), 1U);
  EXPECT_EQ(texts.count("三-2"), 1U);
  EXPECT_EQ(texts.count("一-399"), 1U);
  EXPECT_EQ(texts.count("二-0"), 0U);
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
      {{Target(), echo, "--cycle=text:1:2"}, "cycle"},
      {{Target(), echo, "--cycle=fail_code:1"}, "cycle"},
      {{Target(), echo, "--cycle=fail_code:1:0"}, "cycle"},
      {{Target(), echo, "--cycle=fail_code:-1:2"}, "cycle"},
      {{Target(), echo, "--cycle=fail_code:2147483647:2"}, "cycle"},
      {{Target(), echo, "--lines=fail_code:" + File("1\n")}, "lines"},
      {{Target(), echo, "--lines=text:/nonexistent/lines"}, "lines"},
      {{Target(), echo, "--lines=text:"}, "lines"},
      {{Target(), echo, "--lines=text:" + File("\n\n")}, "lines"},
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
