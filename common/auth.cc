#include "common/auth.h"

#include <openssl/sha.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "google/protobuf/descriptor.h"

namespace qunzu {
namespace {

using common::v1::AccessPolicy;
using common::v1::Role;

constexpr absl::string_view kHealthPrefix = "/grpc.health.v1.Health/";
constexpr absl::string_view kReflectionPrefix = "/grpc.reflection.";

absl::Status Unauthenticated(absl::string_view reason, absl::string_view message) {
  return MakeError(absl::StatusCode::kUnauthenticated, reason, message);
}

absl::Status Denied(absl::string_view reason, absl::string_view message) {
  return MakeError(absl::StatusCode::kPermissionDenied, reason, message);
}

bool IsHexDigest(absl::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

absl::Status ValidateCredential(const common::v1::Credential& c, int index) {
  const std::string where = absl::StrCat("credentials[", index, "]");
  if (c.principal().empty()) return InvalidField(where + ".principal", "must not be empty");
  if (c.role() == common::v1::ROLE_UNSPECIFIED || !common::v1::Role_IsValid(c.role())) {
    return InvalidField(where + ".role", "must be a known role");
  }
  if ((c.role() == common::v1::ROLE_SERVICE) == c.service().empty()) {
    return InvalidField(where + ".service", "is required for ROLE_SERVICE and only for it");
  }
  if (!IsHexDigest(c.token_sha256())) {
    return InvalidField(where + ".token_sha256", "must be 64 lower-case hex characters");
  }
  return absl::OkStatus();
}

bool Admits(const AccessPolicy& policy, const Caller& caller) {
  for (int role : policy.roles()) {
    if (role != caller.role) continue;
    if (caller.role != common::v1::ROLE_SERVICE) return true;
    const auto& services = policy.services();
    return std::find(services.begin(), services.end(), caller.service) != services.end();
  }
  return false;
}

}  // namespace

std::string TokenDigest(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

std::string RoleName(Role role) {
  std::string name = common::v1::Role_Name(role);
  if (absl::StartsWith(name, "ROLE_")) name = name.substr(5);
  return absl::AsciiStrToLower(name);
}

absl::StatusOr<Authorizer> Authorizer::Create(const common::v1::AuthConfig& config,
                                              const std::vector<std::string>& services) {
  Authorizer authorizer;
  for (int i = 0; i < config.credentials_size(); ++i) {
    const auto& c = config.credentials(i);
    RETURN_IF_ERROR(ValidateCredential(c, i));
    Caller caller{c.principal(), c.role(), c.service()};
    if (!authorizer.callers_by_digest_.emplace(c.token_sha256(), std::move(caller)).second) {
      return InvalidField(absl::StrCat("credentials[", i, "].token_sha256"),
                          "the same token is configured twice");
    }
  }
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const auto* service = pool->FindServiceByName(name);
    if (service == nullptr) {
      return MakeError(absl::StatusCode::kInternal, "SERVICE_NOT_LINKED",
                       "service descriptor not linked: " + name);
    }
    for (int m = 0; m < service->method_count(); ++m) {
      const auto* method = service->method(m);
      const auto& options = method->options();
      if (!options.HasExtension(common::v1::access)) continue;
      authorizer.policies_[absl::StrCat("/", name, "/", method->name())] =
          options.GetExtension(common::v1::access);
    }
  }
  return authorizer;
}

const AccessPolicy* Authorizer::PolicyOf(absl::string_view method) const {
  auto it = policies_.find(method);
  return it == policies_.end() ? nullptr : &it->second;
}

absl::StatusOr<Caller> Authorizer::Authenticate(
    std::optional<absl::string_view> authorization) const {
  if (!authorization || authorization->empty()) {
    return Unauthenticated("TOKEN_MISSING", "missing `authorization: Bearer <token>` metadata");
  }
  absl::string_view value = *authorization;
  constexpr absl::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme)) {
    return Unauthenticated("TOKEN_INVALID", "authorization must use the Bearer scheme");
  }
  auto it = callers_by_digest_.find(TokenDigest(value.substr(kScheme.size())));
  if (it == callers_by_digest_.end()) {
    return Unauthenticated("TOKEN_INVALID", "unknown bearer token");
  }
  return it->second;
}

absl::StatusOr<Caller> Authorizer::Check(absl::string_view method,
                                         std::optional<absl::string_view> authorization) const {
  if (absl::StartsWith(method, kHealthPrefix)) return Caller{"anonymous", {}, {}};
  ASSIGN_OR_RETURN(Caller caller, Authenticate(authorization));
  if (absl::StartsWith(method, kReflectionPrefix)) return caller;
  const AccessPolicy* policy = PolicyOf(method);
  if (policy == nullptr) {
    return Denied("METHOD_NOT_DECLARED", absl::StrCat(method, " declares no access policy"));
  }
  if (!Admits(*policy, caller)) {
    return Denied("ROLE_NOT_ALLOWED",
                  absl::StrCat("role ", RoleName(caller.role), " may not call ", method));
  }
  return caller;
}

}  // namespace qunzu
