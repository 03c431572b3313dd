// Tests of common/agreement_versions.h: which version binds when, and what
// counts as accepted.
#include "common/agreement_versions.h"

#include <gtest/gtest.h>

namespace qunzu {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1800000000);

TEST(AgreementVersionsTest, TheNextVersionBindsOnceItIsEffective) {
  const PublishedAgreement later{"1", "2", "1800000001"};
  EXPECT_EQ(RequiredAgreementVersion(later, kNow), "1");
  const PublishedAgreement now{"1", "2", "1800000000"};
  EXPECT_EQ(RequiredAgreementVersion(now, kNow), "2");
  // A malformed effective time never makes the next version bind.
  EXPECT_EQ(RequiredAgreementVersion({"1", "2", "soon"}, kNow), "1");
  EXPECT_EQ(RequiredAgreementVersion({"1", "", ""}, kNow), "1");
}

TEST(AgreementVersionsTest, AcceptedMeansTheRequiredVersionOrNewer) {
  const PublishedAgreement v3{"3", "", ""};
  EXPECT_TRUE(AgreementAccepted("3", v3, kNow));
  EXPECT_TRUE(AgreementAccepted("4", v3, kNow));
  EXPECT_FALSE(AgreementAccepted("2", v3, kNow));
  EXPECT_FALSE(AgreementAccepted("", v3, kNow));
  EXPECT_FALSE(AgreementAccepted("x", v3, kNow));
  EXPECT_FALSE(AgreementAccepted("3", {"3", "4", "1799999999"}, kNow));
}

TEST(AgreementVersionsTest, NothingPublishedRequiresNothing) {
  EXPECT_TRUE(AgreementAccepted("", {"", "", ""}, kNow));
  EXPECT_TRUE(AgreementAccepted("", {"0", "", ""}, kNow));
}

}  // namespace
}  // namespace qunzu
