// The GB 11643-1999 vectors of issue 4, legal names, phones and masks.
#include "services/identity/validators.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace qunzu::identity {
namespace {

const absl::Time kToday = absl::FromCivil(absl::CivilDay(2026, 6, 1), absl::UTCTimeZone());

std::string Reason(const absl::StatusOr<std::string>& result) {
  return ErrorReason(result.status());
}

TEST(IdentityResidentIdTest, AcceptsTheIssueVector) {
  absl::StatusOr<std::string> id = ValidateResidentId("11010519491231002X", kToday, "id");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "11010519491231002X");
  EXPECT_EQ(ResidentIdCheckCharacter("11010519491231002"), 'X');
}

TEST(IdentityResidentIdTest, NormalisesLowerCaseX) {
  EXPECT_EQ(*ValidateResidentId("11010519491231002x", kToday, "id"), "11010519491231002X");
}

TEST(IdentityResidentIdTest, RejectsWrongCheckCharacter) {
  absl::StatusOr<std::string> id = ValidateResidentId("110105194912310021", kToday, "f");
  EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Reason(id), "ID_NUMBER_CHECK_FAILED");
  EXPECT_EQ(ErrorMetadata(id.status(), "field"), "f");
}

std::string WithCheck(const std::string& first17) {
  return first17 + ResidentIdCheckCharacter(first17);
}

TEST(IdentityResidentIdTest, RejectsImpossibleDate) {
  EXPECT_EQ(Reason(ValidateResidentId(WithCheck("11010519990230002"), kToday, "f")),
            "ID_BIRTH_DATE_INVALID");
  EXPECT_EQ(Reason(ValidateResidentId(WithCheck("11010519991301002"), kToday, "f")),
            "ID_BIRTH_DATE_INVALID");
  EXPECT_EQ(Reason(ValidateResidentId(WithCheck("11010518991231002"), kToday, "f")),
            "ID_BIRTH_DATE_INVALID");
  EXPECT_TRUE(ValidateResidentId(WithCheck("11010520000229002"), kToday, "f").ok());
}

TEST(IdentityResidentIdTest, RejectsFutureDateByInjectedClock) {
  const std::string id = WithCheck("11010520260602002");
  EXPECT_EQ(Reason(ValidateResidentId(id, kToday, "f")), "ID_BIRTH_DATE_INVALID");
  EXPECT_TRUE(ValidateResidentId(id, kToday + absl::Hours(24), "f").ok());
}

TEST(IdentityResidentIdTest, RejectsUnknownRegion) {
  EXPECT_EQ(Reason(ValidateResidentId(WithCheck("99010519491231002"), kToday, "f")),
            "ID_REGION_UNKNOWN");
  EXPECT_EQ(Reason(ValidateResidentId(WithCheck("10010519491231002"), kToday, "f")),
            "ID_REGION_UNKNOWN");
}

TEST(IdentityResidentIdTest, RejectsWrongLengthAndFullWidth) {
  EXPECT_EQ(Reason(ValidateResidentId("11010519491231002", kToday, "f")), "INVALID_FIELD");
  EXPECT_EQ(Reason(ValidateResidentId("11010519491231002X1", kToday, "f")), "INVALID_FIELD");
  // Full-width digits: ＡＢ... are 3 bytes each; a full-width 1 in place of '1'.
  EXPECT_EQ(Reason(ValidateResidentId("\xEF\xBC\x91"
                                      "10105194912310",
                                      kToday, "f")),
            "INVALID_FIELD");
  EXPECT_EQ(Reason(ValidateResidentId("１１０１０５１９４９１２３１００２Ｘ", kToday, "f")),
            "INVALID_FIELD");
  EXPECT_EQ(Reason(ValidateResidentId("11010519491231002Y", kToday, "f")), "INVALID_FIELD");
  EXPECT_EQ(Reason(ValidateResidentId("", kToday, "f")), "INVALID_FIELD");
}

TEST(IdentityLegalNameTest, AcceptsChineseEthnicAndLatin) {
  EXPECT_TRUE(ValidateLegalName("王五", "n").ok());
  EXPECT_TRUE(ValidateLegalName("欧阳修文", "n").ok());
  EXPECT_TRUE(ValidateLegalName("阿依古丽·买买提", "n").ok());
  EXPECT_TRUE(ValidateLegalName("John Smith", "n").ok());
  EXPECT_TRUE(ValidateLegalName("Anne-Marie O'Neil", "n").ok());
  EXPECT_TRUE(ValidateLegalName("José Müller", "n").ok());
}

TEST(IdentityLegalNameTest, RejectsBadNames) {
  for (const char* bad : {"王", "", "王 五", "·王五", "王五·", "王··五", "王John", "John  Smith",
                          " John", "John1", "王五\n", "\xff\xfe", "<script>"}) {
    absl::StatusOr<std::string> name = ValidateLegalName(bad, "n");
    EXPECT_EQ(Reason(name), "LEGAL_NAME_INVALID") << bad;
    EXPECT_EQ(ErrorMetadata(name.status(), "field"), "n");
  }
  EXPECT_FALSE(ValidateLegalName(std::string(65, 'a'), "n").ok());
  EXPECT_TRUE(ValidateLegalName(std::string(64, 'a'), "n").ok());
}

TEST(IdentityPhoneTest, MainlandMobileOnly) {
  EXPECT_TRUE(ValidatePhone("13812341234", "p").ok());
  EXPECT_TRUE(ValidatePhone("19912341234", "p").ok());
  for (const char* bad : {"12812341234", "1381234123", "138123412345", "+8613812341234",
                          "1381234123a", "", "１3812341234"}) {
    EXPECT_EQ(Reason(ValidatePhone(bad, "p")), "PHONE_INVALID") << bad;
  }
}

TEST(IdentityMaskTest, MasksAsTheIssueShows) {
  EXPECT_EQ(MaskLegalName("王五"), "王*");
  EXPECT_EQ(MaskLegalName("欧阳修文"), "欧阳**");
  EXPECT_EQ(MaskLegalName("阿依古丽·买买提"), "阿***·***");
  EXPECT_EQ(MaskLegalName("John Smith"), "J*** *****");
  EXPECT_EQ(MaskResidentId("11010519491231234X"), "110***********234X");
  EXPECT_EQ(MaskResidentId("110105194912311234"), "110***********1234");
  EXPECT_EQ(MaskPhone("13812341234"), "138****1234");
}

}  // namespace
}  // namespace qunzu::identity
