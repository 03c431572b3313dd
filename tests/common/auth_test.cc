#include "common/auth.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "qunzu/testing/v1/testing.pb.h"

namespace qunzu {
namespace {

using common::v1::AuthConfig;
using common::v1::Role;

constexpr char kService[] = "qunzu.testing.v1.TestService";

void AddCredential(AuthConfig& config, const std::string& principal, Role role,
                   const std::string& token, const std::string& service = "") {
  auto* c = config.add_credentials();
  c->set_principal(principal);
  c->set_role(role);
  c->set_service(service);
  c->set_token_sha256(TokenDigest(token));
}

class AuthorizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Links the test service's descriptor into the generated pool.
    ASSERT_NE(testing::v1::EchoRequest::descriptor(), nullptr);
    AuthConfig config;
    AddCredential(config, "chat-backend", common::v1::ROLE_PLATFORM, "tok-platform");
    AddCredential(config, "mia", common::v1::ROLE_MODERATOR, "tok-moderator");
    AddCredential(config, "inspector", common::v1::ROLE_REGULATOR, "tok-regulator");
    AddCredential(config, "cora", common::v1::ROLE_COMPLIANCE, "tok-compliance");
    AddCredential(config, "ops", common::v1::ROLE_OPERATOR, "tok-operator");
    AddCredential(config, "service:groups", common::v1::ROLE_SERVICE, "tok-groups", "groups");
    AddCredential(config, "service:credit", common::v1::ROLE_SERVICE, "tok-credit", "credit");
    auto authorizer = Authorizer::Create(config, {kService});
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = *std::move(authorizer);
  }

  absl::Status Call(const std::string& method, const std::string& token) {
    return authorizer_.Check(std::string("/") + kService + "/" + method, "Bearer " + token)
        .status();
  }

  Authorizer authorizer_;
};

TEST(TokenDigest, IsHexSha256) {
  EXPECT_EQ(TokenDigest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_F(AuthorizerTest, MissingOrBadTokenIsUnauthenticated) {
  auto missing = authorizer_.Check("/qunzu.testing.v1.TestService/PlatformEcho", std::nullopt);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ErrorReason(missing.status()), "TOKEN_MISSING");
  EXPECT_EQ(ErrorReason(Call("PlatformEcho", "wrong")), "TOKEN_INVALID");
  auto basic = authorizer_.Check("/qunzu.testing.v1.TestService/PlatformEcho",
                                 absl::string_view("Basic dG9rLXBsYXRmb3Jt"));
  EXPECT_EQ(ErrorReason(basic.status()), "TOKEN_INVALID");
  auto empty =
      authorizer_.Check("/qunzu.testing.v1.TestService/PlatformEcho", absl::string_view("Bearer "));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthorizerTest, RoleMatrix) {
  struct Case {
    std::string method;
    std::string token;
    bool allowed;
  };
  const std::vector<Case> cases = {
      {"PlatformEcho", "tok-platform", true},    {"PlatformEcho", "tok-moderator", false},
      {"PlatformEcho", "tok-regulator", false},  {"PlatformEcho", "tok-groups", false},
      {"StaffEcho", "tok-moderator", true},      {"StaffEcho", "tok-regulator", true},
      {"StaffEcho", "tok-compliance", false},    {"StaffEcho", "tok-operator", false},
      {"StaffEcho", "tok-platform", false},      {"ServiceEcho", "tok-groups", true},
      {"ServiceEcho", "tok-credit", false},      {"ServiceEcho", "tok-operator", false},
      {"UndeclaredEcho", "tok-operator", false}, {"UndeclaredEcho", "tok-groups", false},
  };
  for (const Case& c : cases) {
    absl::Status s = Call(c.method, c.token);
    if (c.allowed) {
      EXPECT_TRUE(s.ok()) << c.method << " " << c.token << ": " << s;
    } else {
      EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << c.method << " " << c.token;
    }
  }
  EXPECT_EQ(ErrorReason(Call("UndeclaredEcho", "tok-operator")), "METHOD_NOT_DECLARED");
  EXPECT_EQ(ErrorReason(Call("StaffEcho", "tok-platform")), "ROLE_NOT_ALLOWED");
}

TEST_F(AuthorizerTest, ReturnsTheCaller) {
  auto caller = authorizer_.Check("/qunzu.testing.v1.TestService/ServiceEcho",
                                  absl::string_view("bearer tok-groups"));
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->principal, "service:groups");
  EXPECT_EQ(caller->role, common::v1::ROLE_SERVICE);
  EXPECT_EQ(caller->service, "groups");
}

TEST_F(AuthorizerTest, HealthIsOpenReflectionNeedsAToken) {
  EXPECT_TRUE(authorizer_.Check("/grpc.health.v1.Health/Check", std::nullopt).ok());
  auto reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  EXPECT_EQ(authorizer_.Check(reflection, std::nullopt).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(authorizer_.Check(reflection, absl::string_view("Bearer tok-regulator")).ok());
}

TEST_F(AuthorizerTest, UnknownMethodIsDenied) {
  EXPECT_EQ(authorizer_.Check("/qunzu.other.v1.X/Y", absl::string_view("Bearer tok-operator"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(AuthorizerConfig, RejectsBadCredentials) {
  ASSERT_NE(testing::v1::EchoRequest::descriptor(), nullptr);
  auto expect_bad = [](const AuthConfig& config, const std::string& field) {
    auto result = Authorizer::Create(config, {kService});
    ASSERT_FALSE(result.ok()) << field;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorMetadata(result.status(), "field"), field);
  };
  AuthConfig no_principal;
  AddCredential(no_principal, "", common::v1::ROLE_PLATFORM, "t");
  expect_bad(no_principal, "credentials[0].principal");

  AuthConfig no_role;
  AddCredential(no_role, "p", common::v1::ROLE_UNSPECIFIED, "t");
  expect_bad(no_role, "credentials[0].role");

  AuthConfig service_without_name;
  AddCredential(service_without_name, "p", common::v1::ROLE_SERVICE, "t");
  expect_bad(service_without_name, "credentials[0].service");

  AuthConfig name_without_service_role;
  AddCredential(name_without_service_role, "p", common::v1::ROLE_PLATFORM, "t", "groups");
  expect_bad(name_without_service_role, "credentials[0].service");

  AuthConfig bad_digest;
  AddCredential(bad_digest, "p", common::v1::ROLE_PLATFORM, "t");
  bad_digest.mutable_credentials(0)->set_token_sha256("ABC");
  expect_bad(bad_digest, "credentials[0].token_sha256");

  AuthConfig duplicate;
  AddCredential(duplicate, "p", common::v1::ROLE_PLATFORM, "same");
  AddCredential(duplicate, "q", common::v1::ROLE_OPERATOR, "same");
  expect_bad(duplicate, "credentials[1].token_sha256");
}

TEST(AuthorizerConfig, UnknownServiceIsAnError) {
  EXPECT_FALSE(Authorizer::Create({}, {"qunzu.nope.v1.Nope"}).ok());
}

TEST(RoleName, IsLowerCaseWithoutPrefix) {
  EXPECT_EQ(RoleName(common::v1::ROLE_REGULATOR), "regulator");
  EXPECT_EQ(RoleName(common::v1::ROLE_SERVICE), "service");
}

}  // namespace
}  // namespace qunzu
