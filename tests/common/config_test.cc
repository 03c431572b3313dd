#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>

#include "common/status.h"
#include "qunzu/common/v1/common.pb.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

// A service-like configuration covering every flag type.
struct Config {
  std::string mysql_dsn;
  int64_t grpc_port = -1;
  bool tls = false;
  absl::Duration drain = absl::ZeroDuration();
  std::string log_level;
};

class FlagSetTest : public ::testing::Test {
 protected:
  FlagSetTest() : flags_("groups", "The groups service.") {
    flags_.AddString({"mysql-dsn", "QUNZU_MYSQL_DSN", "MySQL DSN."}, &config_.mysql_dsn,
                     "mysql://localhost");
    flags_.AddInt64({"grpc-port", "QUNZU_GRPC_PORT", "gRPC port."}, &config_.grpc_port, 50051, 1,
                    65535);
    flags_.AddBool({"tls", "QUNZU_TLS", "Serve TLS."}, &config_.tls, false);
    flags_.AddDuration({"drain", "QUNZU_DRAIN", "Drain time."}, &config_.drain, absl::Seconds(5),
                       absl::ZeroDuration(), absl::Minutes(5));
    flags_.AddChoice({"log-level", "QUNZU_LOG_LEVEL", "Minimum log level."}, &config_.log_level,
                     "info", {"debug", "info", "warning", "error"});
  }

  // Parses args (without the program name) against env_.
  absl::StatusOr<ParseOutcome> Parse(std::vector<const char*> args) {
    args.insert(args.begin(), "groups");
    return flags_.Parse(static_cast<int>(args.size()), args.data(),
                        [this](const std::string& name) -> std::optional<std::string> {
                          auto it = env_.find(name);
                          if (it == env_.end()) return std::nullopt;
                          return it->second;
                        });
  }

  // The error of a Parse that must fail.
  absl::Status ParseError(std::vector<const char*> args) {
    auto outcome = Parse(std::move(args));
    EXPECT_FALSE(outcome.ok());
    return outcome.status();
  }

  Config config_;
  std::map<std::string, std::string> env_;
  FlagSet flags_;
};

TEST_F(FlagSetTest, DefaultsApplyAtRegistrationAndParse) {
  EXPECT_EQ(config_.grpc_port, 50051);
  config_.grpc_port = 0;
  ASSERT_EQ(*Parse({}), ParseOutcome::kRun);
  EXPECT_EQ(config_.mysql_dsn, "mysql://localhost");
  EXPECT_EQ(config_.grpc_port, 50051);
  EXPECT_FALSE(config_.tls);
  EXPECT_EQ(config_.drain, absl::Seconds(5));
  EXPECT_EQ(config_.log_level, "info");
}

TEST_F(FlagSetTest, FlagBeatsEnvironmentBeatsDefault) {
  env_ = {{"QUNZU_GRPC_PORT", "7000"},
          {"QUNZU_DRAIN", "90s"},
          {"QUNZU_TLS", "yes"},
          {"QUNZU_MYSQL_DSN", "mysql://env"},
          {"QUNZU_LOG_LEVEL", "debug"}};
  ASSERT_EQ(*Parse({"--grpc-port=8000", "--log-level", "error"}), ParseOutcome::kRun);
  EXPECT_EQ(config_.grpc_port, 8000);
  EXPECT_EQ(config_.log_level, "error");
  EXPECT_EQ(config_.drain, absl::Seconds(90));
  EXPECT_TRUE(config_.tls);
  EXPECT_EQ(config_.mysql_dsn, "mysql://env");
}

TEST_F(FlagSetTest, EmptyEnvironmentVariableCountsAsUnset) {
  env_ = {{"QUNZU_GRPC_PORT", ""}};
  ASSERT_TRUE(Parse({}).ok());
  EXPECT_EQ(config_.grpc_port, 50051);
}

TEST_F(FlagSetTest, AcceptsBothValueFormsIncludingNegativeAndEmptyValues) {
  ASSERT_TRUE(Parse({"--mysql-dsn", "-dash", "--drain", "1m30s", "--grpc-port=80"}).ok());
  EXPECT_EQ(config_.mysql_dsn, "-dash");
  EXPECT_EQ(config_.drain, absl::Seconds(90));
  EXPECT_EQ(config_.grpc_port, 80);
  ASSERT_TRUE(Parse({"--mysql-dsn="}).ok());
  EXPECT_EQ(config_.mysql_dsn, "");
}

TEST_F(FlagSetTest, BooleanForms) {
  ASSERT_TRUE(Parse({"--tls"}).ok());
  EXPECT_TRUE(config_.tls);
  env_ = {{"QUNZU_TLS", "true"}};
  ASSERT_TRUE(Parse({"--no-tls"}).ok());
  EXPECT_FALSE(config_.tls);
  ASSERT_TRUE(Parse({"--tls=FALSE"}).ok());
  EXPECT_FALSE(config_.tls);
  EXPECT_THAT(ParseError({"--tls=maybe"}).message(), HasSubstr("\"maybe\""));
  EXPECT_THAT(ParseError({"--no-grpc-port"}).message(), HasSubstr("unknown flag"));
}

TEST_F(FlagSetTest, UnknownFlagIsNamed) {
  absl::Status status = ParseError({"--grpc-prot=1"});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorMetadata(status, "field"), "--grpc-prot");
  EXPECT_EQ(status.message(), "--grpc-prot: unknown flag (see --help)");
}

TEST_F(FlagSetTest, MissingValueIsNamed) {
  EXPECT_EQ(ParseError({"--grpc-port"}).message(), "--grpc-port: missing value");
  EXPECT_EQ(ParseError({"--grpc-port", "--tls"}).message(), "--grpc-port: missing value");
}

TEST_F(FlagSetTest, BadValueNamesFlagValueAndOrigin) {
  EXPECT_EQ(ParseError({"--grpc-port=http"}).message(),
            "--grpc-port: \"http\" from the command line is not a 64-bit decimal integer");
  env_ = {{"QUNZU_GRPC_PORT", "70000"}};
  absl::Status status = ParseError({});
  EXPECT_EQ(ErrorMetadata(status, "field"), "--grpc-port");
  EXPECT_EQ(status.message(),
            "--grpc-port: \"70000\" from environment variable QUNZU_GRPC_PORT is not in 1..65535");
  EXPECT_THAT(ParseError({"--grpc-port=0"}).message(), HasSubstr("is not in 1..65535"));
  EXPECT_THAT(ParseError({"--grpc-port= 80"}).message(), HasSubstr("not a 64-bit"));
  EXPECT_THAT(ParseError({"--grpc-port=99999999999999999999"}).message(),
              HasSubstr("not a 64-bit"));
}

TEST_F(FlagSetTest, DurationAndChoiceValuesAreChecked) {
  EXPECT_EQ(ParseError({"--drain=5"}).message(),
            "--drain: \"5\" from the command line is not a duration such as 250ms, 30s or 1h30m");
  EXPECT_THAT(ParseError({"--drain=-1s"}).message(), HasSubstr("is not in 0..5m"));
  EXPECT_THAT(ParseError({"--drain=1h"}).message(), HasSubstr("is not in 0..5m"));
  env_ = {{"QUNZU_LOG_LEVEL", "verbose"}};
  EXPECT_EQ(ParseError({}).message(),
            "--log-level: \"verbose\" from environment variable QUNZU_LOG_LEVEL is not one of "
            "debug|info|warning|error");
}

TEST_F(FlagSetTest, RepeatedFlagAndStrayArgumentAreErrors) {
  EXPECT_EQ(ParseError({"--grpc-port=1", "--grpc-port", "2"}).message(),
            "--grpc-port: given more than once");
  EXPECT_THAT(ParseError({"serve"}).message(), HasSubstr("unexpected argument"));
  EXPECT_THAT(ParseError({"-p"}).message(), HasSubstr("unexpected argument"));
}

TEST_F(FlagSetTest, HelpWinsAndUsageDescribesEveryFlag) {
  EXPECT_EQ(*Parse({"--bogus", "-h"}), ParseOutcome::kHelp);
  EXPECT_EQ(*Parse({"--help"}), ParseOutcome::kHelp);
  EXPECT_THAT(
      flags_.Usage(),
      AllOf(HasSubstr("Usage: groups [flags]"), HasSubstr("The groups service."),
            HasSubstr("--grpc-port=INT  (default \"50051\"; 1..65535; env QUNZU_GRPC_PORT)"),
            HasSubstr("gRPC port."), HasSubstr("one of debug|info|warning|error"),
            HasSubstr("--drain=DURATION  (default \"5s\"; 0..5m; env QUNZU_DRAIN)"),
            HasSubstr("--help")));
}

TEST(FlagSetRegistrationTest, DuplicateNameAndBadDefaultFailParse) {
  const char* argv[] = {"prog"};
  int64_t a = 0;
  FlagSet duplicate("prog", "");
  duplicate.AddInt64({"n", "", ""}, &a, 1, 0, 9);
  duplicate.AddInt64({"n", "", ""}, &a, 1, 0, 9);
  EXPECT_THAT(duplicate.Parse(1, argv).status().message(), HasSubstr("--n: registered twice"));
  FlagSet bad_default("prog", "");
  bad_default.AddInt64({"n", "", ""}, &a, 10, 0, 9);
  EXPECT_EQ(bad_default.Parse(1, argv).status().message(), "--n: default \"10\" is not in 0..9");
}

TEST(ParseFlagsOrExitTest, ExitsZeroOnHelpAndTwoWithTheMessageOnError) {
  int64_t port = 0;
  FlagSet flags("prog", "");
  flags.AddInt64({"grpc-port", "", ""}, &port, 1, 1, 65535);
  const char* help[] = {"prog", "--help"};
  EXPECT_EXIT(ParseFlagsOrExit(flags, 2, help), ::testing::ExitedWithCode(0), "");
  const char* bad[] = {"prog", "--grpc-port=x"};
  EXPECT_EXIT(ParseFlagsOrExit(flags, 2, bad), ::testing::ExitedWithCode(2),
              "prog: --grpc-port: \"x\" from the command line is not a 64-bit");
  const char* good[] = {"prog", "--grpc-port=9"};
  ParseFlagsOrExit(flags, 2, good);
  EXPECT_EQ(port, 9);
}

class TextProtoFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& contents) {
    std::string path = ::testing::TempDir() + testing::UniqueName("config") + ".textproto";
    std::ofstream(path) << contents;
    return path;
  }
};

TEST_F(TextProtoFileTest, LoadsAValidFile) {
  std::string path = Write(
      "# a comment\nroles: ROLE_MODERATOR\nroles: ROLE_SERVICE\n"
      "services: \"moderation\"\n");
  common::v1::AccessPolicy policy;
  ASSERT_TRUE(LoadTextProtoFile(path, &policy).ok());
  ASSERT_EQ(policy.roles_size(), 2);
  EXPECT_EQ(policy.roles(1), common::v1::ROLE_SERVICE);
  EXPECT_EQ(policy.services(0), "moderation");
}

TEST_F(TextProtoFileTest, UnknownFieldNamesFileLineAndColumn) {
  std::string path = Write("page_size: 10\n  page_tokn: \"x\"\n");
  common::v1::PageRequest page;
  absl::Status status = LoadTextProtoFile(path, &page);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorReason(status), "CONFIG_FILE_INVALID");
  EXPECT_EQ(status.message(), path +
                                  ":2:12: Message type \"qunzu.common.v1.PageRequest\" has no "
                                  "field named \"page_tokn\".");
}

TEST_F(TextProtoFileTest, SyntaxAndTypeErrorsNameTheirPosition) {
  common::v1::PageRequest page;
  absl::Status bad_type = LoadTextProtoFile(Write("page_size: \"ten\"\n"), &page);
  EXPECT_THAT(bad_type.message(), AllOf(HasSubstr(":1:12: "), HasSubstr("integer")));
  absl::Status unclosed = LoadTextProtoFile(Write("page_size: 1\npage_token: \"x\n"), &page);
  EXPECT_THAT(unclosed.message(), HasSubstr(":2:"));
  absl::Status repeated = LoadTextProtoFile(Write("page_size: 1\npage_size: 2\n"), &page);
  EXPECT_THAT(repeated.message(), HasSubstr(":2:"));
}

TEST_F(TextProtoFileTest, UnreadableFileNamesThePath) {
  common::v1::PageRequest page;
  const std::string missing = ::testing::TempDir() + "no/such/config.textproto";
  absl::Status status = LoadTextProtoFile(missing, &page);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorReason(status), "CONFIG_FILE_UNREADABLE");
  EXPECT_EQ(status.message(), "cannot read " + missing + ": No such file or directory");

  const std::string directory = ::testing::TempDir() + testing::UniqueName("dir");
  ASSERT_EQ(mkdir(directory.c_str(), 0700), 0);
  status = LoadTextProtoFile(directory, &page);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr(directory));
}

}  // namespace
}  // namespace qunzu
