#include "services/qunzuctl/request_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::ctl {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

const Command& Find(const std::string& words) {
  std::vector<std::string> args = absl::StrSplit(words, ' ');
  size_t consumed = 0;
  const Command* command = FindCommand(args, &consumed);
  EXPECT_NE(command, nullptr) << words;
  return *command;
}

TEST(RequestBuilderTest, PositionalsAliasesDefaultsAndAFreshRequestId) {
  groups::v1::CreateGroupRequest request;
  Extras extras;
  ASSERT_TRUE(
      BuildRequest(Find("groups create"),
                   {"--actor", "7", "--name=读书会", "--category", "hobby", "--tier", "medium"},
                   kNow, &request, &extras)
          .ok());
  EXPECT_EQ(request.actor_account_id(), 7u);
  EXPECT_EQ(request.name(), "读书会");
  EXPECT_EQ(request.scale_tier(), common::v1::SCALE_TIER_MEDIUM);
  EXPECT_EQ(request.join_policy(), groups::v1::JOIN_POLICY_OPEN);
  EXPECT_TRUE(absl::StartsWith(request.request_id(), "qunzuctl-"));

  groups::v1::CreateGroupRequest again;
  ASSERT_TRUE(BuildRequest(Find("groups create"),
                           {"--actor", "7", "--name", "x", "--category", "hobby", "--tier", "small",
                            "--join-policy", "approval", "--request-id", "mine"},
                           kNow, &again, &extras)
                  .ok());
  EXPECT_EQ(again.join_policy(), groups::v1::JOIN_POLICY_APPROVAL);
  EXPECT_EQ(again.request_id(), "mine");
}

TEST(RequestBuilderTest, MissingRequiredFlagIsNamed) {
  groups::v1::CreateGroupRequest request;
  Extras extras;
  absl::Status status =
      BuildRequest(Find("groups create"), {"--actor", "7", "--name", "x"}, kNow, &request, &extras);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorMetadata(status, "field"), "--category");

  groups::v1::GetGroupRequest get;
  absl::Status either = BuildRequest(Find("groups get"), {}, kNow, &get, &extras);
  EXPECT_THAT(either.message(), HasSubstr("--group-id: required (or --code)"));
  ASSERT_TRUE(BuildRequest(Find("groups get"), {"--code", "AB12CD"}, kNow, &get, &extras).ok());
  ASSERT_TRUE(BuildRequest(Find("groups get"), {"42"}, kNow, &get, &extras).ok());
  EXPECT_EQ(get.group_id(), 42u);
}

TEST(RequestBuilderTest, StrayArgumentsAndMissingValuesAreUsageErrors) {
  groups::v1::GetGroupRequest request;
  Extras extras;
  EXPECT_THAT(BuildRequest(Find("groups get"), {"1", "2"}, kNow, &request, &extras).message(),
              HasSubstr("unexpected argument \"2\""));
  EXPECT_THAT(BuildRequest(Find("groups get"), {"--group-id"}, kNow, &request, &extras).message(),
              HasSubstr("--group-id needs a value"));
}

TEST(RequestBuilderTest, BooleansAloneMeanTrue) {
  moderation::v1::ListEmergencyModesRequest request;
  Extras extras;
  ASSERT_TRUE(
      BuildRequest(Find("emergency list"), {"--in-force-only"}, kNow, &request, &extras).ok());
  EXPECT_TRUE(request.in_force_only());
}

TEST(RequestBuilderTest, FileFlagsExtrasAndWholeRequestJson) {
  std::string path = ::testing::TempDir() + "/agreement.md";
  {
    std::ofstream out(path);
    out << "# 服务协议\n条款一";
  }
  identity::v1::PublishAgreementRequest publish;
  Extras extras;
  ASSERT_TRUE(BuildRequest(Find("agreements publish"),
                           {"--kind", "service_agreement", "--title", "协议", "--body-file", path},
                           kNow, &publish, &extras)
                  .ok());
  EXPECT_EQ(publish.body(), "# 服务协议\n条款一");
  absl::Status missing =
      BuildRequest(Find("agreements publish"),
                   {"--kind", "service_agreement", "--title", "t", "--body-file", path + ".nope"},
                   kNow, &publish, &extras);
  EXPECT_THAT(missing.message(), HasSubstr("cannot read"));
  std::remove(path.c_str());

  moderation::v1::UpsertRuleSetRequest upsert;
  ASSERT_TRUE(BuildRequest(Find("rules upsert"), {"--name", "demo", "--file", "terms.txt"}, kNow,
                           &upsert, &extras)
                  .ok());
  EXPECT_EQ(extras["file"], "terms.txt");
  EXPECT_TRUE(upsert.activate());
  EXPECT_EQ(upsert.mode(), moderation::v1::RULE_SET_UPDATE_MODE_REPLACE);

  moderation::v1::SubmitReportRequest report;
  ASSERT_TRUE(BuildRequest(Find("reports submit"),
                           {"--request", R"({"target": {"kind": "REPORT_TARGET_KIND_GROUP"}})",
                            "--group", "9", "--category", "fraud"},
                           kNow, &report, &extras)
                  .ok());
  EXPECT_EQ(report.target().kind(), moderation::v1::REPORT_TARGET_KIND_GROUP);
  EXPECT_EQ(report.target().group_id(), 9u);
}

TEST(RequestBuilderTest, HelpListsFieldsAndRequiredFlags) {
  std::string help = CommandHelp(Find("dispositions group"));
  EXPECT_THAT(help, HasSubstr("qunzu.moderation.v1.ModerationService.DisposeGroup"));
  EXPECT_THAT(help, HasSubstr("Required: --group-id, --kind, --statement-of-reasons"));
  EXPECT_THAT(help, HasSubstr("--basis.report-ids  (list of uint64)"));
  EXPECT_THAT(help, HasSubstr("WARN|SUSPEND_POSTING|CLOSE"));
}

}  // namespace
}  // namespace qunzu::ctl
