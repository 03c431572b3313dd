// Ed25519 signing of checkpoints (OpenSSL EVP_PKEY_ED25519). The private key
// is read from a PEM file (PKCS#8, as `openssl genpkey -algorithm ed25519`
// writes it); its key id is the lower-case hex SHA-256 of the raw 32-byte
// public key.
#ifndef QUNZU_SERVICES_AUDIT_SIGNER_H_
#define QUNZU_SERVICES_AUDIT_SIGNER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qunzu::audit {

class Signer {
 public:
  // FAILED_PRECONDITION (SIGNING_KEY_UNREADABLE / SIGNING_KEY_INVALID)
  // naming the path when the file cannot be read or is not an Ed25519 key.
  static absl::StatusOr<std::unique_ptr<Signer>> FromPemFile(const std::string& path);
  static absl::StatusOr<std::unique_ptr<Signer>> FromPem(absl::string_view pem);
  ~Signer();

  // 64-byte Ed25519 signature of message.
  std::string Sign(absl::string_view message) const;
  const std::string& public_key() const { return public_key_; }
  const std::string& key_id() const { return key_id_; }

 private:
  Signer() = default;
  void* pkey_ = nullptr;  // EVP_PKEY*
  std::string public_key_;
  std::string key_id_;
};

// Hex SHA-256 of a raw public key.
std::string KeyIdOf(absl::string_view raw_public_key);

// Whether signature is a valid Ed25519 signature of message by the raw
// 32-byte public key.
bool VerifySignature(absl::string_view raw_public_key, absl::string_view message,
                     absl::string_view signature);

// The raw public key of a PEM public key (SubjectPublicKeyInfo) or private
// key file's contents.
absl::StatusOr<std::string> RawPublicKeyFromPem(absl::string_view pem);

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_SIGNER_H_
