// Agreements (R5.4) against the real MariaDB, and the Redis projections
// written on change and rebuilt at start.
#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/identity/logic_util.h"
#include "tests/identity/identity_fixture.h"

namespace qunzu::identity {
namespace {

using common::v1::ROLE_OPERATOR;
using common::v1::ROLE_REGULATOR;

std::string Sha(const std::string& body) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(body.data()), body.size(), d);
  return std::string(reinterpret_cast<char*>(d), sizeof(d));
}

class IdentityAgreementLogicTest : public IdentityFixture {
 protected:
  absl::StatusOr<v1::PublishAgreementResponse> Publish(
      v1::AgreementKind kind, const std::string& body,
      absl::Duration effective_in = absl::ZeroDuration()) {
    v1::PublishAgreementRequest req;
    req.set_request_id(testing::UniqueName("publish"));
    req.set_kind(kind);
    req.set_label("2026-06");
    req.set_title("服务协议");
    req.set_body(body);
    if (effective_in != absl::ZeroDuration()) {
      *req.mutable_effective_at() = ToProto(clock_.Now() + effective_in);
    }
    return logic_->PublishAgreement(As(ROLE_OPERATOR, "PublishAgreement"), req);
  }

  absl::StatusOr<v1::AcceptAgreementResponse> Accept(uint64_t account, v1::AgreementKind kind,
                                                     uint32_t version, const std::string& body) {
    v1::AcceptAgreementRequest req;
    req.set_request_id(testing::UniqueName("accept"));
    req.set_actor_account_id(account);
    req.set_kind(kind);
    req.set_version(version);
    req.set_body_sha256(Sha(body));
    req.set_client_ip("203.0.113.9");
    return logic_->AcceptAgreement(Platform("AcceptAgreement"), req);
  }

  std::map<std::string, std::string> Projection(uint64_t account) {
    auto reply = redis_->Command({"HGETALL", projection::AccountIdentityKey(account)});
    EXPECT_TRUE(reply.ok());
    std::map<std::string, std::string> fields;
    const auto& e = reply->elements();
    for (size_t i = 0; i + 1 < e.size(); i += 2) fields[e[i].str()] = e[i + 1].str();
    return fields;
  }
};

TEST_F(IdentityAgreementLogicTest, PublishAcceptAndStatus) {
  const uint64_t account = NewAccount();
  auto v1 = Publish(v1::AGREEMENT_KIND_SERVICE_AGREEMENT, "# 协议 v1\n条款一");
  ASSERT_TRUE(v1.ok()) << v1.status();
  EXPECT_EQ(v1->agreement().version(), 1u);
  EXPECT_EQ(v1->agreement().published_by(), "test-ROLE_OPERATOR");
  EXPECT_EQ(v1->agreement().body_sha256(), Sha("# 协议 v1\n条款一"));

  v1::GetAgreementStatusRequest status_req;
  status_req.set_account_id(account);
  status_req.set_actor_account_id(account);
  auto before = logic_->GetAgreementStatus(Platform(), status_req);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE(before->accepted_current());
  ASSERT_EQ(before->current_size(), 1);
  EXPECT_TRUE(before->current(0).body().empty());

  EXPECT_EQ(ErrorReason(Accept(account, v1::AGREEMENT_KIND_SERVICE_AGREEMENT, 1, "other").status()),
            "AGREEMENT_DIGEST_MISMATCH");
  EXPECT_EQ(ErrorReason(Accept(account, v1::AGREEMENT_KIND_SERVICE_AGREEMENT, 9, "x").status()),
            "AGREEMENT_NOT_FOUND");
  auto accepted = Accept(account, v1::AGREEMENT_KIND_SERVICE_AGREEMENT, 1, "# 协议 v1\n条款一");
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  clock_.Advance(absl::Minutes(5));
  auto again = Accept(account, v1::AGREEMENT_KIND_SERVICE_AGREEMENT, 1, "# 协议 v1\n条款一");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->acceptance().accepted_at().seconds(),
            accepted->acceptance().accepted_at().seconds());

  auto after = logic_->GetAgreementStatus(As(ROLE_REGULATOR), status_req);
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->accepted_current());
  ASSERT_EQ(after->acceptances_size(), 1);
  EXPECT_EQ(after->acceptances(0).client_ip(), "203.0.113.9");

  // A newer version in force supersedes v1 and makes the account not current.
  ASSERT_TRUE(Publish(v1::AGREEMENT_KIND_SERVICE_AGREEMENT, "v2").ok());
  EXPECT_EQ(
      ErrorReason(
          Accept(account, v1::AGREEMENT_KIND_SERVICE_AGREEMENT, 1, "# 协议 v1\n条款一").status()),
      "AGREEMENT_SUPERSEDED");
  auto stale = logic_->GetAgreementStatus(As(ROLE_REGULATOR), status_req);
  EXPECT_FALSE(stale->accepted_current());
  v1::GetAccountRequest get;
  get.set_account_id(account);
  EXPECT_FALSE(logic_->GetAccount(As(ROLE_REGULATOR), get)->account().agreements_current());
}

TEST_F(IdentityAgreementLogicTest, FutureVersionIsNotCurrentYetAndPastIsRefused) {
  ASSERT_TRUE(Publish(v1::AGREEMENT_KIND_PLATFORM_CONVENTION, "v1").ok());
  auto future = Publish(v1::AGREEMENT_KIND_PLATFORM_CONVENTION, "v2", absl::Hours(24));
  ASSERT_TRUE(future.ok()) << future.status();
  auto status = logic_->GetAgreementStatus(As(ROLE_OPERATOR), {});
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->current_size(), 1);
  EXPECT_EQ(status->current(0).version(), 1u);
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(logic_->GetAgreementStatus(As(ROLE_OPERATOR), {})->current(0).version(), 2u);
  EXPECT_EQ(
      ErrorReason(Publish(v1::AGREEMENT_KIND_PLATFORM_CONVENTION, "v3", -absl::Hours(1)).status()),
      "EFFECTIVE_TIME_IN_PAST");
}

TEST_F(IdentityAgreementLogicTest, BadInputAndOwnership) {
  v1::PublishAgreementRequest empty;
  EXPECT_EQ(logic_->PublishAgreement(As(ROLE_OPERATOR), empty).status().code(),
            absl::StatusCode::kInvalidArgument);
  empty.set_request_id("p");
  EXPECT_EQ(ErrorMetadata(logic_->PublishAgreement(As(ROLE_OPERATOR), empty).status(), "field"),
            "kind");
  v1::GetAgreementStatusRequest req;
  req.set_account_id(NewAccount());
  EXPECT_EQ(logic_->GetAgreementStatus(Platform(), req).status().code(),
            absl::StatusCode::kInvalidArgument);
  req.set_actor_account_id(req.account_id() + 1);
  EXPECT_EQ(ErrorReason(logic_->GetAgreementStatus(Platform(), req).status()), "NOT_OWN_ACCOUNT");
  v1::AcceptAgreementRequest accept;
  accept.set_request_id("a");
  accept.set_actor_account_id(1);
  accept.set_kind(v1::AGREEMENT_KIND_SERVICE_AGREEMENT);
  accept.set_version(1);
  EXPECT_EQ(ErrorMetadata(logic_->AcceptAgreement(Platform(), accept).status(), "field"),
            "body_sha256");
}

TEST_F(IdentityAgreementLogicTest, ProjectionsWrittenOnChangeAndRebuiltAtStart) {
  UseRedis();
  const uint64_t account = NewAccount();
  EXPECT_EQ(Projection(account)["verified"], "0");
  EXPECT_EQ(Projection(account)["state"], "ACTIVE");
  EXPECT_EQ(Projection(account)["nickname"], "小明");
  ASSERT_TRUE(SubmitId(account).ok());
  EXPECT_EQ(Projection(account)["verified"], "1");
  ASSERT_TRUE(Publish(v1::AGREEMENT_KIND_SERVICE_AGREEMENT, "body").ok());
  ASSERT_TRUE(Accept(account, v1::AGREEMENT_KIND_SERVICE_AGREEMENT, 1, "body").ok());
  EXPECT_EQ(Projection(account)["agreement_version"], "1");
  EXPECT_EQ(Projection(account)["convention_version"], "");

  ASSERT_TRUE(redis_->Command({"DEL", projection::AccountIdentityKey(account)}).ok());
  const uint64_t other = NewAccount();
  ASSERT_TRUE(redis_->Command({"DEL", projection::AccountIdentityKey(other)}).ok());
  ASSERT_TRUE(logic_->RebuildProjections().ok());
  EXPECT_EQ(Projection(account)["verified"], "1");
  EXPECT_EQ(Projection(account)["agreement_version"], "1");
  EXPECT_EQ(Projection(account)["nickname"], "小明");
  EXPECT_EQ(Projection(other)["verified"], "0");
  (void)redis_->Command(
      {"DEL", projection::AccountIdentityKey(account), projection::AccountIdentityKey(other)});
}

// The hot path compares a sender's accepted versions with the platform's
// (R5.4): identity publishes them on PublishAgreement, with the next version
// and its effective time, and again at start. Other tests sharing this
// Redis may publish too, so each read follows its write directly.
TEST_F(IdentityAgreementLogicTest, PlatformAgreementVersionsArePublished) {
  UseRedis();
  auto platform = [&] {
    auto reply = redis_->Command({"HGETALL", projection::PlatformAgreementKey()});
    EXPECT_TRUE(reply.ok());
    std::map<std::string, std::string> fields;
    const auto& e = reply->elements();
    for (size_t i = 0; i + 1 < e.size(); i += 2) fields[e[i].str()] = e[i + 1].str();
    return fields;
  };
  ASSERT_TRUE(Publish(v1::AGREEMENT_KIND_SERVICE_AGREEMENT, "v1").ok());
  auto fields = platform();
  EXPECT_EQ(fields["agreement_version"], "1");
  EXPECT_EQ(fields["convention_version"], "");
  EXPECT_EQ(fields["next_agreement_version"], "");

  ASSERT_TRUE(Publish(v1::AGREEMENT_KIND_SERVICE_AGREEMENT, "v2", absl::Hours(24)).ok());
  fields = platform();
  EXPECT_EQ(fields["agreement_version"], "1");
  EXPECT_EQ(fields["next_agreement_version"], "2");
  EXPECT_EQ(fields["next_agreement_effective_at"],
            absl::StrCat(absl::ToUnixSeconds(clock_.Now() + absl::Hours(24))));

  ASSERT_TRUE(Publish(v1::AGREEMENT_KIND_PLATFORM_CONVENTION, "c1").ok());
  clock_.Advance(absl::Hours(25));
  ASSERT_TRUE(redis_->Command({"DEL", projection::PlatformAgreementKey()}).ok());
  ASSERT_TRUE(logic_->RebuildProjections().ok());
  fields = platform();
  EXPECT_EQ(fields["agreement_version"], "2");
  EXPECT_EQ(fields["next_agreement_version"], "");
  EXPECT_EQ(fields["convention_version"], "1");
}

}  // namespace
}  // namespace qunzu::identity
