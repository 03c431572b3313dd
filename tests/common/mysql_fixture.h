// The fixture the tests of common/mysql.h and common/mysql_pool.h share: a
// pool on a fresh schema of the MariaDB that `make test` starts, with a
// two-row `counters` table.
#ifndef QUNZU_TESTS_COMMON_MYSQL_FIXTURE_H_
#define QUNZU_TESTS_COMMON_MYSQL_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "tests/test_support.h"

namespace qunzu::testing {

inline constexpr absl::Duration kWait = absl::Seconds(10);

inline MysqlPool::Lease MustAcquire(MysqlPool& pool) { return pool.Acquire(kWait).value(); }

inline int64_t QueryInt(sql::Connection& conn, const std::string& statement) {
  int64_t value = -1;
  absl::Status status = Query(conn, statement, {}, [&](const sql::ResultSet& row) {
    value = row.getInt64(1);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return value;
}

class MysqlPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = ParseMysqlDsn(MysqlDsnOrDie()).value();
    // Idle connections are handed out without a ping, so a killed one is
    // only found by using it.
    options_.validate_idle_after = absl::Hours(1);
    schema_ = UniqueName("mysql");
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(options_, schema_, 4);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    MysqlPool::Lease lease = MustAcquire(*pool_);
    ASSERT_TRUE(
        Execute(*lease, "CREATE TABLE counters (id INT PRIMARY KEY, v BIGINT NOT NULL)").ok());
    ASSERT_TRUE(Execute(*lease, "INSERT INTO counters VALUES (1, 0), (2, 0)").ok());
  }

  void TearDown() override {
    if (pool_ == nullptr) return;
    MysqlPool::Lease lease = MustAcquire(*pool_);
    EXPECT_TRUE(Execute(*lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  int64_t Count(const std::string& table) {
    MysqlPool::Lease lease = MustAcquire(*pool_);
    return QueryInt(*lease, "SELECT COUNT(*) FROM " + table);
  }

  MysqlOptions options_;
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
};

}  // namespace qunzu::testing

#endif  // QUNZU_TESTS_COMMON_MYSQL_FIXTURE_H_
