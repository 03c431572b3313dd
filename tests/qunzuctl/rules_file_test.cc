#include "services/qunzuctl/rules_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/status.h"

namespace qunzu::ctl {
namespace {

using ::testing::HasSubstr;
namespace mod = moderation::v1;

TEST(RulesFileTest, ParsesActionsCategoriesRegexesAndNotes) {
  absl::StatusOr<std::vector<mod::Rule>> rules = ParseRulesFile(
      "# demo\n\nBLOCK gambling 网络赌博\nHOLD RUMOR 内部消息  # needs a human\n"
      "BLOCK FRAUD re:加[微v]信\nALLOW - 赌博游戏史\nBLOCK spam buy followers\n",
      "demo.terms");
  ASSERT_TRUE(rules.ok()) << rules.status();
  ASSERT_EQ(rules->size(), 5u);
  EXPECT_EQ((*rules)[0].action(), mod::RULE_ACTION_BLOCK);
  EXPECT_EQ((*rules)[0].category(), mod::CONTENT_CATEGORY_GAMBLING);
  EXPECT_EQ((*rules)[0].pattern(), "网络赌博");
  EXPECT_EQ((*rules)[1].action(), mod::RULE_ACTION_HOLD);
  EXPECT_EQ((*rules)[1].note(), "needs a human");
  EXPECT_EQ((*rules)[1].pattern(), "内部消息");
  EXPECT_EQ((*rules)[2].kind(), mod::RULE_KIND_REGEX);
  EXPECT_EQ((*rules)[2].pattern(), "加[微v]信");
  EXPECT_EQ((*rules)[3].category(), mod::CONTENT_CATEGORY_UNSPECIFIED);
  EXPECT_EQ((*rules)[4].pattern(), "buy followers");
  EXPECT_EQ((*rules)[4].kind(), mod::RULE_KIND_LITERAL);
}

TEST(RulesFileTest, ErrorsNameTheFileAndLine) {
  absl::Status action = ParseRulesFile("BLOCK FRAUD x\nDROP FRAUD y\n", "t.terms").status();
  EXPECT_EQ(ErrorMetadata(action, "field"), "--file");
  EXPECT_THAT(action.message(), HasSubstr("t.terms:2: \"DROP\" is not an action"));
  EXPECT_THAT(ParseRulesFile("BLOCK LOTTERY x\n", "t").status().message(),
              HasSubstr("t:1: \"LOTTERY\" is not a category"));
  EXPECT_THAT(ParseRulesFile("BLOCK FRAUD\n", "t").status().message(),
              HasSubstr("t:1: expected ACTION CATEGORY PATTERN"));
  EXPECT_THAT(ParseRulesFile("# nothing\n", "t").status().message(), HasSubstr("no rule"));
}

}  // namespace
}  // namespace qunzu::ctl
