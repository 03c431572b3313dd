// Tests of common/mysql_pool.h: creating a pool (unreachable, silent and
// refusing servers), leasing, discarding broken connections, transactions,
// isolation and deadlock retries, against the real MariaDB that `make test`
// starts.
#include "common/mysql_pool.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "common/mysql.h"
#include "common/status.h"
#include "tests/common/mysql_fixture.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using testing::kWait;
using testing::MustAcquire;
using testing::MysqlPoolTest;
using testing::QueryInt;

// A TCP socket bound to a free port of 127.0.0.1, which it stores in *port.
int BoundSocket(int* port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  *port = ntohs(addr.sin_port);
  return fd;
}

// A port on 127.0.0.1 where nothing listens (bound, then closed again).
int ClosedPort() {
  int port = 0;
  close(BoundSocket(&port));
  return port;
}

TEST(MysqlPoolCreateTest, UnreachableServerFailsFastNamingHostPort) {
  MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
  options.port = ClosedPort();
  options.connect_timeout = absl::Seconds(2);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(options, "unused", 2);
  ASSERT_FALSE(pool.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(pool.status()), kMysqlUnavailable);
  EXPECT_NE(pool.status().message().find(options.Endpoint()), absl::string_view::npos)
      << pool.status();
}

TEST(MysqlPoolCreateTest, ServerThatNeverAnswersFailsWithinTheConnectTimeout) {
  // Accepts TCP connections (the kernel does, from the backlog) but never
  // sends the MySQL greeting.
  int port = 0;
  const int fd = BoundSocket(&port);
  ASSERT_EQ(listen(fd, 8), 0);
  MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
  options.port = port;
  options.connect_timeout = absl::Seconds(1);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(options, "unused", 2);
  close(fd);
  ASSERT_FALSE(pool.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kUnavailable) << pool.status();
  EXPECT_NE(pool.status().message().find(options.Endpoint()), absl::string_view::npos);
}

TEST(MysqlPoolCreateTest, WrongPasswordIsUnavailableAndNotEchoed) {
  MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
  options.password = "wrong-s3cret";
  absl::StatusOr<std::unique_ptr<MysqlPool>> pool = MysqlPool::Create(options, "unused", 2);
  ASSERT_FALSE(pool.ok());
  EXPECT_EQ(pool.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool.status().message().find("wrong-s3cret"), absl::string_view::npos);
}

TEST(MysqlPoolCreateTest, RejectsBadSchemaAndSize) {
  MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
  EXPECT_EQ(MysqlPool::Create(options, "bad-name`; DROP", 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MysqlPool::Create(options, "fine", 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(MysqlPoolTest, ReusesAReturnedConnection) {
  int64_t first = 0;
  {
    MysqlPool::Lease lease = MustAcquire(*pool_);
    first = QueryInt(*lease, "SELECT CONNECTION_ID()");
  }
  MysqlPool::Lease again = MustAcquire(*pool_);
  EXPECT_EQ(QueryInt(*again, "SELECT CONNECTION_ID()"), first);
  EXPECT_EQ(pool_->open_connections(), 1);
  EXPECT_EQ(QueryInt(*again, "SELECT @@tx_isolation = 'READ-COMMITTED'"), 1);
  EXPECT_EQ(QueryInt(*again, "SELECT @@time_zone = '+00:00'"), 1);
}

TEST_F(MysqlPoolTest, DiscardsAConnectionThatBroke) {
  MysqlPool::Lease victim = MustAcquire(*pool_);
  const int64_t victim_id = QueryInt(*victim, "SELECT CONNECTION_ID()");
  {
    MysqlPool::Lease killer = MustAcquire(*pool_);
    ASSERT_TRUE(Execute(*killer, "KILL " + std::to_string(victim_id)).ok());
  }
  absl::Status status = Execute(*victim, "SELECT 1").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_EQ(ErrorReason(status), kMysqlUnavailable);
  EXPECT_TRUE(victim->isClosed());
  EXPECT_EQ(pool_->open_connections(), 2);
  victim = MustAcquire(*pool_);  // returns the broken one, takes the killer's
  EXPECT_EQ(pool_->open_connections(), 1);
  EXPECT_NE(QueryInt(*victim, "SELECT CONNECTION_ID()"), victim_id);
}

TEST_F(MysqlPoolTest, TransactionReplacesAStaleIdleConnection) {
  int64_t stale_id = 0;
  {
    MysqlPool::Lease lease = MustAcquire(*pool_);
    stale_id = QueryInt(*lease, "SELECT CONNECTION_ID()");
  }
  {
    // Opened beside the idle one, which stays idle in the pool.
    std::unique_ptr<sql::Connection> killer = pool_->OpenDedicated().value();
    ASSERT_TRUE(Execute(*killer, "KILL " + std::to_string(stale_id)).ok());
  }
  int64_t used_id = 0;
  absl::Status status = WithTransaction(*pool_, [&](sql::Connection& conn) {
    used_id = QueryInt(conn, "SELECT CONNECTION_ID()");
    return Execute(conn, "UPDATE counters SET v = 7 WHERE id = 1").status();
  });
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_NE(used_id, stale_id);
  MysqlPool::Lease lease = MustAcquire(*pool_);
  EXPECT_EQ(QueryInt(*lease, "SELECT v FROM counters WHERE id = 1"), 7);
}

TEST_F(MysqlPoolTest, AcquireTimesOutWhenAllBusyAndWakesOnReturn) {
  std::vector<MysqlPool::Lease> held;
  held.reserve(pool_->size());
  for (int i = 0; i < pool_->size(); ++i) held.push_back(MustAcquire(*pool_));
  absl::StatusOr<MysqlPool::Lease> none = pool_->Acquire(absl::Milliseconds(100));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorReason(none.status()), kMysqlPoolTimeout);

  absl::Status waiter_status;
  std::thread waiter([&] { waiter_status = pool_->Acquire(kWait).status(); });
  held.pop_back();
  waiter.join();
  EXPECT_TRUE(waiter_status.ok()) << waiter_status;
}

TEST_F(MysqlPoolTest, PingAnswers) { EXPECT_TRUE(pool_->Ping().ok()); }

TEST_F(MysqlPoolTest, FailedTransactionLeavesNothing) {
  absl::Status status = WithTransaction(*pool_, [](sql::Connection& conn) {
    RETURN_IF_ERROR(Execute(conn, "INSERT INTO counters VALUES (3, 1), (4, 1)").status());
    return MakeError(absl::StatusCode::kFailedPrecondition, "TEST_REFUSED", "no");
  });
  EXPECT_EQ(ErrorReason(status), "TEST_REFUSED");

  status = WithTransaction(*pool_, [](sql::Connection& conn) -> absl::Status {
    RETURN_IF_ERROR(Execute(conn, "INSERT INTO counters VALUES (5, 1)").status());
    throw std::runtime_error("boom");
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << status;
  EXPECT_EQ(Count("counters"), 2);
}

TEST_F(MysqlPoolTest, TransactionReturnsTheValueOfTheCommittedAttempt) {
  absl::StatusOr<int64_t> sum =
      WithTransaction(*pool_, [](sql::Connection& conn) -> absl::StatusOr<int64_t> {
        RETURN_IF_ERROR(Execute(conn, "UPDATE counters SET v = v + 5").status());
        return QueryInt(conn, "SELECT SUM(v) FROM counters");
      });
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, 10);
}

TEST_F(MysqlPoolTest, IsolationIsReadCommittedUnlessRepeatableReadIsAsked) {
  std::unique_ptr<sql::Connection> other = pool_->OpenDedicated().value();
  auto read_twice = [&](Isolation isolation) {
    std::pair<int64_t, int64_t> seen;
    TransactionOptions options;
    options.isolation = isolation;
    absl::Status status = WithTransaction(
        *pool_,
        [&](sql::Connection& conn) {
          seen.first = QueryInt(conn, "SELECT v FROM counters WHERE id = 1");
          RETURN_IF_ERROR(Execute(*other, "UPDATE counters SET v = v + 1 WHERE id = 1").status());
          seen.second = QueryInt(conn, "SELECT v FROM counters WHERE id = 1");
          return absl::OkStatus();
        },
        options);
    EXPECT_TRUE(status.ok()) << status;
    return seen;
  };
  EXPECT_EQ(read_twice(Isolation::kReadCommitted), std::make_pair(int64_t{0}, int64_t{1}));
  EXPECT_EQ(read_twice(Isolation::kRepeatableRead), std::make_pair(int64_t{1}, int64_t{1}));
  EXPECT_EQ(read_twice(Isolation::kReadCommitted), std::make_pair(int64_t{2}, int64_t{3}));
}

// Waits (bounded) until `parties` threads arrived.
class Latch {
 public:
  explicit Latch(int parties) : left_(parties) {}
  bool ArriveAndWait() {
    absl::MutexLock lock(&mu_);
    --left_;
    auto done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return left_ <= 0; };
    return mu_.AwaitWithTimeout(absl::Condition(&done), kWait);
  }

 private:
  absl::Mutex mu_;
  int left_ ABSL_GUARDED_BY(mu_);
};

TEST_F(MysqlPoolTest, DeadlockedTransactionsAreRetriedAndBothCommit) {
  Latch both_hold_first_lock(2);
  std::atomic<int> attempts{0};
  auto lock_in_order = [&](int first, int second) {
    bool first_attempt = true;
    return WithTransaction(*pool_, [&, first, second](sql::Connection& conn) {
      attempts++;
      const std::string lock = "SELECT v FROM counters WHERE id = ? FOR UPDATE";
      RETURN_IF_ERROR(
          Query(conn, lock, {first}, [](const sql::ResultSet&) { return absl::OkStatus(); }));
      if (first_attempt) {
        first_attempt = false;
        both_hold_first_lock.ArriveAndWait();
      }
      RETURN_IF_ERROR(
          Execute(conn, "UPDATE counters SET v = v + 1 WHERE id = ?", {second}).status());
      return Execute(conn, "UPDATE counters SET v = v + 1 WHERE id = ?", {first}).status();
    });
  };
  absl::Status a, b;
  std::thread ta([&] { a = lock_in_order(1, 2); });
  std::thread tb([&] { b = lock_in_order(2, 1); });
  ta.join();
  tb.join();
  EXPECT_TRUE(a.ok()) << a;
  EXPECT_TRUE(b.ok()) << b;
  EXPECT_GE(attempts.load(), 3);  // the deadlock victim ran again
  MysqlPool::Lease lease = MustAcquire(*pool_);
  EXPECT_EQ(QueryInt(*lease, "SELECT v FROM counters WHERE id = 1"), 2);
  EXPECT_EQ(QueryInt(*lease, "SELECT v FROM counters WHERE id = 2"), 2);
}

}  // namespace
}  // namespace qunzu
