// qunzu-credit refuses to start on a bad policy file, naming the file and
// the field (DESIGN §4 "Configuration"). Runs the built binary against the
// test MariaDB, since the policy is loaded once the schema is migrated.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/mysql_pool.h"
#include "services/credit/credit_service.h"
#include "tests/test_support.h"

namespace qunzu::credit {
namespace {

std::string BinaryPath() {
  char self[4096] = {};
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  std::string dir = n > 0 ? std::string(self, static_cast<size_t>(n)) : "";
  dir = dir.substr(0, dir.rfind('/'));  // <build>/tests
  return dir + "/../services/credit/qunzu-credit";
}

class CreditStartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = "/tmp/" + testing::UniqueName("credit_startup");
    ASSERT_EQ(std::system(("mkdir -p " + folder_).c_str()), 0);
    std::ofstream(folder_ + "/auth.textproto")
        << "credentials { principal: \"p\" role: ROLE_PLATFORM token_sha256: \""
        << std::string(64, '0') << "\" }\n";
    std::ofstream(folder_ + "/service.token") << "not-a-real-token\n";
  }
  void TearDown() override {
    std::system(("rm -rf " + folder_).c_str());
    auto options = ParseMysqlDsn(testing::MysqlDsnOrDie());
    ASSERT_TRUE(options.ok());
    auto pool = MysqlPool::Create(*options, schema_, 1);  // creates it if the binary did not
    ASSERT_TRUE(pool.ok()) << pool.status();
    auto lease = (*pool)->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    EXPECT_TRUE(Execute(**lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  // Runs the binary with `policy` as its policy file; returns its exit code
  // and fills *output with its stderr.
  int Run(const std::string& policy, std::string* output) {
    const std::string policy_file = folder_ + "/credit.textproto";
    std::ofstream(policy_file) << policy;
    const std::string log = folder_ + "/stderr.log";
    const std::string command =
        "timeout 60 " + BinaryPath() + " --listen-host=127.0.0.1 --grpc-port=0 --metrics-port=0" +
        " --auth-config=" + folder_ + "/auth.textproto --service-token-file=" + folder_ +
        "/service.token --mysql-dsn='" + testing::MysqlDsnOrDie() + "' --redis-addr='" +
        testing::RedisAddrOrDie() + "' --mysql-schema=" + schema_ +
        " --policy-file=" + policy_file + " 2>" + log;
    const int status = std::system(command.c_str());
    std::stringstream text;
    text << std::ifstream(log).rdbuf();
    *output = text.str();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  std::string folder_;
  const std::string schema_ = testing::UniqueName("credit_start");
};

TEST_F(CreditStartupTest, OverlappingThresholdsStopTheServiceNamingFileAndField) {
  std::stringstream policy;
  policy << std::ifstream(DefaultPolicyFile()).rdbuf();
  std::string text = policy.str();
  const std::string level3 = "level: 3 min_score: 700";
  ASSERT_NE(text.find(level3), std::string::npos);
  text.replace(text.find(level3), level3.size(), "level: 3 min_score: 500");
  std::string output;
  EXPECT_NE(Run(text, &output), 0);
  EXPECT_NE(output.find(folder_ + "/credit.textproto: level_rules[3].min_score"), std::string::npos)
      << output;
}

TEST_F(CreditStartupTest, UnknownEventTypeStopsTheService) {
  std::string output;
  EXPECT_NE(Run("version: \"x\"\nevent_rules { event_type: CREDIT_EVENT_TYPE_BRIBE delta: 5 }\n",
                &output),
            0);
  EXPECT_NE(output.find(folder_ + "/credit.textproto:2:"), std::string::npos) << output;
}

}  // namespace
}  // namespace qunzu::credit
