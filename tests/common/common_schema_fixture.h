// A fixture for the tests of the tables every service shares (outbox,
// idempotency keys): a pool on a fresh schema of the MariaDB that
// `make test` starts, with CommonMigrations() applied, dropped afterwards.
#ifndef QUNZU_TESTS_COMMON_COMMON_SCHEMA_FIXTURE_H_
#define QUNZU_TESTS_COMMON_COMMON_SCHEMA_FIXTURE_H_

#include <gtest/gtest.h>

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

  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;

 private:
  std::string stem_;
  int pool_size_;
};

}  // namespace qunzu::testing

#endif  // QUNZU_TESTS_COMMON_COMMON_SCHEMA_FIXTURE_H_
