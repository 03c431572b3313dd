// The audit log's durable append rate (AuditLog::Append in process: one
// transaction per batch under the tree-head lock, entries, subtree hashes,
// dedupe rows, a signed checkpoint every 1,000 entries) at batch sizes 1,
// 100 and 1,000, against raw multi-row INSERTs of rows of the same size
// into the same MariaDB in the same run; then the acknowledgement latency
// of a paced 20,000 entries/s stream in batches of 100.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <prometheus/registry.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "services/audit/audit_log.h"
#include "services/audit/entry_codec.h"
#include "services/audit/signer.h"
#include "tests/bench/rpc_bench.h"
#include "tests/bench/scenarios.h"

namespace qunzu::bench {
namespace {

constexpr int kThreads = 4;
const absl::Duration kDuration = absl::Seconds(5);

std::string NewKeyPem() {
  EVP_PKEY* pkey = nullptr;
  EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  EVP_PKEY_keygen_init(ctx);
  EVP_PKEY_keygen(ctx, &pkey);
  EVP_PKEY_CTX_free(ctx);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, pkey, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  return pem;
}

// A typical event from groups (one subject, one detail).
audit::v1::AuditEvent Template() {
  audit::v1::AuditEvent e;
  e.set_service("groups");
  e.set_action("GROUP_MEMBER_JOINED");
  e.set_method("/qunzu.groups.v1.GroupService/JoinGroup");
  e.set_principal("chat-backend");
  e.set_role(common::v1::ROLE_PLATFORM);
  e.set_actor_account_id(4242);
  auto* s = e.add_subjects();
  s->set_kind(audit::v1::SUBJECT_KIND_GROUP);
  s->set_id(77);
  e.set_client_ip("203.0.113.7");
  e.set_request_id("req-0123456789abcdef");
  e.mutable_time()->set_seconds(1790000000);
  (*e.mutable_details())["invited_by"] = "1001";
  return e;
}

}  // namespace

int RunAuditBench() {
  const char* dsn = std::getenv("QUNZU_MYSQL_DSN");
  if (dsn == nullptr) {
    std::fprintf(stderr, "audit bench: QUNZU_MYSQL_DSN is not set (run through make bench)\n");
    return 1;
  }
  absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(dsn);
  if (!options.ok()) return 1;
  const std::string schema = absl::StrCat("bench_audit_", getpid());
  auto pool = MysqlPool::Create(*options, schema, 16);
  if (!pool.ok()) {
    std::fprintf(stderr, "audit bench: %s\n", std::string(pool.status().message()).c_str());
    return 1;
  }
  MysqlPool& mysql = **pool;
  if (!ApplyMigrations(mysql, kCommonComponent, CommonMigrations()).ok() ||
      !ApplyMigrations(mysql, "audit", audit::AuditLogMigrations()).ok()) {
    std::fprintf(stderr, "audit bench: migrations failed\n");
    return 1;
  }
  const audit::v1::AuditEvent event = Template();
  const size_t row_bytes = audit::EncodeEntry(event, absl::Now()).size();
  {
    auto lease = mysql.Acquire(absl::Seconds(5));
    if (!lease.ok() ||
        !Execute(**lease,
                 "CREATE TABLE raw_rows (id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, "
                 "payload MEDIUMBLOB NOT NULL) ENGINE=InnoDB")
             .ok()) {
      std::fprintf(stderr, "audit bench: cannot create raw_rows\n");
      return 1;
    }
  }
  std::shared_ptr<const audit::Signer> signer(audit::Signer::FromPem(NewKeyPem()).value());
  audit::AuditLogOptions log_options;
  log_options.checkpoint_every_entries = 1000;
  log_options.checkpoint_interval = absl::Seconds(1);
  prometheus::Registry registry;
  auto log = audit::AuditLog::Create(mysql, signer, log_options, &registry);
  if (!log.ok()) {
    std::fprintf(stderr, "audit bench: %s\n", std::string(log.status().message()).c_str());
    return 1;
  }
  const Caller caller{"service:groups", common::v1::ROLE_SERVICE, "groups"};
  std::atomic<uint64_t> next_source{1};
  const std::string payload(row_bytes, 'p');

  std::printf("## audit: durable appends (AuditLog::Append) against raw multi-row INSERTs\n\n");
  std::printf(
      "Rows of %zu bytes, %d client threads, %s per run, "
      "innodb_flush_log_at_trx_commit=1.\n\n",
      row_bytes, kThreads, absl::FormatDuration(kDuration).c_str());
  std::printf("| batch | run | entries/s | batches/s | ack p50 ms | ack p99 ms | errors |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<std::string> ratios;
  std::vector<std::string> index_notes;
  // The key index is built while the appends run, as the service does
  // (passes of up to 64 segments back to back, else every 200 ms); after
  // each run, how far behind it was and how long it took to catch up.
  auto index_lag = [&] {
    (*log)->UpdateGauges();
    for (const prometheus::MetricFamily& family : registry.Collect()) {
      if (family.name == "qunzu_audit_key_index_lag_entries") {
        return family.metric.at(0).gauge.value;
      }
    }
    return -1.0;
  };
  // Then the same with every entry of its own actor, group and request_id.
  for (const auto& [batch, distinct] : std::vector<std::pair<int, bool>>{
           {1, false}, {100, false}, {1000, false}, {100, true}, {1000, true}}) {
    audit::v1::AppendRequest request_template;
    for (int i = 0; i < batch; ++i) *request_template.add_events() = event;
    auto append = [&, batch = batch, distinct = distinct] {
      audit::v1::AppendRequest request = request_template;
      const uint64_t first = next_source.fetch_add(static_cast<uint64_t>(batch));
      for (int i = 0; i < batch; ++i) {
        audit::v1::AuditEvent* e = request.mutable_events(i);
        e->set_source_id(first + i);
        if (distinct) {
          e->set_actor_account_id(1000000 + first + i);
          e->mutable_subjects(0)->set_id(500000 + (first + i) % 100000);
          e->set_request_id(absl::StrCat("req-", absl::Hex(first + i, absl::kZeroPad16)));
        }
      }
      return (*log)->Append(caller, request).ok();
    };
    const std::string insert =
        "INSERT INTO raw_rows (payload) VALUES " +
        absl::StrJoin(std::vector<std::string>(static_cast<size_t>(batch), "(?)"), ",");
    auto raw = [&, batch = batch] {
      auto lease = mysql.Acquire(absl::Seconds(5));
      if (!lease.ok()) return false;
      std::vector<SqlValue> params(static_cast<size_t>(batch), SqlValue(payload));
      return Execute(**lease, insert, params).ok();
    };
    std::atomic<bool> stop_indexer{false};
    std::thread indexer([&] {
      while (!stop_indexer.load()) {
        absl::StatusOr<uint64_t> n = (*log)->IndexKeys(64);
        if (!n.ok() || *n < 64) absl::SleepFor(absl::Milliseconds(200));
      }
    });
    LoadResult a =
        RunLoad(distinct ? "audit Append, distinct actors/subjects/request_ids" : "audit Append",
                kThreads, kDuration, append);
    stop_indexer.store(true);
    indexer.join();
    const double lag = index_lag();
    const absl::Time drain_start = absl::Now();
    (void)(*log)->IndexKeys();
    index_notes.push_back(absl::StrCat("batch ", batch, distinct ? " distinct" : "", ": ", lag,
                                       " entries behind, caught up in ",
                                       absl::FormatDuration(absl::Now() - drain_start)));
    LoadResult r = RunLoad("raw INSERT", kThreads, kDuration, raw);
    for (const LoadResult* x : {&a, &r}) {
      std::printf("| %d | %s | %.0f | %.0f | %.2f | %.2f | %ld |\n", batch, x->name.c_str(),
                  x->qps * batch, x->qps, x->p50_us / 1000, x->p99_us / 1000, x->errors);
    }
    ratios.push_back(absl::StrCat("batch ", batch, distinct ? " distinct" : "", ": ",
                                  absl::SixDigits(a.qps / r.qps)));
  }
  std::printf("\nratio audit/raw (entries/s): %s\n", absl::StrJoin(ratios, ", ").c_str());
  std::printf("key index at the end of each run (segments of %llu): %s\n",
              static_cast<unsigned long long>(log_options.index_segment_leaves),
              absl::StrJoin(index_notes, "; ").c_str());

  // Paced: 20,000 entries/s as 200 batches of 100 per second from 4 senders.
  {
    audit::v1::AppendRequest request_template;
    for (int i = 0; i < 100; ++i) *request_template.add_events() = event;
    std::mutex mu;
    std::vector<double> latencies_ms;
    long errors = 0;
    const absl::Duration period = absl::Milliseconds(20);  // per sender: 50/s
    const absl::Time start = absl::Now() + absl::Milliseconds(100);
    const absl::Time end = start + kDuration;
    std::vector<std::thread> senders;
    senders.reserve(4);
    for (int t = 0; t < 4; ++t) {
      senders.emplace_back([&, t] {
        absl::Time due = start + period * t / 4;
        while (due < end) {
          absl::SleepFor(due - absl::Now());
          audit::v1::AppendRequest request = request_template;
          const uint64_t first = next_source.fetch_add(100);
          for (int i = 0; i < 100; ++i) request.mutable_events(i)->set_source_id(first + i);
          const absl::Time sent = absl::Now();
          const bool ok = (*log)->Append(caller, request).ok();
          const double ms = absl::ToDoubleMilliseconds(absl::Now() - sent);
          {
            std::lock_guard<std::mutex> lock(mu);
            latencies_ms.push_back(ms);
            if (!ok) ++errors;
          }
          due += period;
        }
      });
    }
    for (std::thread& s : senders) s.join();
    std::sort(latencies_ms.begin(), latencies_ms.end());
    auto pct = [&](double p) {
      return latencies_ms.empty()
                 ? 0.0
                 : latencies_ms[std::min(
                       latencies_ms.size() - 1,
                       static_cast<size_t>(p * static_cast<double>(latencies_ms.size())))];
    };
    std::printf(
        "\npaced 20,000 entries/s (batches of 100, 4 senders, %s): %zu batches, "
        "ack p50 %.2f ms, p99 %.2f ms, max %.2f ms, errors %ld\n",
        absl::FormatDuration(kDuration).c_str(), latencies_ms.size(), pct(0.5), pct(0.99),
        latencies_ms.empty() ? 0.0 : latencies_ms.back(), errors);
  }

  log->reset();
  auto lease = mysql.Acquire(absl::Seconds(5));
  if (lease.ok()) (void)Execute(**lease, "DROP DATABASE " + schema);
  return 0;
}

}  // namespace qunzu::bench
