#include "services/qunzuctl/field_setter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "qunzu/groups/v1/groups.pb.h"
#include "qunzu/identity/v1/identity.pb.h"
#include "qunzu/moderation/v1/moderation.pb.h"

namespace qunzu::ctl {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

TEST(FieldSetterTest, EnumsByShortNameAnyCaseFullNameOrNumber) {
  groups::v1::CreateGroupRequest request;
  ASSERT_TRUE(SetFieldFromText(&request, "scale_tier", "small", kNow).ok());
  EXPECT_EQ(request.scale_tier(), common::v1::SCALE_TIER_SMALL);
  ASSERT_TRUE(SetFieldFromText(&request, "scale-tier", "SCALE_TIER_HUGE", kNow).ok());
  EXPECT_EQ(request.scale_tier(), common::v1::SCALE_TIER_HUGE);
  ASSERT_TRUE(SetFieldFromText(&request, "category", "2", kNow).ok());
  EXPECT_EQ(request.category(), common::v1::GROUP_CATEGORY_WORK);
}

TEST(FieldSetterTest, BadEnumNamesTheFlagAndListsTheValues) {
  groups::v1::CreateGroupRequest request;
  absl::Status status = SetFieldFromText(&request, "scale_tier", "giant", kNow);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorMetadata(status, "field"), "--scale-tier");
  EXPECT_THAT(status.message(), HasSubstr("SMALL, MEDIUM, LARGE, HUGE"));
}

TEST(FieldSetterTest, UnknownFieldListsTheMessageFields) {
  groups::v1::CreateGroupRequest request;
  absl::Status status = SetFieldFromText(&request, "tier_name", "x", kNow);
  EXPECT_EQ(ErrorMetadata(status, "field"), "--tier-name");
  EXPECT_THAT(status.message(), HasSubstr("CreateGroupRequest has no field \"tier_name\""));
  EXPECT_THAT(status.message(), HasSubstr("--scale-tier"));
}

TEST(FieldSetterTest, IntegersAreCheckedForTypeAndSign) {
  groups::v1::GetGroupRequest request;
  EXPECT_EQ(ErrorMetadata(SetFieldFromText(&request, "group_id", "abc", kNow), "field"),
            "--group-id");
  EXPECT_THAT(SetFieldFromText(&request, "group_id", "-5", kNow).message(), HasSubstr("negative"));
  ASSERT_TRUE(SetFieldFromText(&request, "group_id", "18446744073709551615", kNow).ok());
  EXPECT_EQ(request.group_id(), 18446744073709551615ULL);
}

TEST(FieldSetterTest, NestedPathsAndRepeatedLists) {
  moderation::v1::DisposeGroupRequest request;
  ASSERT_TRUE(SetFieldFromText(&request, "basis.report-ids", "1, 2,3", kNow).ok());
  ASSERT_TRUE(SetFieldFromText(&request, "basis.report_ids", "4", kNow).ok());
  EXPECT_THAT(request.basis().report_ids(), ::testing::ElementsAre(1, 2, 3, 4));
  EXPECT_TRUE(FieldIsSet(request, "basis.report_ids"));
  EXPECT_FALSE(FieldIsSet(request, "basis.rule_ids"));
  EXPECT_FALSE(FieldIsSet(request, "until"));
}

TEST(FieldSetterTest, AListOfMessagesTakesJsonElements) {
  moderation::v1::UpsertRuleSetRequest request;
  absl::Status through = SetFieldFromText(&request, "rules.pattern", "x", kNow);
  EXPECT_THAT(through.message(), HasSubstr("list of messages"));
  ASSERT_TRUE(SetFieldFromText(&request, "rules",
                               R"({"pattern": "赌博", "action": "RULE_ACTION_BLOCK"})", kNow)
                  .ok());
  ASSERT_EQ(request.rules_size(), 1);
  EXPECT_EQ(request.rules(0).pattern(), "赌博");
  absl::Status bad = SetFieldFromText(&request, "rules", "{not json", kNow);
  EXPECT_EQ(ErrorMetadata(bad, "field"), "--rules");
  EXPECT_THAT(bad.message(), HasSubstr("protobuf JSON"));
}

TEST(FieldSetterTest, TimesAbsoluteRelativeAndNow) {
  moderation::v1::DisposeGroupRequest request;
  ASSERT_TRUE(SetFieldFromText(&request, "until", "+24h", kNow).ok());
  EXPECT_EQ(request.until().seconds(), 1800000000 + 86400);
  ASSERT_TRUE(SetFieldFromText(&request, "until", "-7d", kNow).ok());
  EXPECT_EQ(request.until().seconds(), 1800000000 - 7 * 86400);
  ASSERT_TRUE(SetFieldFromText(&request, "until", "2027-01-02T03:04:05Z", kNow).ok());
  EXPECT_EQ(request.until().seconds(), 1798859045);
  ASSERT_TRUE(SetFieldFromText(&request, "until", "now", kNow).ok());
  EXPECT_EQ(request.until().seconds(), 1800000000);
  absl::Status bad = SetFieldFromText(&request, "until", "tomorrow", kNow);
  EXPECT_EQ(ErrorMetadata(bad, "field"), "--until");
  EXPECT_THAT(bad.message(), HasSubstr("RFC 3339"));
}

TEST(FieldSetterTest, DurationsWithDays) {
  groups::v1::MuteMemberRequest request;
  ASSERT_TRUE(SetFieldFromText(&request, "duration", "2d", kNow).ok());
  EXPECT_EQ(request.duration().seconds(), 2 * 86400);
  ASSERT_TRUE(SetFieldFromText(&request, "duration", "1h30m", kNow).ok());
  EXPECT_EQ(request.duration().seconds(), 5400);
  EXPECT_FALSE(SetFieldFromText(&request, "duration", "soon", kNow).ok());
}

TEST(FieldSetterTest, BytesInHexOrBase64AndBooleans) {
  identity::v1::AcceptAgreementRequest request;
  ASSERT_TRUE(SetFieldFromText(&request, "body_sha256", "00ff", kNow).ok());
  EXPECT_EQ(request.body_sha256(), std::string("\x00\xff", 2));
  ASSERT_TRUE(SetFieldFromText(&request, "body_sha256", "base64:AAE=", kNow).ok());
  EXPECT_EQ(request.body_sha256(), std::string("\x00\x01", 2));
  EXPECT_THAT(SetFieldFromText(&request, "body_sha256", "xyz", kNow).message(), HasSubstr("hex"));
  moderation::v1::UpsertRuleSetRequest upsert;
  ASSERT_TRUE(SetFieldFromText(&upsert, "activate", "yes", kNow).ok());
  EXPECT_TRUE(upsert.activate());
  EXPECT_THAT(SetFieldFromText(&upsert, "activate", "perhaps", kNow).message(),
              HasSubstr("boolean"));
}

TEST(FieldSetterTest, OneofAndOptionalFieldsArePresentOnceSet) {
  identity::v1::SubmitRealNameRequest request;
  EXPECT_FALSE(FieldIsSet(request, "resident_identity"));
  ASSERT_TRUE(SetFieldFromText(&request, "resident_identity.legal_name", "王小明", kNow).ok());
  EXPECT_TRUE(FieldIsSet(request, "resident_identity"));
  groups::v1::UpdateGroupInfoRequest update;
  ASSERT_TRUE(SetFieldFromText(&update, "announcement", "", kNow).ok());
  EXPECT_TRUE(update.has_announcement());
}

TEST(FieldSetterTest, ShortEnumNames) {
  EXPECT_EQ(ShortEnumName(*audit::v1::SubjectKind_descriptor(), 2), "GROUP");
  EXPECT_EQ(ShortEnumName(*audit::v1::SubjectKind_descriptor(), 99), "99");
  EXPECT_EQ(FlagName("target.group_id"), "--target.group-id");
}

}  // namespace
}  // namespace qunzu::ctl
