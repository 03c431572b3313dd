#include "services/identity/pii_crypto.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace qunzu::identity {
namespace {

constexpr size_t kKeyBytes = 32;
constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;

using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)>;

absl::Status KeyFileError(int line, absl::string_view problem) {
  return MakeError(absl::StatusCode::kInvalidArgument, "PII_KEYS_INVALID",
                   absl::StrCat("key file line ", line, ": ", problem));
}

absl::StatusOr<std::string> HexKey(absl::string_view hex, int line) {
  if (hex.size() != kKeyBytes * 2) return KeyFileError(line, "a key must be 64 hex digits");
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return KeyFileError(line, "a key must be 64 hex digits");
    }
  }
  return absl::HexStringToBytes(hex);
}

std::string AssociatedData(uint64_t account_id, absl::string_view field) {
  return absl::StrCat("qunzu.identity|", account_id, "|", field);
}

absl::Status CryptoError() {
  return MakeError(absl::StatusCode::kInternal, "PII_CRYPTO_FAILED", "OpenSSL failed");
}

absl::Status DecryptFailed() {
  return MakeError(absl::StatusCode::kDataLoss, "PII_DECRYPT_FAILED",
                   "an encrypted field does not authenticate for its row and field");
}

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

absl::StatusOr<PiiCrypto> PiiCrypto::Parse(absl::string_view text) {
  PiiCrypto crypto;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, absl::ByAnyChar("\n;"))) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (words[0] == "hmac" && words.size() == 2) {
      if (!crypto.hmac_key_.empty()) return KeyFileError(line_number, "a second hmac key");
      ASSIGN_OR_RETURN(crypto.hmac_key_, HexKey(words[1], line_number));
    } else if (words[0] == "key" && words.size() == 3) {
      uint32_t version = 0;
      if (!absl::SimpleAtoi(words[1], &version) || version < 1 || version > 65535) {
        return KeyFileError(line_number, "a key version must be 1..65535");
      }
      ASSIGN_OR_RETURN(std::string key, HexKey(words[2], line_number));
      if (!crypto.keys_.emplace(version, key).second) {
        return KeyFileError(line_number, "key version listed twice");
      }
    } else {
      return KeyFileError(line_number, "expected `hmac <hex>` or `key <version> <hex>`");
    }
  }
  if (crypto.keys_.empty()) return KeyFileError(line_number, "no `key` entry");
  if (crypto.hmac_key_.empty()) return KeyFileError(line_number, "no `hmac` entry");
  for (const auto& [version, key] : crypto.keys_) {
    if (key == crypto.hmac_key_) return KeyFileError(line_number, "the hmac key must differ");
  }
  return crypto;
}

absl::StatusOr<PiiCrypto> PiiCrypto::LoadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return MakeError(absl::StatusCode::kNotFound, "CONFIG_FILE_UNREADABLE",
                     "--pii-keys-file: cannot read " + path);
  }
  std::stringstream text;
  text << in.rdbuf();
  absl::StatusOr<PiiCrypto> crypto = Parse(text.str());
  if (!crypto.ok()) {
    return MakeError(crypto.status().code(), ErrorReason(crypto.status()),
                     absl::StrCat("--pii-keys-file ", path, ": ", crypto.status().message()));
  }
  return crypto;
}

uint32_t PiiCrypto::VersionOf(absl::string_view ciphertext) {
  if (ciphertext.empty() || ciphertext[0] != 'v') return 0;
  size_t colon = ciphertext.find(':');
  uint32_t version = 0;
  if (colon == absl::string_view::npos || colon > 6 ||
      !absl::SimpleAtoi(ciphertext.substr(1, colon - 1), &version)) {
    return 0;
  }
  return version;
}

absl::StatusOr<std::string> PiiCrypto::Encrypt(absl::string_view plaintext, uint64_t account_id,
                                               absl::string_view field) const {
  const uint32_t version = newest_version();
  const std::string& key = keys_.at(version);
  const std::string aad = AssociatedData(account_id, field);
  std::string out = absl::StrCat("v", version, ":");
  const size_t header = out.size();
  out.resize(header + kNonceBytes + plaintext.size() + kTagBytes);
  auto* nonce = reinterpret_cast<unsigned char*>(&out[header]);
  if (RAND_bytes(nonce, kNonceBytes) != 1) return CryptoError();
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  auto* body = nonce + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, body + plaintext.size()) !=
          1) {
    return CryptoError();
  }
  return out;
}

absl::StatusOr<std::string> PiiCrypto::Decrypt(absl::string_view ciphertext, uint64_t account_id,
                                               absl::string_view field) const {
  const uint32_t version = VersionOf(ciphertext);
  if (version == 0) return DecryptFailed();
  auto key = keys_.find(version);
  if (key == keys_.end()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "PII_KEY_UNKNOWN",
                     absl::StrCat("key version ", version, " is not loaded"));
  }
  absl::string_view rest = ciphertext.substr(ciphertext.find(':') + 1);
  if (rest.size() < kNonceBytes + kTagBytes) return DecryptFailed();
  absl::string_view nonce = rest.substr(0, kNonceBytes);
  absl::string_view body = rest.substr(kNonceBytes, rest.size() - kNonceBytes - kTagBytes);
  std::string tag(rest.substr(rest.size() - kTagBytes));
  const std::string aad = AssociatedData(account_id, field);
  std::string plain(body.size(), '\0');
  auto* out = reinterpret_cast<unsigned char*>(plain.data());
  CipherCtx ctx(EVP_CIPHER_CTX_new(), &EVP_CIPHER_CTX_free);
  int len = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, Bytes(key->second), Bytes(nonce)) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out, &len, Bytes(body), static_cast<int>(body.size())) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), out + len, &len) != 1) {
    return DecryptFailed();
  }
  return plain;
}

std::string PiiCrypto::BlindIndex(absl::string_view kind, absl::string_view value) const {
  const std::string message = absl::StrCat(kind, "|", value);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), hmac_key_.data(), static_cast<int>(hmac_key_.size()), Bytes(message),
       message.size(), digest, &length);
  return std::string(reinterpret_cast<char*>(digest), length);
}

}  // namespace qunzu::identity
