// The identity service over gRPC, behind the real auth interceptor: the
// role check of every RPC for every role, and the ownership and field
// errors a caller sees.
#include "services/identity/identity_service.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <functional>
#include <map>

#include "common/auth.h"
#include "common/server.h"
#include "common/status.h"
#include "tests/identity/identity_fixture.h"

namespace qunzu::identity {
namespace {

using common::v1::Role;

constexpr char kService[] = "qunzu.identity.v1.IdentityService";

struct Who {
  Role role;
  std::string service;  // for ROLE_SERVICE
  std::string token;
};

const std::vector<Who>& Everyone() {
  static const auto* who = new std::vector<Who>{{common::v1::ROLE_PLATFORM, "", "tok-platform"},
                                                {common::v1::ROLE_MODERATOR, "", "tok-moderator"},
                                                {common::v1::ROLE_COMPLIANCE, "", "tok-compliance"},
                                                {common::v1::ROLE_REGULATOR, "", "tok-regulator"},
                                                {common::v1::ROLE_OPERATOR, "", "tok-operator"},
                                                {common::v1::ROLE_SERVICE, "groups", "tok-groups"},
                                                {common::v1::ROLE_SERVICE, "credit", "tok-credit"}};
  return *who;
}

class IdentityServiceTest : public IdentityFixture {
 protected:
  void SetUp() override {
    IdentityFixture::SetUp();
    common::v1::AuthConfig config;
    for (const Who& who : Everyone()) {
      auto* c = config.add_credentials();
      c->set_principal(who.token);
      c->set_role(who.role);
      c->set_service(who.service);
      c->set_token_sha256(TokenDigest(who.token));
    }
    auto authorizer = Authorizer::Create(config, {kService});
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    authorizer_ = std::make_shared<const Authorizer>(*std::move(authorizer));
    service_ = std::make_unique<IdentityServiceImpl>(*logic_);
    GrpcServer::Options options;
    options.address = "127.0.0.1:0";
    options.authorizer = authorizer_;
    options.registry = &registry_;
    auto server = GrpcServer::Start(options, {service_.get()}, {kService});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::IdentityService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    server_->Shutdown(absl::Seconds(1));
    IdentityFixture::TearDown();
  }

  template <typename Request, typename Response>
  using Method = grpc::Status (v1::IdentityService::Stub::*)(grpc::ClientContext*, const Request&,
                                                             Response*);

  template <typename Request, typename Response>
  absl::Status Call(Method<Request, Response> method, const std::string& token,
                    const Request& request, Response* response = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context.AddMetadata("authorization", "Bearer " + token);
    Response ignored;
    return FromGrpcStatus(
        (stub_.get()->*method)(&context, request, response ? response : &ignored));
  }

  // Each RPC with an empty request, by its name.
  std::map<std::string, std::function<absl::Status(const std::string&)>> EmptyCalls() {
    using S = v1::IdentityService::Stub;
    return {
        {"CreateAccount",
         [&](auto& t) { return Call(&S::CreateAccount, t, v1::CreateAccountRequest()); }},
        {"GetAccount", [&](auto& t) { return Call(&S::GetAccount, t, v1::GetAccountRequest()); }},
        {"SubmitRealName",
         [&](auto& t) { return Call(&S::SubmitRealName, t, v1::SubmitRealNameRequest()); }},
        {"GetVerification",
         [&](auto& t) { return Call(&S::GetVerification, t, v1::GetVerificationRequest()); }},
        {"RevealIdentity",
         [&](auto& t) { return Call(&S::RevealIdentity, t, v1::RevealIdentityRequest()); }},
        {"PublishAgreement",
         [&](auto& t) { return Call(&S::PublishAgreement, t, v1::PublishAgreementRequest()); }},
        {"AcceptAgreement",
         [&](auto& t) { return Call(&S::AcceptAgreement, t, v1::AcceptAgreementRequest()); }},
        {"GetAgreementStatus",
         [&](auto& t) { return Call(&S::GetAgreementStatus, t, v1::GetAgreementStatusRequest()); }},
    };
  }

  bool Allowed(const std::string& rpc, const Who& who) {
    const common::v1::AccessPolicy* policy =
        authorizer_->PolicyOf(absl::StrCat("/", kService, "/", rpc));
    if (policy == nullptr) return false;
    for (int role : policy->roles()) {
      if (role != who.role) continue;
      if (who.role != common::v1::ROLE_SERVICE) return true;
      for (const std::string& s : policy->services()) {
        if (s == who.service) return true;
      }
    }
    return false;
  }

  prometheus::Registry registry_;
  std::shared_ptr<const Authorizer> authorizer_;
  std::unique_ptr<IdentityServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<v1::IdentityService::Stub> stub_;
};

TEST_F(IdentityServiceTest, EveryRpcChecksTheRoleAndValidatesBeforeOwnership) {
  int allowed = 0;
  for (auto& [rpc, call] : EmptyCalls()) {
    for (const Who& who : Everyone()) {
      absl::Status status = call(who.token);
      if (Allowed(rpc, who)) {
        ++allowed;
        EXPECT_NE(status.code(), absl::StatusCode::kPermissionDenied) << rpc << " " << who.token;
        EXPECT_NE(status.code(), absl::StatusCode::kUnauthenticated) << rpc << " " << who.token;
        EXPECT_NE(status.code(), absl::StatusCode::kInternal) << rpc << " " << who.token;
      } else {
        EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << rpc << " " << who.token;
      }
    }
  }
  EXPECT_EQ(allowed, 18);  // the (role, service) pairs identity.proto admits
  // Only compliance and the regulator may reveal; the platform may not.
  EXPECT_FALSE(Allowed("RevealIdentity", Everyone()[0]));
  EXPECT_FALSE(Allowed("RevealIdentity", Everyone()[1]));
}

TEST_F(IdentityServiceTest, FlowOverGrpcWithOwnershipAndFieldErrors) {
  using S = v1::IdentityService::Stub;
  v1::CreateAccountRequest create;
  create.set_request_id("c1");
  create.set_nickname("小明");
  v1::CreateAccountResponse created;
  ASSERT_TRUE(Call(&S::CreateAccount, "tok-platform", create, &created).ok());
  const uint64_t account = created.account().account_id();

  v1::SubmitRealNameRequest submit;
  submit.set_request_id("s1");
  submit.set_actor_account_id(account);
  submit.mutable_resident_identity()->set_legal_name(kLegalName);
  submit.mutable_resident_identity()->set_resident_id_number("11010519491231002Y");
  absl::Status bad = Call(&S::SubmitRealName, "tok-platform", submit);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorMetadata(bad, "field"), "resident_identity.resident_id_number");
  EXPECT_EQ(bad.message().find("11010519491231002"), absl::string_view::npos);
  submit.mutable_resident_identity()->set_resident_id_number(kIdNumber);
  v1::SubmitRealNameResponse verified;
  ASSERT_TRUE(Call(&S::SubmitRealName, "tok-platform", submit, &verified).ok());
  EXPECT_EQ(verified.verification().masked().resident_id_number(), "110***********002X");

  v1::GetVerificationRequest get;
  get.set_account_id(account);
  get.set_actor_account_id(account + 1);
  absl::Status other = Call(&S::GetVerification, "tok-platform", get);
  EXPECT_EQ(other.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(ErrorReason(other), "NOT_OWN_ACCOUNT");

  v1::RevealIdentityRequest reveal;
  reveal.set_account_id(account);
  reveal.set_case_reference("report:1");
  reveal.set_reason("lawful request");
  v1::RevealIdentityResponse clear;
  ASSERT_TRUE(Call(&S::RevealIdentity, "tok-regulator", reveal, &clear).ok());
  EXPECT_EQ(clear.identity().legal_name(), kLegalName);
  EXPECT_EQ(Call(&S::RevealIdentity, "tok-platform", reveal).code(),
            absl::StatusCode::kPermissionDenied);

  v1::GetAccountRequest public_view;
  public_view.set_account_id(account);
  v1::GetAccountResponse seen;
  ASSERT_TRUE(Call(&S::GetAccount, "tok-groups", public_view, &seen).ok());
  EXPECT_TRUE(seen.account().verified());
  EXPECT_EQ(seen.DebugString().find("王"), std::string::npos);
}

}  // namespace
}  // namespace qunzu::identity
