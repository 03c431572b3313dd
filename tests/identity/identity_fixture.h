// A fresh identity schema on the test MariaDB (and optionally the test
// Redis) with an IdentityLogic over it, a fake clock and test keys; shared
// by the identity integration tests.
#ifndef QUNZU_TESTS_IDENTITY_IDENTITY_FIXTURE_H_
#define QUNZU_TESTS_IDENTITY_IDENTITY_FIXTURE_H_

#include <cppconn/resultset.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "common/redis.h"
#include "services/identity/account_store.h"
#include "services/identity/identity_logic.h"
#include "services/identity/pii_crypto.h"
#include "services/identity/projections.h"
#include "tests/test_support.h"

namespace qunzu::identity {

inline const std::string kKeysV1 =
    "hmac " + std::string(64, 'a') + "\nkey 1 " + std::string(64, '1') + "\n";
inline const std::string kKeysV2 = kKeysV1 + "key 2 " + std::string(64, '2') + "\n";
// 11010519491231002X and other checksum-valid numbers used by the tests.
inline constexpr char kIdNumber[] = "11010519491231002X";
inline constexpr char kLegalName[] = "王小明";

// A verifier the test steers.
class ScriptedVerifier final : public Verifier {
 public:
  absl::StatusOr<Decision> Verify(const Evidence& /*e*/, const std::string& /*id*/) override {
    ++calls;
    if (!fail.ok()) return fail;
    return Decision{
        match, match ? v1::REJECTION_REASON_UNSPECIFIED : v1::REJECTION_REASON_NAME_ID_MISMATCH,
        "ref-1"};
  }
  std::string name() const override { return "scripted"; }
  bool match = true;
  absl::Status fail;
  std::atomic<int> calls{0};
};

class IdentityFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(testing::MysqlDsnOrDie());
    ASSERT_TRUE(options.ok()) << options.status();
    schema_ = testing::UniqueName("identity");
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(*options, schema_, 16);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    ASSERT_TRUE(ApplyMigrations(*pool_, "identity", IdentityMigrations()).ok());
    // Redis is shared by parallel tests: start account ids at a random offset.
    std::random_device random;
    first_id_ = (static_cast<uint64_t>(random()) % 1000000000ULL + 1) * 1000;
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(
        Execute(**lease, absl::StrCat("ALTER TABLE accounts AUTO_INCREMENT = ", first_id_)).ok());
    UseKeys(kKeysV1);
  }

  void TearDown() override {
    logic_.reset();
    if (!pool_) return;
    auto lease = pool_->Acquire(absl::Seconds(5));
    if (lease.ok()) (void)Execute(**lease, "DROP DATABASE `" + schema_ + "`");
  }

  void UseRedis() {
    RedisOptions options;
    options.address = testing::RedisAddrOrDie();
    redis_ = RedisClient::Create(options).value();
    projections_ = std::make_unique<RedisProjectionWriter>(*redis_);
    Rebuild();
  }

  // (Re)builds the logic with these keys.
  void UseKeys(const std::string& keys) {
    crypto_ = std::make_unique<PiiCrypto>(PiiCrypto::Parse(keys).value());
    Rebuild();
  }

  void Rebuild() {
    logic_ = std::make_unique<IdentityLogic>(IdentityDeps{*pool_, projections_.get(), clock_,
                                                          *crypto_, verifier_, options_,
                                                          [this] { ++wakes_; }, &metrics_});
  }

  static RequestContext As(common::v1::Role role, absl::string_view method = "Test") {
    return {Caller{absl::StrCat("test-", common::v1::Role_Name(role)), role, ""},
            "ipv4:203.0.113.7:5000", absl::StrCat("/qunzu.identity.v1.IdentityService/", method)};
  }
  static RequestContext Platform(absl::string_view method = "Test") {
    return As(common::v1::ROLE_PLATFORM, method);
  }

  uint64_t NewAccount(const std::string& phone = "") {
    v1::CreateAccountRequest req;
    req.set_request_id(testing::UniqueName("create"));
    req.set_nickname("小明");
    req.set_phone(phone);
    absl::StatusOr<v1::CreateAccountResponse> r =
        logic_->CreateAccount(Platform("CreateAccount"), req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->account().account_id() : 0;
  }

  absl::StatusOr<v1::SubmitRealNameResponse> SubmitId(uint64_t account,
                                                      const std::string& id = kIdNumber,
                                                      const std::string& name = kLegalName) {
    v1::SubmitRealNameRequest req;
    req.set_request_id(testing::UniqueName("submit"));
    req.set_actor_account_id(account);
    req.mutable_resident_identity()->set_legal_name(name);
    req.mutable_resident_identity()->set_resident_id_number(id);
    return logic_->SubmitRealName(Platform("SubmitRealName"), req);
  }

  // The value of one series of the domain metrics (-1 when absent).
  double Metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const auto& family : registry_for_metrics_.Collect()) {
      if (family.name != name) continue;
      for (const auto& metric : family.metric) {
        std::map<std::string, std::string> have;
        for (const auto& label : metric.label) have[label.name] = label.value;
        if (have == labels) return metric.counter.value;
      }
    }
    return -1;
  }

  int64_t CountRows(const std::string& sql) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    int64_t n = -1;
    EXPECT_TRUE(Query(**lease, sql, {}, [&](const sql::ResultSet& row) {
                  n = row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  std::string schema_;
  uint64_t first_id_ = 0;
  std::unique_ptr<MysqlPool> pool_;
  std::unique_ptr<RedisClient> redis_;
  std::unique_ptr<RedisProjectionWriter> projections_;
  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2026, 6, 1, 12, 0, 0), absl::UTCTimeZone())};
  std::unique_ptr<PiiCrypto> crypto_;
  ScriptedVerifier verifier_;
  IdentityOptions options_;
  std::atomic<int> wakes_{0};
  prometheus::Registry registry_for_metrics_;
  IdentityMetrics metrics_{registry_for_metrics_};
  std::unique_ptr<IdentityLogic> logic_;
};

}  // namespace qunzu::identity

#endif  // QUNZU_TESTS_IDENTITY_IDENTITY_FIXTURE_H_
