// Tests of common/idempotency.h against the real MariaDB.
#include "common/idempotency.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/migrations.h"
#include "common/status.h"
#include "qunzu/common/v1/common.pb.h"
#include "tests/common/common_schema_fixture.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

using Message = common::v1::ErrorInfo;  // any proto serves as request and response

constexpr absl::Duration kWait = absl::Seconds(10);

Message Text(const std::string& reason) {
  Message message;
  message.set_reason(reason);
  return message;
}

IdempotencyKey Key(const std::string& request_id = "req-1") {
  return {"platform:chat", "/qunzu.groups.v1.GroupService/JoinGroup", request_id};
}

TEST(RequestIdTest, AcceptsOneTo128PrintableAscii) {
  EXPECT_TRUE(ValidateRequestId("a").ok());
  EXPECT_TRUE(ValidateRequestId("3f2a-11ee b~!").ok());
  EXPECT_TRUE(ValidateRequestId(std::string(128, 'x')).ok());
  for (const std::string& bad : {std::string(), std::string(129, 'x'), std::string("tab\there"),
                                 std::string("\xe7\xbe\xa4"), std::string("nul\0", 4)}) {
    absl::Status status = ValidateRequestId(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(ErrorMetadata(status, "field"), "request_id");
  }
}

TEST(FingerprintTest, EqualMessagesMatchRegardlessOfMapOrder) {
  Message a = Text("r");
  (*a.mutable_metadata())["x"] = "1";
  (*a.mutable_metadata())["y"] = "2";
  Message b = Text("r");
  (*b.mutable_metadata())["y"] = "2";
  (*b.mutable_metadata())["x"] = "1";
  EXPECT_EQ(FingerprintMessage(a).size(), 32u);
  EXPECT_EQ(FingerprintMessage(a), FingerprintMessage(b));
  (*b.mutable_metadata())["x"] = "other";
  EXPECT_NE(FingerprintMessage(a), FingerprintMessage(b));
  // The type name is part of it: an empty message of another type differs.
  EXPECT_NE(FingerprintMessage(Message()), FingerprintMessage(common::v1::StatusDetails()));
}

class IdempotencyTest : public testing::CommonSchemaTest {
 protected:
  IdempotencyTest() : CommonSchemaTest("idem", 20) {}

  void SetUp() override {
    CommonSchemaTest::SetUp();
    if (HasFatalFailure()) return;
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    ASSERT_TRUE(Execute(*lease, "CREATE TABLE effects (id INT AUTO_INCREMENT PRIMARY KEY)").ok());
  }

  // One request as a handler runs it: its effect and response, once per key.
  absl::StatusOr<Message> Handle(const IdempotencyKey& key, const Message& request,
                                 std::atomic<int>& body_runs) {
    return WithTransaction(*pool_, [&](sql::Connection& conn) -> absl::StatusOr<Message> {
      return RunIdempotent<Message>(conn, key, request, [&]() -> absl::StatusOr<Message> {
        const int run = ++body_runs;
        RETURN_IF_ERROR(Execute(conn, "INSERT INTO effects () VALUES ()").status());
        return Text("response-" + std::to_string(run));
      });
    });
  }

  int64_t Effects() {
    int64_t count = -1;
    MysqlPool::Lease lease = pool_->Acquire(kWait).value();
    EXPECT_TRUE(Query(*lease, "SELECT COUNT(*) FROM effects", {}, [&](const sql::ResultSet& row) {
                  count = row.getInt64(1);
                  return absl::OkStatus();
                }).ok());
    return count;
  }
};

TEST_F(IdempotencyTest, RetryReplaysTheFirstResponse) {
  std::atomic<int> runs{0};
  absl::StatusOr<Message> first = Handle(Key(), Text("join"), runs);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<Message> retry = Handle(Key(), Text("join"), runs);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->reason(), "response-1");
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(Effects(), 1);
}

TEST_F(IdempotencyTest, ReuseWithDifferentContentIsAlreadyExists) {
  std::atomic<int> runs{0};
  ASSERT_TRUE(Handle(Key(), Text("join"), runs).ok());
  absl::StatusOr<Message> reuse = Handle(Key(), Text("leave"), runs);
  EXPECT_EQ(reuse.status().code(), absl::StatusCode::kAlreadyExists) << reuse.status();
  EXPECT_EQ(ErrorReason(reuse.status()), "REQUEST_ID_REUSED");
  EXPECT_EQ(runs.load(), 1);
}

TEST_F(IdempotencyTest, KeysAreScopedByPrincipalAndMethod) {
  std::atomic<int> runs{0};
  IdempotencyKey other_principal = Key();
  other_principal.principal = "platform:other";
  IdempotencyKey other_method = Key();
  other_method.method = "/qunzu.groups.v1.GroupService/LeaveGroup";
  ASSERT_TRUE(Handle(Key(), Text("join"), runs).ok());
  ASSERT_TRUE(Handle(other_principal, Text("join"), runs).ok());
  ASSERT_TRUE(Handle(other_method, Text("join"), runs).ok());
  EXPECT_EQ(runs.load(), 3);
}

TEST_F(IdempotencyTest, AFailedFirstUseLeavesTheKeyFree) {
  absl::Status failed = WithTransaction(*pool_, [](sql::Connection& conn) {
    return RunIdempotent<Message>(conn, Key(), Text("join"),
                                  []() -> absl::StatusOr<Message> {
                                    return MakeError(absl::StatusCode::kResourceExhausted,
                                                     "GROUP_MEMBER_CAP_REACHED", "full");
                                  })
        .status();
  });
  EXPECT_EQ(ErrorReason(failed), "GROUP_MEMBER_CAP_REACHED");
  std::atomic<int> runs{0};
  absl::StatusOr<Message> retry = Handle(Key(), Text("join"), runs);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->reason(), "response-1");
}

TEST_F(IdempotencyTest, RefusesOutsideATransactionAndFinishWithoutBegin) {
  IdempotencyStore store;
  MysqlPool::Lease lease = pool_->Acquire(kWait).value();
  absl::StatusOr<IdempotencyBegin> begin = store.Begin(*lease, Key(), "fp");
  EXPECT_EQ(ErrorReason(begin.status()), "IDEMPOTENCY_NO_TRANSACTION");
  absl::Status finish = WithTransaction(
      *pool_, [&](sql::Connection& conn) { return store.Finish(conn, Key(), "response"); });
  EXPECT_EQ(ErrorReason(finish), "IDEMPOTENCY_NOT_BEGUN");
  EXPECT_EQ(ErrorMetadata(store.Begin(*lease, Key(""), "fp").status(), "field"), "request_id");
}

TEST_F(IdempotencyTest, SixteenConcurrentFirstUsesRunTheBodyOnce) {
  constexpr int kCallers = 16;
  std::atomic<int> runs{0};
  absl::Mutex mu;
  int started = 0;
  std::vector<absl::StatusOr<Message>> results(kCallers, absl::UnknownError("not run"));
  std::vector<std::thread> callers;
  callers.reserve(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    callers.emplace_back([&, i] {
      results[i] = WithTransaction(*pool_, [&](sql::Connection& conn) -> absl::StatusOr<Message> {
        {
          absl::MutexLock lock(&mu);
          ++started;
        }
        return RunIdempotent<Message>(conn, Key(), Text("join"), [&]() -> absl::StatusOr<Message> {
          // Hold the claim until every caller is on its way, so they pile
          // up behind it.
          {
            absl::MutexLock lock(&mu);
            auto all_started = [&] { return started >= kCallers; };
            mu.AwaitWithTimeout(absl::Condition(&all_started), kWait);
          }
          const int run = ++runs;
          RETURN_IF_ERROR(Execute(conn, "INSERT INTO effects () VALUES ()").status());
          return Text("response-" + std::to_string(run));
        });
      });
    });
  }
  for (std::thread& caller : callers) caller.join();
  for (const absl::StatusOr<Message>& result : results) {
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->reason(), "response-1");
  }
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(Effects(), 1);
}

}  // namespace
}  // namespace qunzu
