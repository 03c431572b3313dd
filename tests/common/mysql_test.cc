// Tests of common/mysql.h: DSN parsing, DATETIME text, binding and error
// mapping of the statement helpers, and named locks, against the real
// MariaDB that `make test` starts.
#include "common/mysql.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>

#include "common/mysql_pool.h"
#include "common/status.h"
#include "tests/common/mysql_fixture.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using testing::MustAcquire;
using testing::MysqlPoolTest;

TEST(ParseMysqlDsnTest, ParsesUserPasswordHostPortAndSocket) {
  absl::StatusOr<MysqlOptions> o = ParseMysqlDsn("mysql://qunzu:s3cret@127.0.0.1:33981");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "qunzu");
  EXPECT_EQ(o->password, "s3cret");
  EXPECT_EQ(o->host, "127.0.0.1");
  EXPECT_EQ(o->port, 33981);
  EXPECT_EQ(o->socket, "");
  EXPECT_EQ(o->Endpoint(), "127.0.0.1:33981");
  EXPECT_EQ(o->Redacted(), "mysql://qunzu:***@127.0.0.1:33981");

  o = ParseMysqlDsn("mysql://app:p%40ss%3Aw@db.internal?socket=/run/mysqld/mysqld.sock");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->password, "p@ss:w");
  EXPECT_EQ(o->host, "db.internal");
  EXPECT_EQ(o->port, 3306);
  EXPECT_EQ(o->socket, "/run/mysqld/mysqld.sock");
  EXPECT_EQ(o->Endpoint(), "unix:/run/mysqld/mysqld.sock");

  o = ParseMysqlDsn("mysql://app:p?ss@w@host?socket=/s.sock");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->password, "p?ss@w");
  EXPECT_EQ(o->socket, "/s.sock");

  o = ParseMysqlDsn("mysql://app@[::1]:3307");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->host, "::1");
  EXPECT_EQ(o->port, 3307);
  EXPECT_EQ(o->password, "");
  EXPECT_EQ(o->Endpoint(), "[::1]:3307");
}

TEST(ParseMysqlDsnTest, RejectsMalformedWithoutLeakingThePassword) {
  const char* bad[] = {
      "",
      "postgres://u:s3cret@h:1",
      "mysql://s3cret@",
      "mysql://:s3cret@host:3306",
      "mysql://u:s3cret@:3306",
      "mysql://u:s3cret@host:port",
      "mysql://u:s3cret@host:70000",
      "mysql://u:s3cret@host:",
      "mysql://u:s3cret@host:3306/schema",
      "mysql://u:s3cret@host:3306?sslmode=on",
      "mysql://u:s3cret?x@host:3306?sslmode=on",
      "mysql://u:s3cret@host:3306?socket=relative.sock",
      "mysql://u:s3cret%zz@host:3306",
      "mysql://u:s3cret@[::1:3306",
  };
  for (const char* dsn : bad) {
    absl::StatusOr<MysqlOptions> o = ParseMysqlDsn(dsn);
    ASSERT_FALSE(o.ok()) << dsn;
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << dsn;
    EXPECT_EQ(ErrorReason(o.status()), "INVALID_MYSQL_DSN") << dsn;
    EXPECT_EQ(o.status().message().find("s3cret"), absl::string_view::npos) << o.status();
  }
}

TEST(SqlDateTimeTest, ParsesMicroseconds) {
  absl::StatusOr<absl::Time> t = ParseSqlDateTime("2026-01-02 03:04:05.000006");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(absl::ToUnixMicros(*t),
            absl::ToUnixMicros(
                absl::FromCivil(absl::CivilSecond(2026, 1, 2, 3, 4, 5), absl::UTCTimeZone())) +
                6);
  EXPECT_FALSE(ParseSqlDateTime("yesterday").ok());
}

TEST_F(MysqlPoolTest, BindsEveryValueKindAndBinaryBytes) {
  MysqlPool::Lease lease = MustAcquire(*pool_);
  ASSERT_TRUE(Execute(*lease,
                      "CREATE TABLE kinds (i BIGINT, u BIGINT UNSIGNED, d DOUBLE, b BOOL, "
                      "s LONGBLOB, n VARCHAR(3), t DATETIME(6))")
                  .ok());
  const std::string bytes("a\0b\xff\x80z", 6);
  const absl::Time t = absl::FromUnixMicros(1767225600123456);
  absl::StatusOr<int64_t> inserted =
      Execute(*lease, "INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?)",
              {std::numeric_limits<int64_t>::min(), std::numeric_limits<uint64_t>::max(), 2.5, true,
               bytes, nullptr, t});
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(*inserted, 1);
  absl::Status status = Query(*lease, "SELECT i, u, d, b, s, n IS NULL, t FROM kinds WHERE i < ?",
                              {0}, [&](const sql::ResultSet& row) {
                                EXPECT_EQ(row.getInt64(1), std::numeric_limits<int64_t>::min());
                                EXPECT_EQ(row.getUInt64(2), std::numeric_limits<uint64_t>::max());
                                EXPECT_EQ(row.getDouble(3), 2.5);
                                EXPECT_TRUE(row.getBoolean(4));
                                EXPECT_EQ(row.getString(5).asStdString(), bytes);
                                EXPECT_TRUE(row.getBoolean(6));
                                EXPECT_EQ(ParseSqlDateTime(row.getString(7)).value(), t);
                                return absl::OkStatus();
                              });
  EXPECT_TRUE(status.ok()) << status;
}

TEST_F(MysqlPoolTest, LastInsertIdIsTheSessionsOwn) {
  MysqlPool::Lease first = MustAcquire(*pool_);
  MysqlPool::Lease second = MustAcquire(*pool_);
  ASSERT_TRUE(
      Execute(*first, "CREATE TABLE ids (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v INT)")
          .ok());
  ASSERT_TRUE(Execute(*first, "INSERT INTO ids (v) VALUES (1)").ok());
  ASSERT_TRUE(Execute(*second, "INSERT INTO ids (v) VALUES (2), (3)").ok());
  // The first row of the session's last INSERT, whatever other sessions did.
  EXPECT_EQ(LastInsertId(*first).value(), 1u);
  EXPECT_EQ(LastInsertId(*second).value(), 2u);
  // LAST_INSERT_ID(expr), as the rule store draws ids from a counter row.
  ASSERT_TRUE(Execute(*first, "UPDATE ids SET v = LAST_INSERT_ID(v + 41) WHERE id = 1").ok());
  EXPECT_EQ(LastInsertId(*first).value(), 42u);
}

TEST_F(MysqlPoolTest, MapsDuplicateKeyAndOtherErrors) {
  MysqlPool::Lease lease = MustAcquire(*pool_);
  absl::Status dup = Execute(*lease, "INSERT INTO counters VALUES (?, 0)", {1}).status();
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists) << dup;
  EXPECT_EQ(ErrorReason(dup), kMysqlDuplicate);
  absl::Status missing = Execute(*lease, "SELECT * FROM no_such_table").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(ErrorReason(missing), kMysqlError);
  EXPECT_FALSE(lease->isClosed());
}

TEST_F(MysqlPoolTest, NamedLockExcludesOtherSessions) {
  std::unique_ptr<sql::Connection> a = pool_->OpenDedicated().value();
  std::unique_ptr<sql::Connection> b = pool_->OpenDedicated().value();
  const std::string name = "qunzu.test." + schema_;
  EXPECT_TRUE(GetNamedLock(*a, name, absl::ZeroDuration()).value());
  EXPECT_FALSE(GetNamedLock(*b, name, absl::ZeroDuration()).value());
  EXPECT_TRUE(ReleaseNamedLock(*a, name).ok());
  EXPECT_TRUE(GetNamedLock(*b, name, absl::ZeroDuration()).value());
}

}  // namespace
}  // namespace qunzu
