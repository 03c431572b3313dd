// Field encryption of personal information at rest (R6.3): AES-256-GCM with
// the account id and the field name as associated data, so a ciphertext
// copied to another row or column does not decrypt; a key-version prefix so
// keys can rotate; and an HMAC-SHA256 blind index under its own key for
// equality lookups (how many accounts one ID number verified).
//
// Keys come from a file or the environment (never from code). The format,
// one entry a line (`;` also separates entries, for a one-line environment
// value), `#` comments and blank entries ignored:
//   hmac <64 hex digits>            the blind-index key (exactly one)
//   key <version> <64 hex digits>   an AES-256 key; version 1..65535
// The highest version encrypts; every listed version decrypts.
#ifndef QUNZU_SERVICES_IDENTITY_PII_CRYPTO_H_
#define QUNZU_SERVICES_IDENTITY_PII_CRYPTO_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qunzu::identity {

// Names of the encrypted fields, part of the associated data.
inline constexpr char kFieldLegalName[] = "legal_name";
inline constexpr char kFieldResidentId[] = "resident_id_number";
inline constexpr char kFieldVerificationPhone[] = "verification_phone";
inline constexpr char kFieldContactPhone[] = "contact_phone";

class PiiCrypto {
 public:
  // Parses the key file text (format above). INVALID_ARGUMENT naming the
  // line for a malformed entry, a duplicate version, no key or no hmac key.
  static absl::StatusOr<PiiCrypto> Parse(absl::string_view text);
  // Reads and parses `path`; NOT_FOUND (CONFIG_FILE_UNREADABLE) naming it.
  static absl::StatusOr<PiiCrypto> LoadFile(const std::string& path);

  // `v<version>:` + 12-byte random nonce + ciphertext + 16-byte tag, under
  // the newest key. INTERNAL when OpenSSL fails.
  absl::StatusOr<std::string> Encrypt(absl::string_view plaintext, uint64_t account_id,
                                      absl::string_view field) const;
  // The plaintext of an Encrypt result for the same account and field.
  // DATA_LOSS (PII_DECRYPT_FAILED) when the data was altered or belongs to
  // another row or field; FAILED_PRECONDITION (PII_KEY_UNKNOWN) when its key
  // version is not loaded.
  absl::StatusOr<std::string> Decrypt(absl::string_view ciphertext, uint64_t account_id,
                                      absl::string_view field) const;

  // HMAC-SHA256 (32 bytes) of `kind` and `value` under the blind-index key.
  std::string BlindIndex(absl::string_view kind, absl::string_view value) const;

  // The version new encryptions use.
  uint32_t newest_version() const { return keys_.rbegin()->first; }
  // The key version of a ciphertext; 0 when it has no valid prefix.
  static uint32_t VersionOf(absl::string_view ciphertext);

 private:
  PiiCrypto() = default;
  std::map<uint32_t, std::string> keys_;
  std::string hmac_key_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_SERVICES_IDENTITY_PII_CRYPTO_H_
