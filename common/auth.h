// Who is calling and may they: bearer tokens (kept only as SHA-256 digests)
// mapped to a principal and a role, and the per-RPC access policy declared in
// the protos with the (qunzu.common.v1.access) method option.
#ifndef QUNZU_COMMON_AUTH_H_
#define QUNZU_COMMON_AUTH_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "qunzu/common/v1/auth_config.pb.h"
#include "qunzu/common/v1/common.pb.h"

namespace qunzu {

// An authenticated caller, as recorded in audit entries.
struct Caller {
  std::string principal;
  common::v1::Role role = common::v1::ROLE_UNSPECIFIED;
  // Set for ROLE_SERVICE only.
  std::string service;
};

// Lower-case hex SHA-256 of a token, the form stored in AuthConfig.
std::string TokenDigest(absl::string_view token);

// Decides authentication and authorisation for every call a server takes.
// Immutable after construction, so safe to share across threads.
class Authorizer {
 public:
  // Validates the credentials (digest format, unique digests, a role, a
  // service name exactly for ROLE_SERVICE) and indexes the access policy of
  // every method of the named services (e.g. "qunzu.groups.v1.GroupService").
  // A method without an access option admits nobody.
  static absl::StatusOr<Authorizer> Create(const common::v1::AuthConfig& config,
                                           const std::vector<std::string>& services);

  // Authenticates the `authorization` metadata value ("Bearer <token>") and
  // checks that the caller may invoke `method` ("/pkg.Service/Method").
  // UNAUTHENTICATED (TOKEN_MISSING, TOKEN_INVALID) or PERMISSION_DENIED
  // (ROLE_NOT_ALLOWED, METHOD_NOT_DECLARED). The standard health service is
  // open to anyone (probes carry no token); reflection needs any valid token.
  absl::StatusOr<Caller> Check(absl::string_view method,
                               std::optional<absl::string_view> authorization) const;

  // The policy of a declared method, or nullptr.
  const common::v1::AccessPolicy* PolicyOf(absl::string_view method) const;

 private:
  absl::StatusOr<Caller> Authenticate(std::optional<absl::string_view> authorization) const;

  absl::flat_hash_map<std::string, Caller> callers_by_digest_;
  absl::flat_hash_map<std::string, common::v1::AccessPolicy> policies_;
};

// "ROLE_MODERATOR" -> "moderator", the label used in logs and audit entries.
std::string RoleName(common::v1::Role role);

}  // namespace qunzu

#endif  // QUNZU_COMMON_AUTH_H_
