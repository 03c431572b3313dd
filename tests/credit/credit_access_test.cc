// Every credit RPC's role check, as declared in credit.proto and enforced by
// the auth interceptor: each role and each calling service is admitted to
// exactly the RPCs the contract names.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "common/auth.h"
#include "qunzu/credit/v1/credit.pb.h"

namespace qunzu::credit {
namespace {

using common::v1::Role;

constexpr char kService[] = "qunzu.credit.v1.CreditService";

TEST(CreditAccess, EveryRpcAdmitsExactlyItsRoles) {
  ASSERT_NE(v1::GetCreditRequest::descriptor(), nullptr);
  common::v1::AuthConfig config;
  const std::map<std::string, std::pair<Role, std::string>> callers = {
      {"platform", {common::v1::ROLE_PLATFORM, ""}},
      {"moderator", {common::v1::ROLE_MODERATOR, ""}},
      {"compliance", {common::v1::ROLE_COMPLIANCE, ""}},
      {"regulator", {common::v1::ROLE_REGULATOR, ""}},
      {"operator", {common::v1::ROLE_OPERATOR, ""}},
      {"identity", {common::v1::ROLE_SERVICE, "identity"}},
      {"groups", {common::v1::ROLE_SERVICE, "groups"}},
      {"moderation", {common::v1::ROLE_SERVICE, "moderation"}},
      {"audit", {common::v1::ROLE_SERVICE, "audit"}},
  };
  for (const auto& [name, who] : callers) {
    auto* c = config.add_credentials();
    c->set_principal(name);
    c->set_role(who.first);
    c->set_service(who.second);
    c->set_token_sha256(TokenDigest("tok-" + name));
  }
  auto authorizer = Authorizer::Create(config, {kService});
  ASSERT_TRUE(authorizer.ok()) << authorizer.status();

  const std::map<std::string, std::set<std::string>> allowed = {
      {"GetCredit", {"platform", "moderator", "regulator", "groups", "moderation"}},
      {"RecordEvent", {"identity", "groups", "moderation"}},
      {"ApplyPenalty", {"moderation"}},
      {"LiftPenalty", {"moderation"}},
      {"ListCreditHistory", {"platform", "moderator", "regulator"}},
      {"GetPolicy", {"platform", "moderator", "operator", "regulator"}},
  };
  ASSERT_EQ(static_cast<int>(allowed.size()), v1::GetCreditRequest::descriptor()
                                                  ->file()
                                                  ->FindServiceByName("CreditService")
                                                  ->method_count());
  for (const auto& [method, roles] : allowed) {
    for (const auto& [name, who] : callers) {
      absl::Status status =
          authorizer->Check(std::string("/") + kService + "/" + method, "Bearer tok-" + name)
              .status();
      if (roles.count(name) > 0) {
        EXPECT_TRUE(status.ok()) << method << " refused " << name << ": " << status;
      } else {
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << method << " " << name;
      }
    }
    EXPECT_EQ(
        authorizer->Check(std::string("/") + kService + "/" + method, std::nullopt).status().code(),
        absl::StatusCode::kUnauthenticated);
  }
}

}  // namespace
}  // namespace qunzu::credit
