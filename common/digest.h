// SHA-256 (OpenSSL), for digests that must be the same in every process
// and on every replica: cache keys, fingerprints of built tables.
#ifndef QUNZU_COMMON_DIGEST_H_
#define QUNZU_COMMON_DIGEST_H_

#include <string>

#include "absl/strings/string_view.h"

namespace qunzu {

// The 32 bytes of SHA-256(bytes).
std::string Sha256(absl::string_view bytes);

}  // namespace qunzu

#endif  // QUNZU_COMMON_DIGEST_H_
