// The audit binary killed with SIGKILL in the middle of a stream from
// another service's outbox relay, then restarted: every event the relay saw
// acknowledged is in the log, none twice, and the tree verifies with the
// stand-alone checks.
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/audit_outbox.h"
#include "common/auth.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/outbox.h"
#include "common/status.h"
#include "services/audit/log_export.h"
#include "services/audit/signer.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace qunzu::audit {
namespace {

constexpr char kToken[] = "groups-crash-test-token";

std::string BuildDir() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  self[n > 0 ? n : 0] = '\0';
  std::string dir(self);
  dir = dir.substr(0, dir.rfind('/'));
  return dir.substr(0, dir.rfind('/'));
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return 0;
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class AuditCrashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = qunzu::testing::MysqlDsnOrDie();
    MysqlOptions options = ParseMysqlDsn(dsn_).value();
    source_schema_ = qunzu::testing::UniqueName("crash_groups");
    audit_schema_ = qunzu::testing::UniqueName("crash_audit");
    source_ = MysqlPool::Create(options, source_schema_, 4).value();
    ASSERT_TRUE(ApplyMigrations(*source_, kCommonComponent, CommonMigrations()).ok());
    audit_ = MysqlPool::Create(options, audit_schema_, 2).value();

    dir_ = ::testing::TempDir() + "/" + audit_schema_;
    ASSERT_EQ(system(("mkdir -p " + dir_).c_str()), 0);
    const std::string pem = testing::NewKeyPem();
    std::ofstream(dir_ + "/key.pem") << pem;
    public_key_ = Signer::FromPem(pem).value()->public_key();
    std::ofstream(dir_ + "/auth.textproto")
        << "credentials { principal: \"service:groups\" role: ROLE_SERVICE service: \"groups\" "
           "token_sha256: \""
        << TokenDigest(kToken) << "\" }\n";
    port_ = FreePort();
  }

  void TearDown() override {
    StopAudit(SIGTERM);
    for (auto* pool : {source_.get(), audit_.get()}) {
      if (pool == nullptr) continue;
      auto lease = pool->Acquire(absl::Seconds(5));
      if (lease.ok()) (void)Execute(**lease, "DROP DATABASE IF EXISTS " + pool->schema());
    }
  }

  void StartAudit() {
    const std::string binary = BuildDir() + "/services/audit/qunzu-audit";
    std::vector<std::string> args = {
        binary,
        "--listen-host=127.0.0.1",
        absl::StrCat("--grpc-port=", port_),
        "--metrics-port=0",
        "--mysql-dsn=" + dsn_,
        "--mysql-schema=" + audit_schema_,
        "--auth-config=" + dir_ + "/auth.textproto",
        "--signing-key-file=" + dir_ + "/key.pem",
        "--checkpoint-every-entries=100",
        "--checkpoint-interval=200ms",
        "--log-level=warning",
    };
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      argv.reserve(args.size() + 1);
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      freopen((dir_ + "/audit.log").c_str(), "a", stderr);
      execv(binary.c_str(), argv.data());
      _exit(127);
    }
  }

  void StopAudit(int sig) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  uint64_t AuditTreeSize() {
    uint64_t size = 0;
    auto lease = audit_->Acquire(absl::Seconds(5));
    if (!lease.ok()) return 0;
    (void)Query(**lease, "SELECT tree_size FROM audit_tree_head WHERE id = 1", {},
                [&](const sql::ResultSet& row) {
                  size = row.getUInt64(1);
                  return absl::OkStatus();
                });
    return size;
  }

  std::string dsn_, source_schema_, audit_schema_, dir_, public_key_;
  std::unique_ptr<MysqlPool> source_, audit_;
  int port_ = 0;
  pid_t pid_ = -1;
  prometheus::Registry registry_;
};

TEST_F(AuditCrashTest, SigkillMidStreamLosesAndDuplicatesNothing) {
  constexpr int kEvents = 3000;
  StartAudit();

  // The source service: commits events to its outbox, a few per
  // transaction, while its relay delivers them.
  std::set<uint64_t> committed;
  std::atomic<bool> writing{true};
  std::thread writer([&] {
    for (int i = 0; i < kEvents;) {
      std::vector<uint64_t> ids;
      absl::Status s = WithTransaction(*source_, [&](sql::Connection& conn) -> absl::Status {
        ids.clear();
        for (int k = 0; k < 3; ++k) {
          v1::AuditEvent e = testing::Event("groups", 0, "GROUP_MEMBER_JOINED");
          e.clear_service();
          ASSIGN_OR_RETURN(int64_t id, RecordAuditEvent(conn, e));
          ids.push_back(static_cast<uint64_t>(id));
        }
        return absl::OkStatus();
      });
      ASSERT_TRUE(s.ok()) << s;
      committed.insert(ids.begin(), ids.end());
      i += 3;
      if (i % 30 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    writing = false;
  });

  AuditAppendReceiver receiver(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()),
      "groups", kToken, absl::Seconds(2));
  OutboxRelayOptions options;
  options.topic = kAuditTopic;
  options.batch_size = 50;
  options.poll_interval = absl::Milliseconds(5);
  options.min_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(100);
  auto relay = OutboxRelay::Create(*source_, receiver, registry_, options);
  ASSERT_TRUE(relay.ok()) << relay.status();
  (*relay)->Start();

  // Kill it once the stream is well under way, then bring it back.
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (AuditTreeSize() < 600 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  const uint64_t before_kill = AuditTreeSize();
  ASSERT_GE(before_kill, 600u);
  StopAudit(SIGKILL);
  ASSERT_LT(before_kill, static_cast<uint64_t>(kEvents)) << "the stream ended before the kill";
  absl::SleepFor(absl::Milliseconds(300));
  StartAudit();

  writer.join();
  // Wait for the relay to drain the outbox.
  uint64_t pending = 1;
  while (pending > 0 && absl::Now() < deadline + absl::Seconds(60)) {
    auto lease = source_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(Query(**lease, "SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL", {},
                      [&](const sql::ResultSet& row) {
                        pending = row.getUInt64(1);
                        return absl::OkStatus();
                      })
                    .ok());
    if (pending > 0) absl::SleepFor(absl::Milliseconds(20));
  }
  (*relay)->Stop();
  ASSERT_EQ(pending, 0u);
  ASSERT_FALSE(writing);
  ASSERT_EQ(committed.size(), static_cast<size_t>(kEvents));

  // Every committed event exactly once.
  auto lease = audit_->Acquire(absl::Seconds(5));
  ASSERT_TRUE(lease.ok());
  std::multiset<uint64_t> logged;
  auto stored = testing::StoredEvents(**lease);
  ASSERT_TRUE(stored.ok()) << stored.status();
  for (const auto& [leaf, event] : *stored) {
    if (event.service() == "groups") logged.insert(event.source_id());
  }
  EXPECT_EQ(logged.size(), committed.size());
  EXPECT_EQ(std::set<uint64_t>(logged.begin(), logged.end()), committed);
  EXPECT_EQ(AuditTreeSize(), static_cast<uint64_t>(kEvents));

  // Let the restarted service sign the tail, then verify independently.
  absl::SleepFor(absl::Milliseconds(600));
  auto report = VerifyDatabase(**lease, public_key_, {});
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->ok) << report->failure.detail();
  EXPECT_EQ(report->entries_checked, static_cast<uint64_t>(kEvents));
  EXPECT_EQ(report->tree_size, static_cast<uint64_t>(kEvents));
}

}  // namespace
}  // namespace qunzu::audit
