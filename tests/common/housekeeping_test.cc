// Tests of common/housekeeping.h against the real MariaDB that `make test`
// starts: what expires is deleted in batches, what the relay still owes or
// what is within its retention stays.
#include "common/housekeeping.h"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "tests/common/common_schema_fixture.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);
const absl::Time kNow = absl::FromUnixSeconds(1800000000);

class HousekeepingTest : public testing::CommonSchemaTest {
 protected:
  HousekeepingTest() : CommonSchemaTest("housekeeping", 4) {}

  void AddKey(const std::string& request_id, absl::Duration age) {
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    ASSERT_TRUE(
        Execute(*lease,
                "INSERT INTO idempotency_keys (principal, method, request_id, fingerprint,"
                " response, created_at, completed_at) VALUES ('p', '/m', ?, 'f', 'r', ?, ?)",
                {request_id, kNow - age, kNow - age})
            .ok());
  }

  // An outbox row created two retentions ago; delivered `delivered_age` ago,
  // or never when that is negative.
  void AddOutboxRow(const std::string& payload, absl::Duration delivered_age) {
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    SqlValue delivered =
        delivered_age < absl::ZeroDuration() ? SqlValue(nullptr) : SqlValue(kNow - delivered_age);
    ASSERT_TRUE(Execute(*lease,
                        "INSERT INTO outbox (topic, payload, created_at, delivered_at)"
                        " VALUES ('audit', ?, ?, ?)",
                        {payload, kNow - absl::Hours(24 * 30), delivered})
                    .ok());
  }

  std::string Column(const std::string& statement) {
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    std::string out;
    EXPECT_TRUE(Query(*lease, statement, {}, [&](const sql::ResultSet& row) {
                  absl::StrAppend(&out, out.empty() ? "" : ",", std::string(row.getString(1)));
                  return absl::OkStatus();
                }).ok());
    return out;
  }

  // The value of counter `name` with label table=`table` ("" for none).
  double Counter(const std::string& name, const std::string& table = "") {
    for (const prometheus::MetricFamily& family : registry_.Collect()) {
      if (family.name != name) continue;
      for (const prometheus::ClientMetric& metric : family.metric) {
        const bool labelled = !metric.label.empty();
        if (labelled != !table.empty()) continue;
        if (labelled && metric.label[0].value != table) continue;
        return metric.counter.value;
      }
    }
    return -1;
  }

  HousekeepingOptions Options(int batch) const {
    HousekeepingOptions options;
    options.idempotency_retention = absl::Hours(24);
    options.outbox_retention = absl::Hours(48);
    options.batch = batch;
    return options;
  }

  prometheus::Registry registry_;
  FakeClock clock_{kNow};
};

TEST_F(HousekeepingTest, DeletesOnlyWhatOutlivedItsRetentionInBatches) {
  for (int i = 0; i < 5; ++i) AddKey(absl::StrCat("old-", i), absl::Hours(25 + i));
  AddKey("fresh", absl::Hours(23));
  AddOutboxRow("delivered-long-ago", absl::Hours(72));
  AddOutboxRow("delivered-long-ago-2", absl::Hours(49));
  AddOutboxRow("delivered-recently", absl::Hours(47));
  AddOutboxRow("never-delivered", absl::Hours(-1));

  auto keeper = Housekeeper::Create(*pool_, registry_, clock_, Options(2)).value();
  absl::StatusOr<HousekeepingPass> pass = keeper->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_EQ(pass->idempotency_keys_deleted, 5);
  EXPECT_EQ(pass->outbox_rows_deleted, 2);
  EXPECT_EQ(Column("SELECT request_id FROM idempotency_keys ORDER BY request_id"), "fresh");
  EXPECT_EQ(Column("SELECT payload FROM outbox ORDER BY id"), "delivered-recently,never-delivered");
  EXPECT_EQ(Counter("qunzu_housekeeping_deleted_total", "idempotency_keys"), 5);
  EXPECT_EQ(Counter("qunzu_housekeeping_deleted_total", "outbox"), 2);

  // Nothing left to do; a month later the delivered row goes, the owed one
  // never does.
  pass = keeper->RunOnce();
  ASSERT_TRUE(pass.ok());
  EXPECT_EQ(pass->idempotency_keys_deleted + pass->outbox_rows_deleted, 0);
  clock_.Advance(absl::Hours(24 * 30));
  ASSERT_TRUE(keeper->RunOnce().ok());
  EXPECT_EQ(Column("SELECT payload FROM outbox"), "never-delivered");
  EXPECT_EQ(Column("SELECT COUNT(*) FROM idempotency_keys"), "0");
}

TEST_F(HousekeepingTest, StartRunsAPassAtOnceAndStopEndsTheThread) {
  AddKey("old", absl::Hours(30));
  auto keeper = Housekeeper::Create(*pool_, registry_, clock_, Options(100)).value();
  keeper->Start();
  // The thread runs its first pass before it looks at the stop flag.
  keeper->Stop();
  EXPECT_EQ(Column("SELECT COUNT(*) FROM idempotency_keys"), "0");
}

TEST_F(HousekeepingTest, MysqlFailureIsReturnedAndCounted) {
  auto keeper = Housekeeper::Create(*pool_, registry_, clock_, Options(10)).value();
  {
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    ASSERT_TRUE(Execute(*lease, "DROP TABLE idempotency_keys").ok());
  }
  absl::StatusOr<HousekeepingPass> pass = keeper->RunOnce();
  EXPECT_FALSE(pass.ok());
  EXPECT_EQ(ErrorReason(pass.status()), kMysqlError);
  EXPECT_EQ(Counter("qunzu_housekeeping_failures_total"), 1);
}

TEST(HousekeepingOptionsTest, RejectsNonPositiveDurationsAndBadBatches) {
  prometheus::Registry registry;
  FakeClock clock(kNow);
  MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
  auto pool = MysqlPool::Create(options, testing::UniqueName("housekeeping_opts"), 1).value();
  for (auto mutate :
       {+[](HousekeepingOptions& o) { o.idempotency_retention = absl::ZeroDuration(); },
        +[](HousekeepingOptions& o) { o.outbox_retention = -absl::Hours(1); },
        +[](HousekeepingOptions& o) { o.interval = absl::ZeroDuration(); },
        +[](HousekeepingOptions& o) { o.batch = 0; },
        +[](HousekeepingOptions& o) { o.batch = 100001; }}) {
    HousekeepingOptions o;
    mutate(o);
    absl::StatusOr<std::unique_ptr<Housekeeper>> keeper =
        Housekeeper::Create(*pool, registry, clock, o);
    EXPECT_EQ(keeper.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorReason(keeper.status()), "INVALID_HOUSEKEEPING_OPTIONS");
  }
  MysqlPool::Lease lease = pool->Acquire(kWait).value();
  (void)Execute(*lease, "DROP DATABASE IF EXISTS `" + pool->schema() + "`");
}

}  // namespace
}  // namespace qunzu
