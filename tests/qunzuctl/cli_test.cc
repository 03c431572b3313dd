#include "services/qunzuctl/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

#include "common/status.h"
#include "services/qunzuctl/exit_codes.h"

namespace qunzu::ctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

EnvLookup Env(const std::map<std::string, std::string>& values) {
  return [values](const std::string& name) -> std::optional<std::string> {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

TEST(CliTest, GlobalFlagsAnywhereAndDefaultLocalTargets) {
  absl::StatusOr<Invocation> invocation = ParseInvocation(
      {"groups", "--output", "json", "get", "7", "--deadline=3s", "--token", "t0k"}, Env({}));
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_THAT(invocation->command, ElementsAre("groups", "get", "7"));
  EXPECT_EQ(invocation->output, OutputFormat::kJson);
  EXPECT_EQ(invocation->connection.deadline, absl::Seconds(3));
  EXPECT_EQ(invocation->connection.token, "t0k");
  EXPECT_EQ(invocation->connection.targets.at("identity"), "127.0.0.1:50051");
  EXPECT_EQ(invocation->connection.targets.at("audit"), "127.0.0.1:50055");
}

TEST(CliTest, PerServiceTargetBeatsTargetBeatsDefaultAndEnvFallsBack) {
  absl::StatusOr<Invocation> invocation =
      ParseInvocation({"--groups-target", "g:1", "health"},
                      Env({{"QUNZUCTL_TARGET", "gateway:443"}, {"QUNZUCTL_OUTPUT", "json"}}));
  ASSERT_TRUE(invocation.ok()) << invocation.status();
  EXPECT_EQ(invocation->connection.targets.at("groups"), "g:1");
  EXPECT_EQ(invocation->connection.targets.at("credit"), "gateway:443");
  EXPECT_EQ(invocation->output, OutputFormat::kJson);

  absl::StatusOr<Invocation> flag_wins = ParseInvocation(
      {"--target", "cli:1", "health"}, Env({{"QUNZUCTL_AUDIT_TARGET", "env-audit:2"}}));
  ASSERT_TRUE(flag_wins.ok());
  EXPECT_EQ(flag_wins->connection.targets.at("audit"), "cli:1");
}

TEST(CliTest, TokenFromFileOrRoleDirectory) {
  std::string dir = ::testing::TempDir();
  { std::ofstream(dir + "/moderator.token") << "mod-token\n"; }
  absl::StatusOr<Invocation> by_role =
      ParseInvocation({"--as", "moderator", "reports", "list"}, Env({{"QUNZUCTL_TOKEN_DIR", dir}}));
  ASSERT_TRUE(by_role.ok()) << by_role.status();
  EXPECT_EQ(by_role->connection.token, "mod-token");
  absl::StatusOr<Invocation> by_file =
      ParseInvocation({"--token-file", dir + "/moderator.token", "reports", "list"}, Env({}));
  ASSERT_TRUE(by_file.ok());
  EXPECT_EQ(by_file->connection.token, "mod-token");
  std::remove((dir + "/moderator.token").c_str());

  EXPECT_THAT(
      ParseInvocation({"--as", "../secrets/x", "rules", "list"}, Env({})).status().message(),
      HasSubstr("not a role name"));
  absl::Status no_dir = ParseInvocation({"--as", "operator", "rules", "list"}, Env({})).status();
  EXPECT_THAT(no_dir.message(), HasSubstr("--token-dir"));
  absl::Status unreadable =
      ParseInvocation({"--token-file", dir + "/absent", "rules", "list"}, Env({})).status();
  EXPECT_THAT(unreadable.message(), HasSubstr("cannot read"));
}

TEST(CliTest, BadGlobalValuesAreUsageErrors) {
  std::ostringstream out, err;
  EXPECT_EQ(Main({"--output", "yaml", "rules", "list"}, out, err, Env({})), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--output"));
  err.str("");
  EXPECT_EQ(Main({"rules", "list", "--deadline"}, out, err, Env({})), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--deadline needs a value"));
}

TEST(CliTest, UnknownCommandAndMissingFlagExitTwoSayingWhat) {
  std::ostringstream out, err;
  EXPECT_EQ(Main({"groups", "explode"}, out, err, Env({})), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("unknown command \"groups explode\""));
  EXPECT_THAT(err.str(), HasSubstr("groups create"));
  err.str("");
  EXPECT_EQ(Main({"accounts", "reveal", "5", "--reason", "case"}, out, err, Env({})), kExitUsage);
  EXPECT_THAT(err.str(), HasSubstr("--case-reference: required"));
  EXPECT_EQ(Main({}, out, err, Env({})), kExitUsage);
  std::ostringstream help;
  EXPECT_EQ(Main({"--help"}, help, err, Env({})), kExitOk);
  EXPECT_THAT(help.str(), HasSubstr("compliance report"));
}

TEST(CliTest, UnreachableTargetFailsWithinTheDeadline) {
  std::ostringstream out, err;
  auto start = std::chrono::steady_clock::now();
  int code =
      Main({"--deadline", "2s", "--target", "127.0.0.1:1", "credit", "policy"}, out, err, Env({}));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(code, kExitRpcBase + static_cast<int>(absl::StatusCode::kUnavailable));
  EXPECT_LT(elapsed, std::chrono::seconds(3));
  EXPECT_THAT(err.str(), HasSubstr("credit at 127.0.0.1:1"));
  err.str("");
  EXPECT_EQ(
      Main({"--target", "127.0.0.1:1", "--deadline", "1s", "health", "audit"}, out, err, Env({})),
      kExitCheckFailed);
  EXPECT_THAT(out.str(), HasSubstr("audit       127.0.0.1:1  UNREACHABLE UNAVAILABLE"));
}

}  // namespace
}  // namespace qunzu::ctl
