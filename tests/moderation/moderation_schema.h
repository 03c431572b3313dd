// A fresh MariaDB schema per test for moderation's MySQL stores: the common
// migrations plus the store's own, dropped again at the end.
#ifndef QUNZU_TESTS_MODERATION_MODERATION_SCHEMA_H_
#define QUNZU_TESTS_MODERATION_MODERATION_SCHEMA_H_

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/migrations.h"
#include "common/mysql_pool.h"
#include "tests/test_support.h"

namespace qunzu::moderation {

class ModerationSchemaTest : public ::testing::Test {
 protected:
  // Creates the schema and applies `migrations` as component "moderation".
  void CreateSchema(const std::vector<Migration>& migrations) {
    auto options = ParseMysqlDsn(testing::MysqlDsnOrDie());
    ASSERT_TRUE(options.ok()) << options.status();
    schema_ = testing::UniqueName("moderation");
    auto pool = MysqlPool::Create(*options, schema_, 8);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    ASSERT_TRUE(ApplyMigrations(*pool_, "moderation", migrations).ok());
  }
  void TearDown() override {
    if (!pool_) return;
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    EXPECT_TRUE(Execute(**lease, "DROP DATABASE `" + schema_ + "`").ok());
  }
  // The first column of the first row of a query, e.g. a COUNT(*).
  int64_t Count(const std::string& sql) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    int64_t n = -1;
    EXPECT_TRUE(Query(**lease, sql, {}, [&](const sql::ResultSet& row) {
                  n = row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return n;
  }

  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
};

}  // namespace qunzu::moderation

#endif  // QUNZU_TESTS_MODERATION_MODERATION_SCHEMA_H_
