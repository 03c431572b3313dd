// A fixture for the tests of MySQL tables: a pool on a fresh schema of the
// MariaDB that `make test` starts, with CommonMigrations() applied (outbox,
// idempotency keys), dropped afterwards. A service's tests apply their own
// migrations on top in SetUp (the moderation stores and case tests do).
#ifndef QUNZU_TESTS_COMMON_COMMON_SCHEMA_FIXTURE_H_
#define QUNZU_TESTS_COMMON_COMMON_SCHEMA_FIXTURE_H_

#include <cppconn/resultset.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "common/migrations.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "tests/test_support.h"

namespace qunzu::testing {

class CommonSchemaTest : public ::testing::Test {
 protected:
  // `stem` names the schema; `pool_size` connections at most.
  CommonSchemaTest(std::string stem, int pool_size)
      : stem_(std::move(stem)), pool_size_(pool_size) {}

  void SetUp() override {
    MysqlOptions options = ParseMysqlDsn(MysqlDsnOrDie()).value();
    schema_ = UniqueName(stem_);
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool =
        MysqlPool::Create(options, schema_, pool_size_);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
  }

  void TearDown() override {
    if (pool_ == nullptr) return;
    MysqlPool::Lease lease = pool_->Acquire(absl::Seconds(10)).value();
    EXPECT_TRUE(Execute(*lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  // The first column of the first row of a query, e.g. a COUNT(*); -1 when
  // it returned no row.
  int64_t Count(const std::string& sql) {
    MysqlPool::Lease lease = pool_->Acquire(absl::Seconds(10)).value();
    int64_t n = -1;
    EXPECT_TRUE(Query(*lease, sql, {}, [&](const sql::ResultSet& row) {
                  n = row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;

 private:
  std::string stem_;
  int pool_size_;
};

}  // namespace qunzu::testing

#endif  // QUNZU_TESTS_COMMON_COMMON_SCHEMA_FIXTURE_H_
