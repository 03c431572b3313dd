// The cost of recording a state change the Qunzu way — in one transaction,
// the change, its request_id idempotency row and its audit outbox row —
// against the bare change, on the same MariaDB (durable commits) in the
// same run.
#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "common/audit_outbox.h"
#include "common/idempotency.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "tests/bench/rpc_bench.h"
#include "tests/bench/scenarios.h"

namespace qunzu::bench {
namespace {

constexpr int kThreads = 4;
const absl::Duration kDuration = absl::Seconds(5);

audit::v1::AuditEvent SampleEvent(int64_t n) {
  audit::v1::AuditEvent event;
  event.set_action("GROUP_MEMBER_JOINED");
  event.set_method("/qunzu.groups.v1.GroupService/JoinGroup");
  event.set_principal("chat-backend");
  event.set_role(common::v1::ROLE_PLATFORM);
  event.set_actor_account_id(static_cast<uint64_t>(n));
  event.set_client_ip("203.0.113.7");
  event.set_request_id("req-" + std::to_string(n));
  (*event.mutable_details())["join_policy"] = "OPEN";
  return event;
}

absl::Status InsertChange(sql::Connection& conn, int64_t n) {
  return Execute(conn, "INSERT INTO bench_change (group_id, account_id, role) VALUES (?, ?, ?)",
                 {n % 1000, n, "MEMBER"})
      .status();
}

}  // namespace

int RunOutboxBench() {
  const char* dsn = std::getenv("QUNZU_MYSQL_DSN");
  if (dsn == nullptr) {
    std::fprintf(stderr, "outbox bench: QUNZU_MYSQL_DSN is not set (run through make bench)\n");
    return 1;
  }
  absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(dsn);
  if (!options.ok()) return 1;
  auto pool = MysqlPool::Create(*options, "qunzu_bench_outbox", kThreads + 2);
  if (!pool.ok()) {
    std::fprintf(stderr, "outbox bench: %s\n", std::string(pool.status().message()).c_str());
    return 1;
  }
  MysqlPool& mysql = **pool;
  if (!ApplyMigrations(mysql, kCommonComponent, CommonMigrations()).ok()) return 1;
  {
    MysqlPool::Lease lease = *mysql.Acquire(absl::Seconds(5));
    if (!Execute(*lease,
                 "CREATE TABLE IF NOT EXISTS bench_change (id BIGINT AUTO_INCREMENT PRIMARY KEY, "
                 "group_id BIGINT NOT NULL, account_id BIGINT NOT NULL, role VARCHAR(16) NOT "
                 "NULL) ENGINE=InnoDB")
             .ok()) {
      return 1;
    }
  }

  std::atomic<int64_t> sequence{0};
  auto bare = [&] {
    int64_t n = sequence++;
    return WithTransaction(mysql, [&](sql::Connection& conn) { return InsertChange(conn, n); })
        .ok();
  };
  auto recorded = [&] {
    int64_t n = sequence++;
    audit::v1::AuditEvent event = SampleEvent(n);
    return WithTransaction(
               mysql,
               [&](sql::Connection& conn) -> absl::Status {
                 IdempotencyKey key{"chat-backend", "/qunzu.groups.v1.GroupService/JoinGroup",
                                    "req-" + std::to_string(n)};
                 absl::StatusOr<audit::v1::AuditEvent> response =
                     RunIdempotent<audit::v1::AuditEvent>(
                         conn, key, event, [&]() -> absl::StatusOr<audit::v1::AuditEvent> {
                           RETURN_IF_ERROR(InsertChange(conn, n));
                           RETURN_IF_ERROR(RecordAuditEvent(conn, event).status());
                           return event;
                         });
                 return response.status();
               })
        .ok();
  };

  std::printf("\n## outbox: one state change per transaction, %d threads, %s per run\n\n", kThreads,
              absl::FormatDuration(kDuration).c_str());
  std::printf("| run | TPS | p50 µs | p99 µs | p99.9 µs | CPU ms per 1k tx (client) | errors |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  double bare_tps = 0, ours_tps = 0, bare_p99 = 0, ours_p99 = 0;
  for (int round = 0; round < 2; ++round) {
    LoadResult b = RunLoad("change alone (baseline)", kThreads, kDuration, bare);
    LoadResult q =
        RunLoad("change + idempotency row + audit outbox row", kThreads, kDuration, recorded);
    std::printf("%s\n%s\n", FormatRow(b).c_str(), FormatRow(q).c_str());
    bare_tps += b.qps;
    ours_tps += q.qps;
    bare_p99 += b.p99_us;
    ours_p99 += q.p99_us;
  }
  std::printf("\nratio ours/baseline: TPS %.2f, p99 latency %.2f\n", ours_tps / bare_tps,
              ours_p99 / bare_p99);
  MysqlPool::Lease lease = *mysql.Acquire(absl::Seconds(5));
  (void)Execute(*lease, "DROP DATABASE qunzu_bench_outbox");
  return 0;
}

}  // namespace qunzu::bench
