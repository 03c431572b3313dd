// Tests of common/migrations.h against the real MariaDB.
#include "common/migrations.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/status.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

int64_t QueryInt(MysqlPool& pool, const std::string& statement) {
  int64_t value = -1;
  MysqlPool::Lease lease = pool.Acquire(kWait).value();
  absl::Status status = Query(*lease, statement, {}, [&](const sql::ResultSet& row) {
    value = row.getInt64(1);
    return absl::OkStatus();
  });
  EXPECT_TRUE(status.ok()) << status;
  return value;
}

// Three steps of which the second and third fail or double up if applied
// twice: an INSERT and an ADD COLUMN.
std::vector<Migration> NotesMigrations() {
  return {
      {1, "create_notes", {"CREATE TABLE notes (id INT AUTO_INCREMENT PRIMARY KEY, note TEXT)"}},
      {2, "seed_notes", {"INSERT INTO notes (note) VALUES ('once')"}},
      {3, "add_extra", {"ALTER TABLE notes ADD COLUMN extra INT"}},
  };
}

class MigrationsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_ = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
    schema_ = testing::UniqueName("migrations");
    absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(options_, schema_, 2);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
  }

  void TearDown() override {
    if (pool_ == nullptr) return;
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    EXPECT_TRUE(Execute(*lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  bool TableExists(const std::string& table) {
    return QueryInt(*pool_,
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '" +
                        schema_ + "' AND table_name = '" + table + "'") == 1;
  }

  int64_t Recorded(const std::string& component) {
    return QueryInt(*pool_,
                    "SELECT COUNT(*) FROM schema_migrations WHERE component = '" + component + "'");
  }

  MysqlOptions options_;
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
};

TEST_F(MigrationsTest, CommonMigrationsCreateTheOutboxAndIdempotencyTablesOnce) {
  ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
  EXPECT_TRUE(TableExists("outbox"));
  EXPECT_TRUE(TableExists("idempotency_keys"));
  EXPECT_EQ(Recorded(kCommonComponent), static_cast<int64_t>(CommonMigrations().size()));
  ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
  EXPECT_EQ(Recorded(kCommonComponent), static_cast<int64_t>(CommonMigrations().size()));
  EXPECT_EQ(QueryInt(*pool_, "SELECT COUNT(*) FROM schema_migrations WHERE checksum = '" +
                                 MigrationChecksum(CommonMigrations()[0]) + "'"),
            1);
}

TEST_F(MigrationsTest, EightReplicasStartingAtOnceApplyEachMigrationOnce) {
  constexpr int kReplicas = 8;
  absl::Mutex mu;
  int ready = 0;
  std::vector<absl::Status> results(kReplicas);
  std::vector<std::thread> replicas;
  replicas.reserve(kReplicas);
  for (int i = 0; i < kReplicas; ++i) {
    replicas.emplace_back([&, i] {
      // Each replica has its own pool, as separate processes would.
      absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(options_, schema_, 1);
      if (!pool.ok()) {
        results[i] = pool.status();
        return;
      }
      {
        absl::MutexLock lock(&mu);
        ++ready;
        auto all_ready = [&] { return ready == kReplicas; };
        mu.AwaitWithTimeout(absl::Condition(&all_ready), kWait);
      }
      results[i] = ApplyMigrations(**pool, "notes", NotesMigrations());
    });
  }
  for (std::thread& replica : replicas) replica.join();
  for (const absl::Status& status : results) EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(QueryInt(*pool_, "SELECT COUNT(*) FROM notes"), 1);
  EXPECT_EQ(Recorded("notes"), 3);
}

TEST_F(MigrationsTest, ComponentsAreIndependent) {
  ASSERT_TRUE(ApplyMigrations(*pool_, "notes", NotesMigrations()).ok());
  std::vector<Migration> other = {{1, "create_other", {"CREATE TABLE other (id INT)"}}};
  ASSERT_TRUE(ApplyMigrations(*pool_, "other", other).ok());
  EXPECT_EQ(Recorded("notes"), 3);
  EXPECT_EQ(Recorded("other"), 1);
}

TEST_F(MigrationsTest, RefusesAChangedAppliedMigrationAndAppliesNothing) {
  std::vector<Migration> list = NotesMigrations();
  list.resize(1);
  ASSERT_TRUE(ApplyMigrations(*pool_, "notes", list).ok());
  list = NotesMigrations();
  list[0].statements[0] += " ENGINE=InnoDB";
  absl::Status status = ApplyMigrations(*pool_, "notes", list);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(ErrorReason(status), "MIGRATION_CHANGED");
  EXPECT_NE(status.message().find("notes/1 \"create_notes\""), absl::string_view::npos) << status;
  EXPECT_EQ(Recorded("notes"), 1);
  EXPECT_EQ(QueryInt(*pool_, "SELECT COUNT(*) FROM notes"), 0);
}

TEST_F(MigrationsTest, RefusesNonIncreasingVersionsBeforeTouchingTheSchema) {
  std::vector<Migration> list = NotesMigrations();
  std::swap(list[1], list[2]);
  absl::Status status = ApplyMigrations(*pool_, "notes", list);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(ErrorReason(status), "MIGRATION_INVALID");
  EXPECT_NE(status.message().find("notes/2 \"seed_notes\""), absl::string_view::npos) << status;

  list = NotesMigrations();
  list[1].version = 1;
  EXPECT_EQ(ErrorReason(ApplyMigrations(*pool_, "notes", list)), "MIGRATION_INVALID");
  list = NotesMigrations();
  list[2].statements.clear();
  EXPECT_EQ(ErrorReason(ApplyMigrations(*pool_, "notes", list)), "MIGRATION_INVALID");
  EXPECT_FALSE(TableExists("notes"));
  EXPECT_FALSE(TableExists("schema_migrations"));
}

TEST_F(MigrationsTest, RefusesAMissingOrOutOfOrderVersion) {
  std::vector<Migration> all = NotesMigrations();
  ASSERT_TRUE(ApplyMigrations(*pool_, "notes", {all[0], all[2]}).ok());
  absl::Status status = ApplyMigrations(*pool_, "notes", all);
  EXPECT_EQ(ErrorReason(status), "MIGRATION_OUT_OF_ORDER") << status;
  EXPECT_NE(status.message().find("notes/2"), absl::string_view::npos) << status;

  status = ApplyMigrations(*pool_, "notes", {all[0], {4, "later", {"SELECT 1"}}});
  EXPECT_EQ(ErrorReason(status), "MIGRATION_MISSING") << status;
  EXPECT_NE(status.message().find("notes/3"), absl::string_view::npos) << status;
}

TEST_F(MigrationsTest, AcceptsVersionsAppliedByANewerBinary) {
  ASSERT_TRUE(ApplyMigrations(*pool_, "notes", NotesMigrations()).ok());
  std::vector<Migration> older = NotesMigrations();
  older.resize(2);
  EXPECT_TRUE(ApplyMigrations(*pool_, "notes", older).ok());
}

TEST_F(MigrationsTest, AFailingStatementNamesItsMigrationAndIsNotRecorded) {
  std::vector<Migration> list = NotesMigrations();
  list[1].statements = {"INSERT INTO no_such_table VALUES (1)"};
  absl::Status status = ApplyMigrations(*pool_, "notes", list);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("notes/2 \"seed_notes\": statement 1"), absl::string_view::npos)
      << status;
  EXPECT_EQ(Recorded("notes"), 1);
  // The lock was released: a fixed list applies.
  list[1] = NotesMigrations()[1];
  EXPECT_TRUE(ApplyMigrations(*pool_, "notes", list, absl::Seconds(1)).ok());
  EXPECT_EQ(Recorded("notes"), 3);
}

TEST_F(MigrationsTest, GivesUpWhenTheLockStaysHeld) {
  std::unique_ptr<sql::Connection> holder = pool_->OpenDedicated().value();
  ASSERT_TRUE(GetNamedLock(*holder, "qunzu.migrations." + schema_, absl::ZeroDuration()).value());
  absl::Status status = ApplyMigrations(*pool_, "notes", NotesMigrations(), absl::Seconds(1));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorReason(status), "MIGRATION_LOCK_TIMEOUT");
  EXPECT_FALSE(TableExists("notes"));
}

}  // namespace
}  // namespace qunzu
