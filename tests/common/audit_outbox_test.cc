// Audit events written with a state change reach the audit service's Append
// RPC through the outbox relay: against the real MariaDB and, over a real
// gRPC channel, an audit server that is down for a while.
#include "common/audit_outbox.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <set>

#include "common/migrations.h"
#include "common/status.h"
#include "tests/test_support.h"

namespace qunzu {
namespace {

constexpr char kToken[] = "groups-service-token";

// Refuses the first `outage` Append calls as UNAVAILABLE, then keeps every
// event once by (service, source_id), as the real audit service promises.
class FakeAudit final : public audit::v1::AuditService::Service {
 public:
  explicit FakeAudit(int outage) : outage_(outage) {}

  grpc::Status Append(grpc::ServerContext* context, const audit::v1::AppendRequest* request,
                      audit::v1::AppendResponse* response) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto auth = context->client_metadata().find("authorization");
    if (auth == context->client_metadata().end() ||
        std::string(auth->second.data(), auth->second.size()) != std::string("Bearer ") + kToken) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bad token");
    }
    if (outage_ > 0) {
      --outage_;
      ++refused_;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "audit is restarting");
    }
    for (const audit::v1::AuditEvent& event : request->events()) {
      auto key = std::make_pair(event.service(), event.source_id());
      bool duplicate = events_.count(key) > 0;
      if (!duplicate) events_[key] = event;
      auto* result = response->add_results();
      result->set_duplicate(duplicate);
      result->set_leaf_index(events_.size() - 1);
    }
    return grpc::Status::OK;
  }

  std::map<std::pair<std::string, uint64_t>, audit::v1::AuditEvent> events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  int refused() {
    std::lock_guard<std::mutex> lock(mu_);
    return refused_;
  }

 private:
  std::mutex mu_;
  int outage_;
  int refused_ = 0;
  std::map<std::pair<std::string, uint64_t>, audit::v1::AuditEvent> events_;
};

class AuditOutboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MysqlOptions options = ParseMysqlDsn(testing::MysqlDsnOrDie()).value();
    schema_ = testing::UniqueName("audit_outbox");
    auto pool = MysqlPool::Create(options, schema_, 4);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());

    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&audit_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
    if (pool_ == nullptr) return;
    MysqlPool::Lease lease = pool_->Acquire(absl::Seconds(10)).value();
    EXPECT_TRUE(Execute(*lease, "DROP DATABASE `" + schema_ + "`").ok());
  }

  std::shared_ptr<grpc::Channel> Channel() {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(port_),
                               grpc::InsecureChannelCredentials());
  }

  // Records an event in a transaction that commits (or rolls back).
  int64_t Record(const std::string& action, bool commit) {
    audit::v1::AuditEvent event;
    event.set_action(action);
    event.set_principal("chat-backend");
    event.set_request_id("req-" + action);
    int64_t id = 0;
    absl::Status status = WithTransaction(
        *pool_,
        [&](sql::Connection& conn) -> absl::Status {
          ASSIGN_OR_RETURN(id, RecordAuditEvent(conn, event));
          if (!commit) return absl::AbortedError("the change failed");
          return absl::OkStatus();
        },
        TransactionOptions{Isolation::kReadCommitted, 1, absl::Seconds(5)});
    EXPECT_EQ(status.ok(), commit) << status;
    return id;
  }

  FakeAudit audit_{3};
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
  prometheus::Registry registry_;
};

TEST_F(AuditOutboxTest, EveryCommittedEventReachesAuditOnceDespiteAnOutage) {
  std::set<uint64_t> committed;
  for (int i = 0; i < 25; ++i) {
    committed.insert(static_cast<uint64_t>(Record("GROUP_CREATED_" + std::to_string(i), true)));
    if (i == 10) Record("NEVER_HAPPENED", false);
  }

  AuditAppendReceiver receiver(Channel(), "groups", kToken);
  OutboxRelayOptions options;
  options.topic = kAuditTopic;
  options.batch_size = 10;
  options.min_backoff = absl::Milliseconds(1);
  options.max_backoff = absl::Milliseconds(5);
  auto relay = OutboxRelay::Create(*pool_, receiver, registry_, options);
  ASSERT_TRUE(relay.ok()) << relay.status();

  int delivered = 0;
  for (int pass = 0; pass < 50 && delivered < 25; ++pass) {
    absl::StatusOr<OutboxPass> result = (*relay)->RunOnce();
    if (result.ok()) delivered += result->delivered;
  }
  EXPECT_EQ(delivered, 25);
  EXPECT_EQ(audit_.refused(), 3);

  auto events = audit_.events();
  ASSERT_EQ(events.size(), 25u);
  std::set<uint64_t> received;
  for (const auto& [key, event] : events) {
    EXPECT_EQ(key.first, "groups");
    EXPECT_EQ(event.service(), "groups");
    EXPECT_NE(event.action(), "NEVER_HAPPENED");
    EXPECT_EQ(event.request_id(), "req-" + event.action());
    received.insert(key.second);
  }
  EXPECT_EQ(received, committed);

  // Nothing left: another pass delivers nothing more.
  absl::StatusOr<OutboxPass> idle = (*relay)->RunOnce();
  ASSERT_TRUE(idle.ok());
  EXPECT_EQ(idle->delivered, 0);
}

TEST_F(AuditOutboxTest, ABadTokenIsAFailedDeliveryNotALoss) {
  Record("ACCOUNT_CREATED", true);
  AuditAppendReceiver receiver(Channel(), "identity", "wrong-token");
  OutboxRecord record;
  record.id = 1;
  record.topic = kAuditTopic;
  audit::v1::AuditEvent event;
  event.set_action("ACCOUNT_CREATED");
  record.payload = event.SerializeAsString();
  absl::Status status = receiver.Deliver({record});
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(audit_.events().empty());
}

TEST_F(AuditOutboxTest, ACorruptRecordIsRefusedWholeBatch) {
  AuditAppendReceiver receiver(Channel(), "credit", kToken);
  OutboxRecord record;
  record.id = 7;
  record.topic = kAuditTopic;
  record.payload = "\xff\xff not a proto";
  absl::Status status = receiver.Deliver({record});
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(ErrorReason(status), "AUDIT_OUTBOX_CORRUPT");
}

TEST(ClientIpOfPeer, StripsSchemeAndPort) {
  EXPECT_EQ(ClientIpOfPeer("ipv4:203.0.113.7:51234"), "203.0.113.7");
  EXPECT_EQ(ClientIpOfPeer("ipv6:[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(ClientIpOfPeer("unix:/tmp/socket"), "");
  EXPECT_EQ(ClientIpOfPeer(""), "");
}

TEST(AuditEventFor, FillsWhoWhereAndWhich) {
  Caller caller{"mia", common::v1::ROLE_MODERATOR, ""};
  audit::v1::AuditEvent event = AuditEventFor(caller, "ipv4:10.1.2.3:999",
                                              "/qunzu.moderation.v1.ModerationService/ClaimReport",
                                              "REPORT_CLAIMED", "req-9");
  EXPECT_EQ(event.principal(), "mia");
  EXPECT_EQ(event.role(), common::v1::ROLE_MODERATOR);
  EXPECT_EQ(event.client_ip(), "10.1.2.3");
  EXPECT_EQ(event.method(), "/qunzu.moderation.v1.ModerationService/ClaimReport");
  EXPECT_EQ(event.action(), "REPORT_CLAIMED");
  EXPECT_EQ(event.request_id(), "req-9");
}

}  // namespace
}  // namespace qunzu
