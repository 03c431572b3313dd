// The credit service through the real gRPC stack (auth and metrics
// interceptors, handlers, status mapping) against MariaDB and Redis: every
// RPC's role check with an empty request, and a verification read back by
// the platform for its own user only.
#include "services/credit/credit_service.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/auth.h"
#include "common/migrations.h"
#include "common/server.h"
#include "common/status.h"
#include "tests/test_support.h"

namespace qunzu::credit {
namespace {

using Stub = v1::CreditService::Stub;
using Call = std::function<grpc::Status(Stub&, grpc::ClientContext*)>;

const std::map<std::string, std::pair<common::v1::Role, std::string>>& Callers() {
  static const auto* callers = new std::map<std::string, std::pair<common::v1::Role, std::string>>{
      {"platform", {common::v1::ROLE_PLATFORM, ""}},
      {"moderator", {common::v1::ROLE_MODERATOR, ""}},
      {"compliance", {common::v1::ROLE_COMPLIANCE, ""}},
      {"regulator", {common::v1::ROLE_REGULATOR, ""}},
      {"operator", {common::v1::ROLE_OPERATOR, ""}},
      {"identity", {common::v1::ROLE_SERVICE, "identity"}},
      {"groups", {common::v1::ROLE_SERVICE, "groups"}},
      {"moderation", {common::v1::ROLE_SERVICE, "moderation"}},
  };
  return *callers;
}

class CreditServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto options = ParseMysqlDsn(testing::MysqlDsnOrDie());
    ASSERT_TRUE(options.ok());
    schema_ = testing::UniqueName("credit_svc");
    auto pool = MysqlPool::Create(*options, schema_, 8);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    ASSERT_TRUE(ApplyMigrations(*pool_, "credit", CreditServiceMigrations()).ok());
    RedisOptions redis_options;
    redis_options.address = testing::RedisAddrOrDie();
    auto redis = RedisClient::Create(redis_options);
    ASSERT_TRUE(redis.ok());
    redis_ = *std::move(redis);
    auto proto = LoadCreditPolicy(DefaultPolicyFile());
    ASSERT_TRUE(proto.ok());
    auto policy = Policy::Create(*proto, "default");
    ASSERT_TRUE(policy.ok());
    service_ = std::make_unique<CreditServiceImpl>(*pool_, *redis_, registry_, *std::move(policy),
                                                   SystemClock::Get());

    common::v1::AuthConfig config;
    for (const auto& [name, who] : Callers()) {
      auto* c = config.add_credentials();
      c->set_principal(name);
      c->set_role(who.first);
      c->set_service(who.second);
      c->set_token_sha256(TokenDigest("tok-" + name));
    }
    auto authorizer = Authorizer::Create(config, {"qunzu.credit.v1.CreditService"});
    ASSERT_TRUE(authorizer.ok()) << authorizer.status();
    GrpcServer::Options server_options;
    server_options.address = "127.0.0.1:0";
    server_options.authorizer = std::make_shared<const Authorizer>(*std::move(authorizer));
    server_options.registry = &registry_;
    auto server =
        GrpcServer::Start(server_options, {service_.get()}, {"qunzu.credit.v1.CreditService"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = v1::CreditService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(server_->port()), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(1));
    service_.reset();
    if (!pool_) return;
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    EXPECT_TRUE(Execute(**lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  grpc::Status As(const std::string& caller, const Call& call) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer tok-" + caller);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return call(*stub_, &context);
  }

  prometheus::Registry registry_;
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<CreditServiceImpl> service_;
  std::unique_ptr<GrpcServer> server_;
  std::unique_ptr<Stub> stub_;
};

TEST_F(CreditServiceTest, EveryRpcChecksTheCallersRoleBeforeAnythingElse) {
  const std::map<std::string, std::pair<std::set<std::string>, Call>> rpcs = {
      {"GetCredit",
       {{"platform", "moderator", "regulator", "groups", "moderation"},
        [](Stub& s, grpc::ClientContext* c) {
          v1::GetCreditResponse r;
          return s.GetCredit(c, {}, &r);
        }}},
      {"RecordEvent",
       {{"identity", "groups", "moderation"},
        [](Stub& s, grpc::ClientContext* c) {
          v1::RecordEventResponse r;
          return s.RecordEvent(c, {}, &r);
        }}},
      {"ApplyPenalty",
       {{"moderation"},
        [](Stub& s, grpc::ClientContext* c) {
          v1::ApplyPenaltyResponse r;
          return s.ApplyPenalty(c, {}, &r);
        }}},
      {"LiftPenalty",
       {{"moderation"},
        [](Stub& s, grpc::ClientContext* c) {
          v1::LiftPenaltyResponse r;
          return s.LiftPenalty(c, {}, &r);
        }}},
      {"ListCreditHistory",
       {{"platform", "moderator", "regulator"},
        [](Stub& s, grpc::ClientContext* c) {
          v1::ListCreditHistoryResponse r;
          return s.ListCreditHistory(c, {}, &r);
        }}},
      {"GetPolicy",
       {{"platform", "moderator", "operator", "regulator"},
        [](Stub& s, grpc::ClientContext* c) {
          v1::GetPolicyResponse r;
          return s.GetPolicy(c, {}, &r);
        }}},
  };
  for (const auto& [method, spec] : rpcs) {
    for (const auto& [caller, unused] : Callers()) {
      const grpc::Status status = As(caller, spec.second);
      if (spec.first.count(caller) == 0) {
        EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED) << method << caller;
      } else if (method == "GetPolicy") {
        EXPECT_TRUE(status.ok()) << method << " " << caller << ": " << status.error_message();
      } else {
        // An allowed caller with an empty request learns what is missing.
        EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
            << method << " " << caller << ": " << status.error_message();
      }
    }
    EXPECT_EQ(As("nobody", spec.second).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
}

TEST_F(CreditServiceTest, VerificationIsReadBackByThePlatformForItsOwnUserOnly) {
  v1::RecordEventRequest event;
  event.set_request_id("identity:verified:77");
  event.set_account_id(77);
  event.set_event_type(v1::CREDIT_EVENT_TYPE_IDENTITY_VERIFIED);
  grpc::Status recorded = As("identity", [&](Stub& s, grpc::ClientContext* c) {
    v1::RecordEventResponse r;
    return s.RecordEvent(c, event, &r);
  });
  ASSERT_TRUE(recorded.ok()) << recorded.error_message();
  grpc::Status wrong = As("groups", [&](Stub& s, grpc::ClientContext* c) {
    v1::RecordEventResponse r;
    return s.RecordEvent(c, event, &r);
  });
  EXPECT_EQ(ErrorReason(FromGrpcStatus(wrong)), "EVENT_TYPE_NOT_ALLOWED_FOR_CALLER");

  v1::GetCreditRequest own;
  own.set_account_id(77);
  own.set_actor_account_id(77);
  v1::GetCreditResponse response;
  grpc::Status read = As(
      "platform", [&](Stub& s, grpc::ClientContext* c) { return s.GetCredit(c, own, &response); });
  ASSERT_TRUE(read.ok()) << read.error_message();
  EXPECT_EQ(response.status().score(), 600u);
  EXPECT_EQ(response.status().level(), 2u);
  EXPECT_EQ(response.status().entitlements().groups_may_join(), 500u);

  own.set_actor_account_id(78);
  grpc::Status other = As("platform", [&](Stub& s, grpc::ClientContext* c) {
    v1::GetCreditResponse r;
    return s.GetCredit(c, own, &r);
  });
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ErrorReason(FromGrpcStatus(other)), "NOT_OWN_ACCOUNT");
}

}  // namespace
}  // namespace qunzu::credit
