// Encryption round trip, associated data binding, tampering, rotation and
// the key file parser.
#include "services/identity/pii_crypto.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace qunzu::identity {
namespace {

const std::string kHmac = std::string(64, 'a');
const std::string kKey1 = std::string(64, '1');
const std::string kKey2 = std::string(64, '2');

PiiCrypto Keys(const std::string& text) {
  absl::StatusOr<PiiCrypto> crypto = PiiCrypto::Parse(text);
  EXPECT_TRUE(crypto.ok()) << crypto.status();
  return *std::move(crypto);
}

TEST(IdentityPiiCryptoTest, RoundTripWithVersionPrefix) {
  PiiCrypto crypto = Keys("hmac " + kHmac + "\nkey 1 " + kKey1 + "\n");
  absl::StatusOr<std::string> sealed = crypto.Encrypt("王五", 42, kFieldLegalName);
  ASSERT_TRUE(sealed.ok()) << sealed.status();
  EXPECT_EQ(sealed->substr(0, 3), "v1:");
  EXPECT_EQ(sealed->find("王五"), std::string::npos);
  EXPECT_EQ(PiiCrypto::VersionOf(*sealed), 1u);
  EXPECT_EQ(*crypto.Decrypt(*sealed, 42, kFieldLegalName), "王五");
  // Fresh nonce each time.
  EXPECT_NE(*crypto.Encrypt("王五", 42, kFieldLegalName), *sealed);
}

TEST(IdentityPiiCryptoTest, CiphertextMovedToAnotherRowOrFieldDoesNotDecrypt) {
  PiiCrypto crypto = Keys("hmac " + kHmac + "\nkey 1 " + kKey1 + "\n");
  std::string sealed = *crypto.Encrypt("11010519491231002X", 42, kFieldResidentId);
  EXPECT_EQ(crypto.Decrypt(sealed, 43, kFieldResidentId).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(ErrorReason(crypto.Decrypt(sealed, 42, kFieldLegalName).status()),
            "PII_DECRYPT_FAILED");
  std::string tampered = sealed;
  tampered[tampered.size() - 20] ^= 1;
  EXPECT_EQ(crypto.Decrypt(tampered, 42, kFieldResidentId).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(crypto.Decrypt("v1:short", 42, kFieldResidentId).ok());
  EXPECT_FALSE(crypto.Decrypt("", 42, kFieldResidentId).ok());
}

TEST(IdentityPiiCryptoTest, RotationKeepsOldRecordsReadable) {
  PiiCrypto old_keys = Keys("hmac " + kHmac + "\nkey 1 " + kKey1 + "\n");
  std::string old_sealed = *old_keys.Encrypt("13812341234", 7, kFieldContactPhone);
  PiiCrypto rotated = Keys("hmac " + kHmac + "\nkey 1 " + kKey1 + "\nkey 2 " + kKey2 + "\n");
  EXPECT_EQ(rotated.newest_version(), 2u);
  EXPECT_EQ(*rotated.Decrypt(old_sealed, 7, kFieldContactPhone), "13812341234");
  std::string new_sealed = *rotated.Encrypt("13812341234", 7, kFieldContactPhone);
  EXPECT_EQ(PiiCrypto::VersionOf(new_sealed), 2u);
  EXPECT_EQ(ErrorReason(old_keys.Decrypt(new_sealed, 7, kFieldContactPhone).status()),
            "PII_KEY_UNKNOWN");
  // The blind index depends only on the hmac key, so it survives rotation.
  EXPECT_EQ(old_keys.BlindIndex("id", "x"), rotated.BlindIndex("id", "x"));
}

TEST(IdentityPiiCryptoTest, BlindIndexIsKeyedAndKindSeparated) {
  PiiCrypto a = Keys("hmac " + kHmac + "\nkey 1 " + kKey1 + "\n");
  PiiCrypto b = Keys("hmac " + std::string(64, 'b') + "\nkey 1 " + kKey1 + "\n");
  EXPECT_EQ(a.BlindIndex("id", "v").size(), 32u);
  EXPECT_EQ(a.BlindIndex("id", "v"), a.BlindIndex("id", "v"));
  EXPECT_NE(a.BlindIndex("id", "v"), b.BlindIndex("id", "v"));
  EXPECT_NE(a.BlindIndex("id", "v"), a.BlindIndex("phone", "v"));
}

TEST(IdentityPiiCryptoTest, OneLineFormForTheEnvironment) {
  absl::StatusOr<PiiCrypto> crypto =
      PiiCrypto::Parse("hmac " + kHmac + "; key 1 " + kKey1 + "; key 2 " + kKey2);
  ASSERT_TRUE(crypto.ok()) << crypto.status();
  EXPECT_EQ(crypto->newest_version(), 2u);
}

TEST(IdentityPiiCryptoTest, KeyFileErrorsNameTheLine) {
  EXPECT_FALSE(PiiCrypto::Parse("").ok());
  EXPECT_FALSE(PiiCrypto::Parse("key 1 " + kKey1).ok());
  EXPECT_FALSE(PiiCrypto::Parse("hmac " + kHmac).ok());
  absl::Status bad = PiiCrypto::Parse("# keys\nhmac " + kHmac + "\nkey 1 abc\n").status();
  EXPECT_EQ(ErrorReason(bad), "PII_KEYS_INVALID");
  EXPECT_NE(bad.message().find("line 3"), std::string::npos);
  EXPECT_FALSE(PiiCrypto::Parse("hmac " + kHmac + "\nkey 1 " + kKey1 + "\nkey 1 " + kKey2).ok());
  EXPECT_FALSE(PiiCrypto::Parse("hmac " + kKey1 + "\nkey 1 " + kKey1).ok());
  EXPECT_FALSE(PiiCrypto::Parse("hmac " + kHmac + "\nkey 0 " + kKey1).ok());
  EXPECT_FALSE(PiiCrypto::LoadFile("/nonexistent/keys").ok());
}

}  // namespace
}  // namespace qunzu::identity
