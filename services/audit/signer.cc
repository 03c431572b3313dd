#include "services/audit/signer.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "common/status.h"
#include "services/audit/merkle.h"

namespace qunzu::audit {
namespace {

absl::StatusOr<std::string> RawPublic(EVP_PKEY* pkey) {
  if (EVP_PKEY_id(pkey) != EVP_PKEY_ED25519) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "SIGNING_KEY_INVALID",
                     "not an Ed25519 key");
  }
  unsigned char raw[32];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != 32) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "SIGNING_KEY_INVALID",
                     "cannot read the public key");
  }
  return std::string(reinterpret_cast<char*>(raw), len);
}

}  // namespace

std::string KeyIdOf(absl::string_view raw_public_key) { return HashToHex(Sha256(raw_public_key)); }

absl::StatusOr<std::unique_ptr<Signer>> Signer::FromPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "SIGNING_KEY_INVALID",
                     "not a PEM private key");
  }
  absl::StatusOr<std::string> raw = RawPublic(pkey);
  if (!raw.ok()) {
    EVP_PKEY_free(pkey);
    return raw.status();
  }
  std::unique_ptr<Signer> signer(new Signer());
  signer->pkey_ = pkey;
  signer->public_key_ = *raw;
  signer->key_id_ = KeyIdOf(*raw);
  return signer;
}

absl::StatusOr<std::unique_ptr<Signer>> Signer::FromPemFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "SIGNING_KEY_UNREADABLE",
                     "--signing-key-file: cannot read " + path);
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<std::unique_ptr<Signer>> signer = FromPem(text.str());
  if (!signer.ok()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, ErrorReason(signer.status()),
                     "--signing-key-file: " + path + ": " + std::string(signer.status().message()) +
                         " (expected an Ed25519 key from `openssl genpkey -algorithm ed25519`)");
  }
  return signer;
}

Signer::~Signer() { EVP_PKEY_free(static_cast<EVP_PKEY*>(pkey_)); }

std::string Signer::Sign(absl::string_view message) const {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char sig[64];
  size_t len = sizeof(sig);
  EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, static_cast<EVP_PKEY*>(pkey_));
  EVP_DigestSign(ctx, sig, &len, reinterpret_cast<const unsigned char*>(message.data()),
                 message.size());
  EVP_MD_CTX_free(ctx);
  return std::string(reinterpret_cast<char*>(sig), len);
}

bool VerifySignature(absl::string_view raw_public_key, absl::string_view message,
                     absl::string_view signature) {
  if (raw_public_key.size() != 32 || signature.size() != 64) return false;
  EVP_PKEY* pkey = EVP_PKEY_new_raw_public_key(
      EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(raw_public_key.data()),
      raw_public_key.size());
  if (pkey == nullptr) return false;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestVerify(
                ctx, reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return ok;
}

absl::StatusOr<std::string> RawPublicKeyFromPem(absl::string_view pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* pkey = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (pkey == nullptr) {
    bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    pkey = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
  }
  if (pkey == nullptr) {
    return MakeError(absl::StatusCode::kInvalidArgument, "PUBLIC_KEY_INVALID",
                     "not a PEM Ed25519 key");
  }
  absl::StatusOr<std::string> raw = RawPublic(pkey);
  EVP_PKEY_free(pkey);
  return raw;
}

}  // namespace qunzu::audit
