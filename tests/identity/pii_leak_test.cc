// R6.3: after a realistic run (accounts with phones, verifications by ID
// and by phone, rejected and malformed attempts, reveals, agreements),
// nothing in MySQL, Redis or the logs holds a checksum-valid resident ID
// number, a phone number or a legal name in clear.
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/projection_keys.h"
#include "common/status.h"
#include "services/identity/validators.h"
#include "tests/identity/identity_fixture.h"

namespace qunzu::identity {
namespace {

class CapturingSink final : public LogSink {
 public:
  void Write(absl::string_view line) override {
    absl::MutexLock lock(&mu_);
    text_.append(line.data(), line.size());
  }
  std::string text() {
    absl::MutexLock lock(&mu_);
    return text_;
  }

 private:
  absl::Mutex mu_;
  std::string text_;
};

// Every 18-character window that is a checksum-valid resident ID number.
std::vector<std::string> ValidIdNumbersIn(const std::string& haystack) {
  std::vector<std::string> found;
  for (size_t i = 0; i + 18 <= haystack.size(); ++i) {
    bool digits = true;
    for (size_t k = i; k < i + 17 && digits; ++k)
      digits = absl::ascii_isdigit(static_cast<unsigned char>(haystack[k]));
    if (!digits) continue;
    const char last = haystack[i + 17];
    if (last == ResidentIdCheckCharacter(haystack.substr(i, 17)) &&
        IsKnownProvinceCode(haystack.substr(i, 2))) {
      found.push_back(haystack.substr(i, 18));
    }
  }
  return found;
}

class IdentityPiiLeakTest : public IdentityFixture {
 protected:
  std::string DumpMysql() {
    auto lease = pool_->Acquire(absl::Seconds(5));
    std::vector<std::string> tables;
    EXPECT_TRUE(Query(**lease,
                      "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                      {schema_},
                      [&](const sql::ResultSet& row) {
                        tables.push_back(row.getString(1));
                        return absl::OkStatus();
                      })
                    .ok());
    EXPECT_GE(tables.size(), 6u);
    std::string dump;
    for (const std::string& table : tables) {
      EXPECT_TRUE(
          Query(**lease, "SELECT * FROM `" + table + "`", {}, [&](const sql::ResultSet& row) {
            const unsigned columns = row.getMetaData()->getColumnCount();
            for (unsigned c = 1; c <= columns; ++c) {
              if (!row.isNull(c)) dump += std::string(row.getString(c)) + "\n";
            }
            return absl::OkStatus();
          }).ok());
    }
    return dump;
  }

  std::string DumpRedis(const std::vector<uint64_t>& accounts) {
    std::string dump;
    for (uint64_t account : accounts) {
      auto reply = redis_->Command({"HGETALL", projection::AccountIdentityKey(account)});
      EXPECT_TRUE(reply.ok());
      EXPECT_FALSE(reply->elements().empty());
      for (const RedisReply& e : reply->elements()) dump += e.str() + "\n";
    }
    return dump;
  }
};

TEST_F(IdentityPiiLeakTest, NoPersonalDataInClearAfterARealisticRun) {
  auto sink = std::make_shared<CapturingSink>();
  InitLogging({"identity", LogLevel::kDebug, sink, nullptr});
  UseRedis();
  const std::vector<std::string> ids = {kIdNumber, "310104198001011239", "440306199003070037"};
  ASSERT_TRUE(ValidateResidentId(ids[1], clock_.Now(), "f").ok());
  ASSERT_TRUE(ValidateResidentId(ids[2], clock_.Now(), "f").ok());
  const std::vector<std::string> names = {kLegalName, "阿依古丽·买买提", "Anne-Marie Smith"};
  const std::vector<std::string> phones = {"13812341234", "15987654321", "18600001111"};

  std::vector<uint64_t> accounts;
  accounts.reserve(4);
  for (int i = 0; i < 3; ++i) accounts.push_back(NewAccount(phones[i]));
  ASSERT_TRUE(SubmitId(accounts[0], ids[0], names[0]).ok());
  verifier_.match = false;
  ASSERT_TRUE(SubmitId(accounts[1], ids[1], names[1]).ok());  // rejected
  verifier_.match = true;
  ASSERT_TRUE(SubmitId(accounts[1], ids[1], names[1]).ok());
  EXPECT_FALSE(SubmitId(accounts[2], ids[2].substr(0, 17) + "0", names[2]).ok());  // bad check
  verifier_.fail = MakeError(absl::StatusCode::kUnavailable, "DOWN", "provider down");
  EXPECT_FALSE(SubmitId(accounts[2], ids[2], names[2]).ok());
  verifier_.fail = absl::OkStatus();
  ASSERT_TRUE(SubmitId(accounts[2], ids[2], names[2]).ok());
  v1::SubmitRealNameRequest by_phone;
  by_phone.set_request_id("phone");
  by_phone.set_actor_account_id(NewAccount());
  by_phone.mutable_real_name_phone()->set_phone("17712345678");
  ASSERT_TRUE(logic_->SubmitRealName(Platform("SubmitRealName"), by_phone).ok());
  accounts.push_back(by_phone.actor_account_id());
  for (uint64_t account : accounts) {
    v1::RevealIdentityRequest reveal;
    reveal.set_account_id(account);
    reveal.set_case_reference("case-1");
    reveal.set_reason("inspection");
    ASSERT_TRUE(logic_->RevealIdentity(As(common::v1::ROLE_COMPLIANCE), reveal).ok());
    v1::GetVerificationRequest get;
    get.set_account_id(account);
    ASSERT_TRUE(logic_->GetVerification(As(common::v1::ROLE_REGULATOR), get).ok());
  }
  ASSERT_TRUE(logic_->ReencryptAll().ok());

  const std::string mysql = DumpMysql();
  const std::string redis = DumpRedis(accounts);
  const std::string logs = sink->text();
  InitLogging({"identity", LogLevel::kInfo, nullptr, nullptr});
  EXPECT_NE(logs.find("verifier_failed"), std::string::npos) << "logs were captured";
  EXPECT_GT(mysql.size(), 1000u);
  // The detector finds what it looks for.
  EXPECT_EQ(ValidIdNumbersIn("x" + ids[2] + "y"), std::vector<std::string>{ids[2]});
  const std::vector<std::pair<std::string, const std::string*>> dumps = {
      {"mysql", &mysql}, {"redis", &redis}, {"logs", &logs}};
  for (const auto& [where, dump] : dumps) {
    EXPECT_TRUE(ValidIdNumbersIn(*dump).empty()) << where << ": " << ValidIdNumbersIn(*dump)[0];
    for (const std::string& value : ids) EXPECT_FALSE(absl::StrContains(*dump, value)) << where;
    for (const std::string& value : names) EXPECT_FALSE(absl::StrContains(*dump, value)) << where;
    for (const std::string& value : phones) EXPECT_FALSE(absl::StrContains(*dump, value)) << where;
    EXPECT_FALSE(absl::StrContains(*dump, "17712345678")) << where;
  }
}

}  // namespace
}  // namespace qunzu::identity
