// Tests of common/outbox.h against the real MariaDB: what is delivered, in
// which order, how often, and how the relay stops.
#include "common/outbox.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <map>
#include <thread>

#include "common/migrations.h"
#include "common/status.h"
#include "tests/common/common_schema_fixture.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);
constexpr char kTopic[] = "audit";

// Records what it is given; fails the first `failures` calls.
class FakeReceiver : public OutboxReceiver {
 public:
  explicit FakeReceiver(int failures = 0) : failures_left_(failures) {}

  absl::Status Deliver(const std::vector<OutboxRecord>& batch) override {
    const int concurrent = ++in_flight_;
    if (on_deliver_) on_deliver_();
    absl::MutexLock lock(&mu_);
    max_in_flight_ = std::max(max_in_flight_, concurrent);
    ++calls_;
    absl::Status status = absl::OkStatus();
    if (failures_left_ > 0 || always_fail_) {
      --failures_left_;
      status = MakeError(absl::StatusCode::kUnavailable, "AUDIT_DOWN", "audit is down");
    } else {
      for (const OutboxRecord& record : batch) records_.push_back(record);
    }
    --in_flight_;
    return status;
  }

  // Called at the start of every Deliver; set before the relays run.
  void OnDeliver(std::function<void()> hook) { on_deliver_ = std::move(hook); }
  void AlwaysFail() {
    absl::MutexLock lock(&mu_);
    always_fail_ = true;
  }
  // Waits (bounded) until at least `n` records were accepted.
  bool AwaitRecords(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return records_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }
  // Waits (bounded) until Deliver was called `n` times.
  bool AwaitCalls(int n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return calls_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }
  std::vector<OutboxRecord> records() {
    absl::MutexLock lock(&mu_);
    return records_;
  }
  int calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }
  int max_in_flight() {
    absl::MutexLock lock(&mu_);
    return max_in_flight_;
  }

 private:
  std::atomic<int> in_flight_{0};
  std::function<void()> on_deliver_;
  absl::Mutex mu_;
  int failures_left_ ABSL_GUARDED_BY(mu_);
  bool always_fail_ ABSL_GUARDED_BY(mu_) = false;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int max_in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<OutboxRecord> records_ ABSL_GUARDED_BY(mu_);
};

std::vector<std::string> Payloads(const std::vector<OutboxRecord>& records) {
  std::vector<std::string> out;
  out.reserve(records.size());
  for (const OutboxRecord& r : records) out.push_back(r.payload);
  return out;
}

double Metric(prometheus::Registry& registry, const std::string& name) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const prometheus::ClientMetric& metric : family.metric) {
      return family.type == prometheus::MetricType::Counter ? metric.counter.value
                                                            : metric.gauge.value;
    }
  }
  return -1;
}

class OutboxTest : public testing::CommonSchemaTest {
 protected:
  OutboxTest() : CommonSchemaTest("outbox", 4) {}

  std::unique_ptr<OutboxRelay> MakeRelay(OutboxReceiver& receiver, OutboxRelayOptions options) {
    options.topic = kTopic;
    return OutboxRelay::Create(*pool_, receiver, registry_, options).value();
  }

  // Writes each payload in its own committed transaction; returns the ids.
  std::vector<int64_t> WriteCommitted(const std::vector<std::string>& payloads) {
    std::vector<int64_t> ids;
    for (const std::string& payload : payloads) {
      absl::StatusOr<int64_t> id = WithTransaction(
          *pool_, [&](sql::Connection& conn) { return OutboxWriter().Add(conn, kTopic, payload); });
      EXPECT_TRUE(id.ok()) << id.status();
      ids.push_back(id.value_or(0));
    }
    return ids;
  }

  int64_t QueryInt(const std::string& statement) {
    int64_t value = -1;
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    EXPECT_TRUE(Query(*lease, statement, {}, [&](const sql::ResultSet& row) {
                  value = row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return value;
  }

  prometheus::Registry registry_;
};

std::vector<std::string> Numbered(int n) {
  std::vector<std::string> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back("record-" + std::to_string(i));
  return out;
}

TEST_F(OutboxTest, WriterRefusesToWriteOutsideATransaction) {
  MysqlPool::Lease lease = pool_->Acquire(kWait).value();
  absl::StatusOr<int64_t> id = OutboxWriter().Add(*lease, kTopic, "x");
  EXPECT_EQ(id.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(ErrorReason(id.status()), "OUTBOX_NO_TRANSACTION");
  EXPECT_EQ(OutboxWriter().Add(*lease, "Bad Topic", "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM outbox"), 0);
}

TEST_F(OutboxTest, RecordsOfARolledBackTransactionAreNeverDelivered) {
  absl::Status rolled_back = WithTransaction(*pool_, [](sql::Connection& conn) {
    RETURN_IF_ERROR(OutboxWriter().Add(conn, kTopic, "lost-1").status());
    RETURN_IF_ERROR(OutboxWriter().Add(conn, kTopic, "lost-2").status());
    return MakeError(absl::StatusCode::kFailedPrecondition, "TEST_REFUSED", "change refused");
  });
  ASSERT_EQ(ErrorReason(rolled_back), "TEST_REFUSED");
  WriteCommitted({"kept"});

  FakeReceiver receiver;
  std::unique_ptr<OutboxRelay> relay = MakeRelay(receiver, {});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(relay->RunOnce().ok());
  EXPECT_EQ(Payloads(receiver.records()), std::vector<std::string>{"kept"});
  EXPECT_EQ(Metric(registry_, "qunzu_outbox_pending"), 0);
}

TEST_F(OutboxTest, PayloadBytesAndCreationTimeArriveIntact) {
  const std::string bytes("\0\x01\xff\xfe proto bytes", 16);
  const absl::Time before = absl::Now() - absl::Seconds(5);
  std::vector<int64_t> ids = WriteCommitted({bytes});
  FakeReceiver receiver;
  std::unique_ptr<OutboxRelay> relay = MakeRelay(receiver, {});
  absl::StatusOr<OutboxPass> pass = relay->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status();
  EXPECT_TRUE(pass->leader);
  EXPECT_EQ(pass->delivered, 1);
  ASSERT_EQ(receiver.records().size(), 1u);
  const OutboxRecord record = receiver.records()[0];
  EXPECT_EQ(record.id, ids[0]);
  EXPECT_EQ(record.topic, kTopic);
  EXPECT_EQ(record.payload, bytes);
  EXPECT_GT(record.created_at, before);
  EXPECT_LT(record.created_at, absl::Now() + absl::Seconds(5));
}

TEST_F(OutboxTest, FailingReceiverGetsEveryRecordOnceInOrderAfterItRecovers) {
  std::vector<int64_t> ids = WriteCommitted(Numbered(25));
  FakeReceiver receiver(/*failures=*/3);
  OutboxRelayOptions options;
  options.batch_size = 10;
  std::unique_ptr<OutboxRelay> relay = MakeRelay(receiver, options);

  absl::StatusOr<OutboxPass> failed = relay->RunOnce();
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM outbox WHERE attempts = 1 AND "
                     "last_error LIKE '%AUDIT_DOWN%' AND delivered_at IS NULL"),
            10);
  EXPECT_EQ(Metric(registry_, "qunzu_outbox_pending"), 25);
  EXPECT_GE(Metric(registry_, "qunzu_outbox_oldest_pending_seconds"), 0);

  int failures = 1;
  for (int pass = 0; pass < 20 && receiver.records().size() < ids.size(); ++pass) {
    if (!relay->RunOnce().ok()) ++failures;
  }
  EXPECT_EQ(failures, 3);
  std::vector<OutboxRecord> got = receiver.records();
  ASSERT_EQ(got.size(), ids.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(got[i].id, ids[i]);
  EXPECT_EQ(Payloads(got), Numbered(25));
  ASSERT_TRUE(relay->RunOnce().ok());
  EXPECT_EQ(receiver.records().size(), ids.size());  // nothing twice

  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL"), 0);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM outbox WHERE last_error IS NOT NULL"), 0);
  EXPECT_EQ(QueryInt("SELECT MAX(attempts) FROM outbox"), 4);
  EXPECT_EQ(Metric(registry_, "qunzu_outbox_delivered_total"), 25);
  EXPECT_EQ(Metric(registry_, "qunzu_outbox_delivery_failures_total"), 3);
  EXPECT_EQ(Metric(registry_, "qunzu_outbox_pending"), 0);
  EXPECT_EQ(Metric(registry_, "qunzu_outbox_oldest_pending_seconds"), 0);
}

TEST_F(OutboxTest, TwoRelaysOnOneSchemaDeliverEachRecordExactlyOnce) {
  constexpr int kRecords = 200;
  FakeReceiver receiver;
  OutboxRelayOptions options;
  options.batch_size = 7;
  std::unique_ptr<OutboxRelay> first = MakeRelay(receiver, options);
  std::unique_ptr<OutboxRelay> second = MakeRelay(receiver, options);
  std::atomic<bool> written{false};
  absl::Mutex mu;
  int passes_not_leader = 0;
  // The first delivery holds the topic's lock until the other relay has
  // found it taken, so the two surely overlap.
  std::atomic<bool> first_delivery{true};
  receiver.OnDeliver([&] {
    if (!first_delivery.exchange(false)) return;
    absl::MutexLock lock(&mu);
    auto other_refused = [&] { return passes_not_leader > 0; };
    mu.AwaitWithTimeout(absl::Condition(&other_refused), kWait);
  });
  auto drain = [&](OutboxRelay& relay) {
    for (int i = 0; i < 20000; ++i) {
      if (written && receiver.records().size() >= kRecords) return;
      absl::StatusOr<OutboxPass> pass = relay.RunOnce();
      ASSERT_TRUE(pass.ok()) << pass.status();
      absl::MutexLock lock(&mu);
      if (!pass->leader) ++passes_not_leader;
    }
  };
  std::thread writer([&] {
    WriteCommitted(Numbered(kRecords));
    written = true;
  });
  std::thread a([&] { drain(*first); });
  std::thread b([&] { drain(*second); });
  writer.join();
  a.join();
  b.join();

  std::vector<OutboxRecord> got = receiver.records();
  ASSERT_EQ(got.size(), static_cast<size_t>(kRecords));
  for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1].id, got[i].id);
  EXPECT_EQ(Payloads(got), Numbered(kRecords));
  EXPECT_EQ(receiver.max_in_flight(), 1);
  absl::MutexLock lock(&mu);
  EXPECT_GT(passes_not_leader, 0);
  EXPECT_EQ(QueryInt("SELECT MAX(attempts) FROM outbox"), 1);
}

TEST_F(OutboxTest, BackgroundThreadDeliversWhenWoken) {
  FakeReceiver receiver;
  OutboxRelayOptions options;
  options.poll_interval = absl::Hours(1);  // only Wake gets it going again
  std::unique_ptr<OutboxRelay> relay = MakeRelay(receiver, options);
  relay->Start();
  WriteCommitted(Numbered(5));
  relay->Wake();
  EXPECT_TRUE(receiver.AwaitRecords(5));
  relay->Stop();
  EXPECT_EQ(Payloads(receiver.records()), Numbered(5));
}

TEST_F(OutboxTest, StopReturnsPromptlyDuringALongBackoff) {
  WriteCommitted({"stuck"});
  FakeReceiver receiver;
  receiver.AlwaysFail();
  OutboxRelayOptions options;
  options.min_backoff = options.max_backoff = absl::Hours(1);
  std::unique_ptr<OutboxRelay> relay = MakeRelay(receiver, options);
  relay->Start();
  ASSERT_TRUE(receiver.AwaitCalls(1));
  const absl::Time start = absl::Now();
  relay->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(receiver.calls(), 1);
  EXPECT_EQ(QueryInt("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL"), 1);
}

TEST(OutboxBackoffTest, DoublesFromMinUpToMaxWithJitter) {
  const absl::Duration min = absl::Milliseconds(100), max = absl::Seconds(2);
  EXPECT_EQ(OutboxBackoff(1, min, max, 0.0), min);  // never below min
  EXPECT_EQ(OutboxBackoff(1, min, max, 0.999), min);
  EXPECT_EQ(OutboxBackoff(2, min, max, 0.0), absl::Milliseconds(100));
  EXPECT_EQ(OutboxBackoff(2, min, max, 1.0), absl::Milliseconds(200));
  EXPECT_EQ(OutboxBackoff(3, min, max, 0.0), absl::Milliseconds(200));
  EXPECT_EQ(OutboxBackoff(3, min, max, 0.5), absl::Milliseconds(300));
  EXPECT_EQ(OutboxBackoff(10, min, max, 0.0), absl::Seconds(1));
  EXPECT_LE(OutboxBackoff(1000, min, max, 0.999), max);
}

TEST(OutboxRelayCreateTest, RejectsBadOptions) {
  MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
  std::unique_ptr<MysqlPool> pool =
      MysqlPool::Create(options, testing::UniqueName("outbox"), 1).value();
  FakeReceiver receiver;
  prometheus::Registry registry;
  OutboxRelayOptions bad;
  bad.topic = "";
  EXPECT_EQ(OutboxRelay::Create(*pool, receiver, registry, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad.topic = "audit";
  bad.batch_size = 0;
  EXPECT_EQ(OutboxRelay::Create(*pool, receiver, registry, bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  MysqlPool::Lease lease = pool->Acquire(kWait).value();
  EXPECT_TRUE(Execute(*lease, "DROP DATABASE `" + pool->schema() + "`").ok());
}

}  // namespace
}  // namespace qunzu
