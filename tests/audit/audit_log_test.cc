// The audit log against the real MariaDB: batched idempotent appends,
// validation (never a partial batch), signed checkpoints, proofs that
// verify, range verification that pinpoints tampering, queries (a
// regulator's is itself logged), and retention driven by a FakeClock months
// ahead: whole months purged, legal holds respected, verification resuming
// from the boundary checkpoint. Speculative group writes overtaken by
// another replica are redone: nothing lost, nothing twice, the tree verifies.
#include "services/audit/audit_log.h"

#include <cppconn/resultset.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace qunzu::audit {
namespace {

using testing::Event;

Caller Service(const std::string& name) {
  return Caller{"service:" + name, common::v1::ROLE_SERVICE, name};
}

Hash H(const std::string& bytes) { return HashFromBytes(bytes).value(); }

std::vector<Hash> Hashes(const google::protobuf::RepeatedPtrField<std::string>& in) {
  std::vector<Hash> out;
  for (const std::string& h : in) out.push_back(H(h));
  return out;
}

class AuditLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MysqlOptions options = ParseMysqlDsn(qunzu::testing::MysqlDsnOrDie()).value();
    schema_ = qunzu::testing::UniqueName("audit_log");
    auto pool = MysqlPool::Create(options, schema_, 8);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = *std::move(pool);
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    absl::Status s = ApplyMigrations(*pool_, "audit", AuditLogMigrations());
    ASSERT_TRUE(s.ok()) << s;
    signer_ = std::shared_ptr<const Signer>(Signer::FromPem(testing::NewKeyPem()).value());
    Open();
  }

  void TearDown() override {
    log_.reset();
    if (pool_) {
      auto lease = pool_->Acquire(absl::Seconds(5));
      if (lease.ok()) (void)Execute(**lease, "DROP DATABASE IF EXISTS " + schema_);
    }
  }

  // The options every log of these tests runs with, on `clock`.
  AuditLogOptions Options(const Clock* clock) const {
    AuditLogOptions options;
    options.clock = clock;
    options.checkpoint_every_entries = every_;
    options.checkpoint_interval = absl::Hours(1);
    options.retention = absl::Hours(24 * 180);
    options.index_segment_leaves = segment_;
    return options;
  }

  void Open() {
    log_.reset();
    auto log = AuditLog::Create(*pool_, signer_, Options(&clock_), nullptr);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
  }

  v1::AppendResponse AppendRange(const std::string& service, uint64_t first, uint64_t count) {
    v1::AppendRequest request;
    request.set_request_id(absl::StrCat(service, "-", first));
    for (uint64_t i = 0; i < count; ++i) *request.add_events() = Event(service, first + i);
    auto response = log_->Append(Service(service), request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::AppendResponse();
  }

  absl::Status Sql(const std::string& statement, const std::vector<SqlValue>& params = {}) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    if (!lease.ok()) return lease.status();
    return Execute(**lease, statement, params).status();
  }

  v1::VerifyRangeResponse Verify(uint64_t start = 0, uint64_t end = 0) {
    v1::VerifyRangeRequest request;
    request.set_start_leaf_index(start);
    request.set_end_leaf_index(end);
    auto response = log_->VerifyRange(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::VerifyRangeResponse();
  }

  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2026, 1, 10, 12, 0, 0), absl::UTCTimeZone())};
  int64_t every_ = 4;
  uint64_t segment_ = 4096;
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
  std::shared_ptr<const Signer> signer_;
  std::unique_ptr<AuditLog> log_;
};

TEST_F(AuditLogTest, AppendsInOrderAndDeduplicatesBySource) {
  v1::AppendResponse first = AppendRange("groups", 1, 3);
  ASSERT_EQ(first.results_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(first.results(i).leaf_index(), static_cast<uint64_t>(i));
    EXPECT_FALSE(first.results(i).duplicate());
  }
  EXPECT_EQ(first.tree_size(), 3u);
  // The same batch again (a relay retry), then one overlapping it.
  v1::AppendResponse again = AppendRange("groups", 1, 3);
  EXPECT_EQ(again.tree_size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(again.results(i).duplicate());
    EXPECT_EQ(again.results(i).leaf_index(), static_cast<uint64_t>(i));
  }
  v1::AppendResponse overlap = AppendRange("groups", 3, 2);
  EXPECT_TRUE(overlap.results(0).duplicate());
  EXPECT_EQ(overlap.results(0).leaf_index(), 2u);
  EXPECT_FALSE(overlap.results(1).duplicate());
  EXPECT_EQ(overlap.results(1).leaf_index(), 3u);
  // The same source id from another service is another entry.
  v1::AppendResponse other = AppendRange("credit", 1, 1);
  EXPECT_FALSE(other.results(0).duplicate());
  EXPECT_EQ(other.tree_size(), 5u);
  // A repeat inside one batch is stored once.
  v1::AppendRequest twice;
  *twice.add_events() = Event("groups", 50);
  *twice.add_events() = Event("groups", 50);
  auto r = log_->Append(Service("groups"), twice);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->results(0).leaf_index(), 5u);
  EXPECT_TRUE(r->results(1).duplicate());
  EXPECT_EQ(r->results(1).leaf_index(), 5u);
  EXPECT_EQ(r->tree_size(), 6u);
  EXPECT_TRUE(Verify(0, 6).ok());
}

TEST_F(AuditLogTest, ARequestIdReusedForAnotherBatchIsRefused) {
  AppendRange("groups", 1, 2);  // request_id "groups-1"
  v1::AppendRequest other;
  other.set_request_id("groups-1");
  *other.add_events() = Event("groups", 40);
  auto r = log_->Append(Service("groups"), other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(ErrorReason(r.status()), "REQUEST_ID_REUSED");
  // The retry of the first batch is still fine, and nothing was added.
  v1::AppendResponse retry = AppendRange("groups", 1, 2);
  EXPECT_TRUE(retry.results(0).duplicate());
  EXPECT_EQ(retry.tree_size(), 2u);
  // Another service may use the same request_id.
  v1::AppendRequest credit;
  credit.set_request_id("groups-1");
  *credit.add_events() = Event("credit", 1);
  EXPECT_TRUE(log_->Append(Service("credit"), credit).ok());
}

TEST_F(AuditLogTest, BadBatchesAreRefusedWhole) {
  auto reason = [&](const Caller& caller, const v1::AppendRequest& request) {
    auto r = log_->Append(caller, request);
    return r.ok() ? std::string("OK") : ErrorReason(r.status());
  };
  v1::AppendRequest empty;
  EXPECT_EQ(reason(Service("groups"), empty), "BATCH_EMPTY");
  v1::AppendRequest big;
  for (int i = 1; i <= 1001; ++i) *big.add_events() = Event("groups", i);
  EXPECT_EQ(reason(Service("groups"), big), "BATCH_TOO_LARGE");

  // A good event followed by a bad one: nothing is appended.
  auto with_bad = [&](v1::AuditEvent bad) {
    v1::AppendRequest request;
    *request.add_events() = Event("groups", 1);
    *request.add_events() = std::move(bad);
    return request;
  };
  EXPECT_EQ(reason(Service("groups"), with_bad(Event("billing", 2))), "UNKNOWN_SOURCE");
  EXPECT_EQ(reason(Service("groups"), with_bad(Event("credit", 2))), "SOURCE_MISMATCH");
  v1::AuditEvent utf8 = Event("groups", 2);
  utf8.set_principal(std::string("bad\xc3\x28", 5));
  auto r = log_->Append(Service("groups"), with_bad(utf8));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ErrorMetadata(r.status(), "index"), "1");
  v1::AuditEvent overlong = Event("groups", 2);
  (*overlong.mutable_details())["x"] = std::string("\xc0\xaf");
  EXPECT_EQ(reason(Service("groups"), with_bad(overlong)), "INVALID_FIELD");
  v1::AuditEvent huge = Event("groups", 2);
  for (int i = 0; i < 10; ++i)
    (*huge.mutable_details())[absl::StrCat("k", i)] = std::string(4000, 'x');
  auto too_large = log_->Append(Service("groups"), with_bad(huge));
  EXPECT_EQ(ErrorReason(too_large.status()), "ENTRY_TOO_LARGE");
  EXPECT_EQ(ErrorMetadata(too_large.status(), "index"), "1");
  v1::AuditEvent no_action = Event("groups", 2);
  no_action.set_action("lower case");
  EXPECT_EQ(reason(Service("groups"), with_bad(no_action)), "INVALID_FIELD");

  v1::GetCheckpointRequest latest;
  EXPECT_EQ(ErrorReason(log_->GetCheckpoint(latest).status()), "CHECKPOINT_NOT_FOUND");
  v1::QueryRequest all;
  auto q = log_->Query(Caller{"c", common::v1::ROLE_COMPLIANCE, ""}, "", all);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->entries_size(), 0);
  EXPECT_EQ(q->tree_size(), 0u);
}

TEST_F(AuditLogTest, AnAppendConnectionKilledBetweenGroupsIsReplaced) {
  // The append path writes on connections of its own, kept between
  // groups. The server drops them (as after a restart or an idle timeout):
  // the next append fails on its first statement, before anything is read
  // or written, and is retried on a new connection.
  // The connections open on the test's schema.
  auto sleeping = [&] {
    std::set<uint64_t> ids;
    auto lease = pool_->Acquire(absl::Seconds(5));
    EXPECT_TRUE(lease.ok());
    if (!lease.ok()) return ids;
    EXPECT_TRUE(Query(**lease, "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?",
                      {schema_},
                      [&](const sql::ResultSet& row) {
                        ids.insert(row.getUInt64(1));
                        return absl::OkStatus();
                      })
                    .ok());
    return ids;
  };
  const std::set<uint64_t> before = sleeping();
  AppendRange("groups", 1, 3);
  int killed = 0;
  for (uint64_t id : sleeping()) {
    if (before.count(id) > 0) continue;
    EXPECT_TRUE(Sql(absl::StrCat("KILL CONNECTION ", id)).ok());
    ++killed;
  }
  EXPECT_GE(killed, 1);
  v1::AppendResponse next = AppendRange("groups", 4, 3);
  ASSERT_EQ(next.results_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(next.results(i).leaf_index(), static_cast<uint64_t>(3 + i));
    EXPECT_FALSE(next.results(i).duplicate());
  }
  EXPECT_EQ(next.tree_size(), 6u);
  // The retry of the first batch still finds it.
  v1::AppendResponse again = AppendRange("groups", 1, 3);
  EXPECT_TRUE(again.results(0).duplicate());
  EXPECT_EQ(again.tree_size(), 6u);
  EXPECT_TRUE(Verify(0, 6).ok());
}

// The value of a counter or gauge in registry, or -1 when it is not there.
double CounterValue(prometheus::Registry& registry, const std::string& name) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) return family.metric[0].counter.value;
  }
  return -1;
}
double GaugeValue(prometheus::Registry& registry, const std::string& name) {
  for (const prometheus::MetricFamily& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) return family.metric[0].gauge.value;
  }
  return -1;
}

// Another replica appends while a group of this one has been built
// speculatively (on the head it read) but not yet inserted: the group's
// leaf indexes, subtree rows and dedupe answers are stale. Once with the
// head moved by entries that do not collide with the group's rows (found
// under the head-row lock), once with entries that complete the same
// subtrees and repeat the group's sources (duplicate keys on insert). Each
// time the group must be redone under the lock, with four appenders
// queueing behind it: every entry once, each answer naming the entry's
// real leaf, and the tree verifies.
TEST_F(AuditLogTest, ASpeculativeGroupOvertakenByAnotherReplicaIsRedone) {
  FakeClock other_clock(clock_.Now() + absl::Seconds(1));
  auto other = AuditLog::Create(*pool_, signer_, Options(&other_clock), nullptr);
  ASSERT_TRUE(other.ok()) << other.status();

  std::atomic<int> builds{0};
  std::vector<v1::AppendResponse> other_responses;
  AuditLogOptions options = Options(&clock_);
  options.after_speculative_build = [&] {
    const int n = ++builds;
    if (n != 2 && n != 5) return;
    v1::AppendRequest request;
    if (n == 2) {
      // Entries of another service with other subjects.
      for (uint64_t id = 9001; id <= 9003; ++id) {
        v1::AuditEvent e = Event("credit", id);
        e.mutable_subjects(0)->set_kind(v1::SUBJECT_KIND_ACCOUNT);
        *request.add_events() = e;
      }
      auto r = (*other)->Append(Service("credit"), request);
      ASSERT_TRUE(r.ok()) << r.status();
      other_responses.push_back(*r);
    } else {
      // Enough to complete subtrees of 16, and sources the first appender
      // sends too (whichever comes second is the duplicate).
      for (uint64_t id = 1; id <= 40; ++id) *request.add_events() = Event("groups", id);
      auto r = (*other)->Append(Service("groups"), request);
      ASSERT_TRUE(r.ok()) << r.status();
      other_responses.push_back(*r);
    }
  };
  prometheus::Registry registry;
  log_.reset();
  auto log = AuditLog::Create(*pool_, signer_, options, &registry);
  ASSERT_TRUE(log.ok()) << log.status();
  log_ = *std::move(log);

  // Four appenders, ten batches of ten each; the first sends sources 1..100.
  std::vector<std::vector<std::pair<uint64_t, v1::AppendResult>>> answers(4);
  std::vector<std::thread> appenders;
  appenders.reserve(4);
  for (int t = 0; t < 4; ++t) {
    appenders.emplace_back([&, t] {
      for (int b = 0; b < 10; ++b) {
        v1::AppendRequest request;
        request.set_request_id(absl::StrCat("t", t, "-b", b));
        const uint64_t first =
            (static_cast<uint64_t>(t) * 1000) + (static_cast<uint64_t>(b) * 10) + 1;
        for (uint64_t i = 0; i < 10; ++i) *request.add_events() = Event("groups", first + i);
        auto r = log_->Append(Service("groups"), request);
        ASSERT_TRUE(r.ok()) << r.status();
        for (int i = 0; i < r->results_size(); ++i) {
          answers[t].emplace_back(first + static_cast<uint64_t>(i), r->results(i));
        }
      }
    });
  }
  for (std::thread& a : appenders) a.join();
  EXPECT_GE(builds.load(), 5);
  ASSERT_EQ(other_responses.size(), 2u);
  EXPECT_GE(CounterValue(registry, "qunzu_audit_append_groups_redone_total"), 2);

  // Every (service, source_id) once, at leaves 0..n-1 without a gap.
  std::map<std::pair<std::string, uint64_t>, uint64_t> leaf_of;
  uint64_t rows = 0;
  {
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    auto stored = testing::StoredEvents(**lease);
    ASSERT_TRUE(stored.ok()) << stored.status();
    for (const auto& [leaf, event] : *stored) {
      EXPECT_EQ(leaf, rows);
      ++rows;
      leaf_of[{event.service(), event.source_id()}] = leaf;
    }
    // The dedupe runs say the same.
    uint64_t sources = 0;
    ASSERT_TRUE(Query(**lease,
                      "SELECT service, first_source, source_count, first_leaf FROM audit_sources",
                      {},
                      [&](const sql::ResultSet& row) {
                        for (uint64_t i = 0; i < row.getUInt64(3); ++i) {
                          ++sources;
                          const std::pair<std::string, uint64_t> key = {
                              std::string(row.getString(1)), row.getUInt64(2) + i};
                          auto it = leaf_of.find(key);
                          EXPECT_TRUE(it != leaf_of.end()) << key.first << " " << key.second;
                          if (it != leaf_of.end()) {
                            EXPECT_EQ(it->second, row.getUInt64(4) + i);
                          }
                        }
                        return absl::OkStatus();
                      })
                    .ok());
    EXPECT_EQ(sources, 403u);
  }
  // 400 from the appenders and 3 credit; groups 1..40 are the first
  // appender's too.
  EXPECT_EQ(rows, 403u);
  EXPECT_EQ(leaf_of.size(), 403u);
  std::set<uint64_t> leaves;
  for (const auto& [key, leaf] : leaf_of) leaves.insert(leaf);
  ASSERT_EQ(leaves.size(), 403u);
  EXPECT_EQ(*leaves.rbegin(), 402u);
  for (int t = 0; t < 4; ++t) {
    ASSERT_EQ(answers[t].size(), 100u);
    for (const auto& [source_id, result] : answers[t]) {
      EXPECT_EQ(result.leaf_index(), (leaf_of[{"groups", source_id}])) << source_id;
    }
  }
  for (const v1::AppendResponse& r : other_responses) {
    for (const v1::AppendResult& result : r.results()) {
      EXPECT_LT(result.leaf_index(), 403u);
    }
  }
  // Sources 1..40 were sent by both: exactly one answer says new.
  for (uint64_t id = 1; id <= 40; ++id) {
    int fresh = other_responses[1].results(static_cast<int>(id - 1)).duplicate() ? 0 : 1;
    for (const auto& [source_id, result] : answers[0]) {
      if (source_id == id && !result.duplicate()) ++fresh;
    }
    EXPECT_EQ(fresh, 1) << id;
  }
  // Checkpoints every 4 entries: the newest covers all but at most 3.
  v1::VerifyRangeResponse verified = Verify();
  EXPECT_TRUE(verified.ok()) << verified.DebugString();
  EXPECT_GE(verified.entries_checked(), 400u);
}

// A group built on one still in flight takes over the head that group
// will leave, checkpoints included: with one replica nothing is ever redone,
// however often checkpoints fall (every 7 entries, every batch by time).
TEST_F(AuditLogTest, GroupsBuiltOnGroupsInFlightAreNeverStaleAlone) {
  for (const absl::Duration interval : {absl::Hours(1), absl::ZeroDuration()}) {
    prometheus::Registry registry;
    AuditLogOptions options = Options(&clock_);
    options.checkpoint_every_entries = 7;
    options.checkpoint_interval = interval;
    log_.reset();
    auto log = AuditLog::Create(*pool_, signer_, options, &registry);
    ASSERT_TRUE(log.ok()) << log.status();
    log_ = *std::move(log);
    const uint64_t base = interval == absl::ZeroDuration() ? 100000 : 0;
    std::vector<std::thread> appenders;
    for (uint64_t t = 0; t < 4; ++t) {
      appenders.emplace_back([&, t] {
        for (uint64_t b = 0; b < 25; ++b) {
          v1::AppendRequest request;
          for (uint64_t i = 0; i < 3; ++i) {
            *request.add_events() = Event("groups", base + t * 1000 + b * 3 + i + 1);
          }
          auto r = log_->Append(Service("groups"), request);
          EXPECT_TRUE(r.ok()) << r.status();
        }
      });
    }
    for (std::thread& a : appenders) a.join();
    EXPECT_EQ(CounterValue(registry, "qunzu_audit_append_groups_redone_total"), 0);
    EXPECT_GE(CounterValue(registry, "qunzu_audit_checkpoints_signed_total"), 300 / 7 / 2);
  }
  v1::VerifyRangeResponse verified = Verify();
  EXPECT_TRUE(verified.ok()) << verified.first_failure().detail();
  EXPECT_EQ(verified.entries_checked(), 600u);
}

TEST_F(AuditLogTest, CheckpointsAreSignedAndProofsVerify) {
  // 20 leaves; checkpoints at 2 (the first), 6, 10, 14, 18 (every 4), then
  // 20 once the interval passed.
  for (uint64_t i = 0; i < 10; ++i) AppendRange("groups", 1 + i * 2, 2);
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(log_->MaybeCheckpoint().ok());
  v1::ListCheckpointsRequest list_request;
  auto list = log_->ListCheckpoints(list_request);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->checkpoints_size(), 6);
  EXPECT_EQ(list->checkpoints(1).tree_size(), 6u);
  ASSERT_EQ(list->signing_keys_size(), 1);
  EXPECT_EQ(list->signing_keys(0).public_key(), signer_->public_key());
  for (const v1::Checkpoint& cp : list->checkpoints()) {
    EXPECT_TRUE(
        VerifySignature(signer_->public_key(), CheckpointSignedMessage(cp), cp.signature()));
    EXPECT_EQ(cp.key_id(), signer_->key_id());
  }
  v1::GetCheckpointRequest latest_request;
  auto latest = log_->GetCheckpoint(latest_request);
  ASSERT_TRUE(latest.ok());
  const v1::Checkpoint cp = latest->checkpoint();
  EXPECT_EQ(cp.tree_size(), 20u);
  const Hash root = H(cp.root_hash());

  // Every leaf is in the latest tree, with the hash of its canonical bytes.
  v1::QueryRequest query;
  query.mutable_page()->set_page_size(1000);
  auto entries = log_->Query(Caller{"c", common::v1::ROLE_COMPLIANCE, ""}, "", query);
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->entries_size(), 20);
  for (const v1::AuditEntry& e : entries->entries()) {
    v1::GetInclusionProofRequest request;
    request.set_leaf_index(e.leaf_index());
    auto proof = log_->GetInclusionProof(request);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_EQ(proof->leaf_hash(), HashToBytes(LeafHash(e.canonical_entry())));
    EXPECT_TRUE(
        VerifyInclusion(e.leaf_index(), 20, H(proof->leaf_hash()), Hashes(proof->hashes()), root)
            .ok());
  }
  // Every earlier checkpoint is consistent with the latest.
  for (const v1::Checkpoint& old : list->checkpoints()) {
    v1::GetConsistencyProofRequest request;
    request.set_first_tree_size(old.tree_size());
    auto proof = log_->GetConsistencyProof(request);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(
        VerifyConsistency(old.tree_size(), 20, H(old.root_hash()), root, Hashes(proof->hashes()))
            .ok());
  }
  // Past the tree: OUT_OF_RANGE.
  v1::GetInclusionProofRequest past;
  past.set_leaf_index(20);
  past.set_tree_size(21);
  auto r = log_->GetInclusionProof(past);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  past.set_tree_size(20);
  EXPECT_EQ(ErrorReason(log_->GetInclusionProof(past).status()), "LEAF_INDEX_OUT_OF_RANGE");
  v1::GetConsistencyProofRequest cons;
  cons.set_first_tree_size(3);
  cons.set_second_tree_size(99);
  EXPECT_EQ(log_->GetConsistencyProof(cons).status().code(), absl::StatusCode::kOutOfRange);
  cons.set_first_tree_size(9);
  cons.set_second_tree_size(5);
  EXPECT_EQ(ErrorReason(log_->GetConsistencyProof(cons).status()), "TREE_SIZES_OUT_OF_ORDER");
  v1::VerifyRangeRequest vr;
  vr.set_end_leaf_index(21);
  EXPECT_EQ(log_->VerifyRange(vr).status().code(), absl::StatusCode::kOutOfRange);

  // The interval signs what waited.
  AppendRange("groups", 100, 1);
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(log_->MaybeCheckpoint().ok());
  EXPECT_EQ(log_->GetCheckpoint(latest_request)->checkpoint().tree_size(), 21u);
  v1::VerifyRangeResponse ok = Verify();
  EXPECT_TRUE(ok.ok()) << ok.first_failure().detail();
  EXPECT_EQ(ok.entries_checked(), 21u);
}

TEST_F(AuditLogTest, VerifyRangeFindsTampering) {
  // Three batches, three bundles: leaves 0..11, 12..15, 16..19.
  AppendRange("groups", 1, 12);
  AppendRange("groups", 13, 4);
  AppendRange("groups", 17, 4);
  ASSERT_TRUE(Verify().ok());
  auto edit =
      [&](uint64_t leaf,
          const std::function<void(std::vector<std::string>&, std::vector<std::string>&)>& fn) {
        auto lease = pool_->Acquire(absl::Seconds(5));
        ASSERT_TRUE(lease.ok());
        ASSERT_TRUE(testing::EditBundle(**lease, leaf, fn).ok());
      };
  // The last bundle deleted.
  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf = 16").ok());
  v1::VerifyRangeResponse r = Verify();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.first_failure().kind(), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING);
  EXPECT_EQ(r.first_failure().leaf_index(), 16u);
  // Entry 13, inside the second bundle, cut out with its leaf hash: the
  // bundle's last leaf goes missing.
  edit(13, [](std::vector<std::string>& entries, std::vector<std::string>& hashes) {
    entries.erase(entries.begin() + 1);
    hashes.erase(hashes.begin() + 1);
  });
  r = Verify();
  EXPECT_EQ(r.first_failure().kind(), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING);
  EXPECT_EQ(r.first_failure().leaf_index(), 15u);
  // One byte of entry 5, inside the first bundle, changed.
  edit(5, [](std::vector<std::string>& entries, std::vector<std::string>&) {
    entries[5][20] = static_cast<char>(entries[5][20] ^ 1);
  });
  r = Verify();
  EXPECT_EQ(r.first_failure().kind(), v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH);
  EXPECT_EQ(r.first_failure().leaf_index(), 5u);
  // Entries 2 and 3 swapped.
  edit(2, [](std::vector<std::string>& entries, std::vector<std::string>&) {
    std::swap(entries[2], entries[3]);
  });
  r = Verify();
  EXPECT_EQ(r.first_failure().kind(), v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH);
  EXPECT_EQ(r.first_failure().leaf_index(), 2u);
}

TEST_F(AuditLogTest, QueriesFilterPageAndRegulatorQueriesAreLogged) {
  AppendRange("groups", 1, 9);
  AppendRange("credit", 1, 3);
  Caller compliance{"alice@compliance", common::v1::ROLE_COMPLIANCE, ""};
  auto count = [&](v1::QueryRequest q) {
    q.mutable_page()->set_page_size(1000);
    auto r = log_->Query(compliance, "", q);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->entries_size() : -1;
  };
  v1::QueryRequest by_service;
  by_service.mutable_filter()->set_service("credit");
  EXPECT_EQ(count(by_service), 3);
  v1::QueryRequest by_subject;
  by_subject.mutable_filter()->mutable_subject()->set_kind(v1::SUBJECT_KIND_GROUP);
  by_subject.mutable_filter()->mutable_subject()->set_id(1);  // source ids 3, 6, 9 and 3
  EXPECT_EQ(count(by_subject), 4);
  v1::QueryRequest by_actor;
  by_actor.mutable_filter()->set_actor_account_id(1000 + 2);  // source ids 2, 9 and 2
  EXPECT_EQ(count(by_actor), 3);
  v1::QueryRequest by_time;
  by_time.mutable_filter()->mutable_start_time()->set_seconds(1790000000 + 3);
  by_time.mutable_filter()->mutable_end_time()->set_seconds(1790000000 + 6);
  EXPECT_EQ(count(by_time), 4);  // groups 3, 4, 5 and credit 3
  v1::QueryRequest by_action;
  by_action.mutable_filter()->set_action("NOPE");
  EXPECT_EQ(count(by_action), 0);
  v1::QueryRequest bad_time = by_time;
  bad_time.mutable_filter()->mutable_end_time()->set_seconds(1);
  EXPECT_EQ(ErrorReason(log_->Query(compliance, "", bad_time).status()), "TIME_RANGE_INVALID");

  // Pages of 5 in leaf order.
  std::vector<uint64_t> seen;
  v1::QueryRequest paged;
  paged.mutable_page()->set_page_size(5);
  for (;;) {
    auto r = log_->Query(compliance, "", paged);
    ASSERT_TRUE(r.ok());
    for (const v1::AuditEntry& e : r->entries()) seen.push_back(e.leaf_index());
    if (r->page().next_page_token().empty()) break;
    paged.mutable_page()->set_page_token(r->page().next_page_token());
  }
  ASSERT_EQ(seen.size(), 12u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], i);

  // Compliance reads leave no trace; the regulator's do (R13.1).
  Caller regulator{"inspector-7", common::v1::ROLE_REGULATOR, ""};
  v1::QueryRequest inspect;
  inspect.set_purpose("case 2026-114");
  inspect.mutable_filter()->set_service("groups");
  auto r = log_->Query(regulator, "ipv4:198.51.100.9:4411", inspect);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->entries_size(), 9);
  v1::QueryRequest own;
  own.mutable_filter()->set_service("audit");
  auto logged = log_->Query(compliance, "", own);
  ASSERT_TRUE(logged.ok());
  ASSERT_EQ(logged->entries_size(), 1);
  const v1::AuditEvent& e = logged->entries(0).event();
  EXPECT_EQ(e.action(), "AUDIT_LOG_QUERIED");
  EXPECT_EQ(e.principal(), "inspector-7");
  EXPECT_EQ(e.role(), common::v1::ROLE_REGULATOR);
  EXPECT_EQ(e.client_ip(), "198.51.100.9");
  EXPECT_EQ(e.details().at("purpose"), "case 2026-114");
  EXPECT_EQ(e.details().at("entries_returned"), "9");
}

// Query reads candidate bundles from posting lists and checks each entry:
// over a log of many bundles of random events, every filter (alone or
// combined, with leaf bounds and pages of any size) gives exactly what a
// scan of the stored entries gives, in leaf order.
TEST_F(AuditLogTest, QueryMatchesAScanOfTheLog) {
  segment_ = 16;
  Open();
  std::mt19937 rng(20261130);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> services = {"groups", "credit", "moderation", "identity"};
  const std::vector<std::string> actions = {"GROUP_CREATED", "MEMBER_MUTED", "REPORT_FILED"};
  const std::vector<std::string> principals = {"", "chat-backend", "ops@trust"};
  std::map<std::string, uint64_t> next_id;
  for (int b = 0; b < 60; ++b) {
    const std::string& service = services[pick(4)];
    v1::AppendRequest request;
    const int size = 1 + pick(b % 5 == 0 ? 60 : 8);
    for (int i = 0; i < size; ++i) {
      v1::AuditEvent e;
      e.set_service(service);
      e.set_source_id(++next_id[service]);
      e.set_action(actions[pick(3)]);
      e.set_principal(principals[pick(3)]);
      e.set_actor_account_id(static_cast<uint64_t>(pick(4)));
      for (int k = pick(4); k > 0; --k) {
        v1::Subject* subject = e.add_subjects();
        subject->set_kind(pick(2) == 0 ? v1::SUBJECT_KIND_GROUP : v1::SUBJECT_KIND_ACCOUNT);
        subject->set_id(static_cast<uint64_t>(1 + pick(4)));
      }
      if (pick(10) != 0) e.mutable_time()->set_seconds(1790000000 + pick(100));
      if (pick(2) == 0) e.set_request_id(absl::StrCat("r", pick(5)));
      *request.add_events() = e;
    }
    ASSERT_TRUE(log_->Append(Service(service), request).ok());
    clock_.Advance(absl::Seconds(pick(3)));
    // The key index covers the first half; the rest is scanned.
    if (b == 30) {
      ASSERT_GT(log_->IndexKeys().value(), 5u);
    }
  }
  std::vector<std::pair<uint64_t, v1::AuditEvent>> stored;
  {
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    auto events = testing::StoredEvents(**lease);
    ASSERT_TRUE(events.ok()) << events.status();
    stored = *std::move(events);
  }
  ASSERT_GT(stored.size(), 300u);
  Caller compliance{"alice@compliance", common::v1::ROLE_COMPLIANCE, ""};
  int nonempty = 0;
  for (int round = 0; round < 400; ++round) {
    // Then all complete segments indexed, only the last part scanned.
    if (round == 200) {
      ASSERT_GT(log_->IndexKeys().value(), 5u);
    }
    v1::AuditFilter f;
    if (pick(4) == 0) f.set_service(services[pick(4)]);
    if (pick(4) == 0) f.set_action(actions[pick(3)]);
    if (pick(5) == 0) f.set_principal(principals[1 + pick(2)]);
    if (pick(4) == 0) f.set_actor_account_id(static_cast<uint64_t>(1 + pick(3)));
    if (pick(4) == 0) f.set_request_id(absl::StrCat("r", pick(5)));
    if (pick(4) == 0) {
      f.mutable_subject()->set_kind(pick(2) == 0 ? v1::SUBJECT_KIND_GROUP
                                                 : v1::SUBJECT_KIND_ACCOUNT);
      f.mutable_subject()->set_id(static_cast<uint64_t>(1 + pick(4)));
    }
    if (pick(4) == 0) {
      const int from = pick(100);
      f.mutable_start_time()->set_seconds(1790000000 + from);
      f.mutable_end_time()->set_seconds(1790000000 + from + 1 + pick(30));
    } else if (pick(6) == 0) {
      f.mutable_start_time()->set_seconds(1790000000 + pick(100));
    }
    if (pick(5) == 0) {
      f.set_start_leaf_index(static_cast<uint64_t>(pick(static_cast<int>(stored.size()))));
      if (pick(2) == 0) f.set_end_leaf_index(f.start_leaf_index() + 1 + pick(100));
    }
    std::vector<uint64_t> want;
    for (const auto& [leaf, e] : stored) {
      if (leaf < f.start_leaf_index() || (f.end_leaf_index() != 0 && leaf >= f.end_leaf_index()))
        continue;
      if (!f.service().empty() && e.service() != f.service()) continue;
      if (!f.action().empty() && e.action() != f.action()) continue;
      if (!f.principal().empty() && e.principal() != f.principal()) continue;
      if (f.actor_account_id() != 0 && e.actor_account_id() != f.actor_account_id()) continue;
      if (!f.request_id().empty() && e.request_id() != f.request_id()) continue;
      if (f.has_start_time() && (!e.has_time() || e.time().seconds() < f.start_time().seconds()))
        continue;
      if (f.has_end_time() && (!e.has_time() || e.time().seconds() >= f.end_time().seconds()))
        continue;
      if (f.has_subject()) {
        bool found = false;
        for (const v1::Subject& s : e.subjects()) {
          found = found || (s.kind() == f.subject().kind() && s.id() == f.subject().id());
        }
        if (!found) continue;
      }
      want.push_back(leaf);
    }
    std::vector<uint64_t> got;
    v1::QueryRequest q;
    *q.mutable_filter() = f;
    q.mutable_page()->set_page_size(1 + pick(round % 2 == 0 ? 7 : 500));
    for (int pages = 0; pages < 1000; ++pages) {
      auto r = log_->Query(compliance, "", q);
      ASSERT_TRUE(r.ok()) << r.status();
      for (const v1::AuditEntry& e : r->entries()) {
        got.push_back(e.leaf_index());
        EXPECT_EQ(e.event().source_id(), stored[e.leaf_index()].second.source_id());
      }
      if (r->page().next_page_token().empty()) break;
      q.mutable_page()->set_page_token(r->page().next_page_token());
    }
    ASSERT_EQ(got, want) << f.ShortDebugString();
    nonempty += want.empty() ? 0 : 1;
  }
  EXPECT_GT(nonempty, 200);  // the filters did select something
}

// Segments are indexed once, whichever replica gets there: two indexing at
// once share the work, and what the index says matches a scan.
TEST_F(AuditLogTest, TwoReplicasIndexEachSegmentOnce) {
  segment_ = 16;
  Open();
  for (uint64_t first = 1; first <= 1000; first += 100) AppendRange("groups", first, 100);
  prometheus::Registry registry;
  auto other = AuditLog::Create(*pool_, signer_, Options(&clock_), &registry);
  ASSERT_TRUE(other.ok()) << other.status();
  uint64_t mine = 0;
  uint64_t theirs = 0;
  std::thread t([&] { theirs = (*other)->IndexKeys().value(); });
  mine = log_->IndexKeys().value();
  t.join();
  EXPECT_EQ(mine + theirs, 1000u / 16);
  EXPECT_EQ(log_->IndexKeys().value(), 0u);
  (*other)->UpdateGauges();
  EXPECT_EQ(GaugeValue(registry, "qunzu_audit_key_index_lag_entries"), 1000 % 16);
  Caller compliance{"c", common::v1::ROLE_COMPLIANCE, ""};
  v1::QueryRequest by_request;
  by_request.mutable_filter()->set_request_id("req-500");  // one per source id
  auto found = log_->Query(compliance, "", by_request);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->entries_size(), 1);
  EXPECT_EQ(found->entries(0).leaf_index(), 499u);
  v1::QueryRequest by_subject;
  by_subject.mutable_filter()->mutable_subject()->set_kind(v1::SUBJECT_KIND_GROUP);
  by_subject.mutable_filter()->mutable_subject()->set_id(3);  // source ids 2, 5, 8, ...
  by_subject.mutable_page()->set_page_size(1000);
  found = log_->Query(compliance, "", by_subject);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->entries_size(), 333);
}

// Dedupe rows are runs of consecutive source ids: an id sent again is found
// wherever it lies in a run (its first, its last, inside, a run of one),
// among ids that are new, scattered or repeated within the batch, and per
// service.
TEST_F(AuditLogTest, EveryIdSentAgainIsFoundInItsRun) {
  std::mt19937 rng(7);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  const std::vector<std::string> services = {"groups", "credit"};
  std::map<std::pair<std::string, uint64_t>, uint64_t> leaf_of;
  std::map<std::string, uint64_t> next_id = {{"groups", 1}, {"credit", 1}};
  std::map<std::string, std::vector<uint64_t>> sent;
  uint64_t tree_size = 0;
  int again = 0;
  for (int b = 0; b < 80; ++b) {
    const std::string& service = services[pick(2)];
    v1::AppendRequest request;
    std::vector<uint64_t> ids;
    const int size = 1 + pick(40);
    for (int i = 0; i < size; ++i) {
      const int how = pick(8);
      if (how < 4 || leaf_of.empty()) {
        ids.push_back(next_id[service]++);  // the next one: runs
      } else if (how < 6) {
        next_id[service] += static_cast<uint64_t>(pick(3000));  // a gap
        ids.push_back(next_id[service]++);
      } else if (how < 7 && !sent[service].empty()) {
        // One this service sent before, anywhere in its runs.
        ids.push_back(
            sent[service][static_cast<size_t>(pick(static_cast<int>(sent[service].size())))]);
      } else {
        // One the other service sent (a different key), or never sent.
        const std::string& other = services[service == "groups" ? 1 : 0];
        ids.push_back(
            sent[other].empty() || pick(2) == 0
                ? next_id[service] + 5000 + static_cast<uint64_t>(pick(100))
                : sent[other][static_cast<size_t>(pick(static_cast<int>(sent[other].size())))]);
      }
    }
    for (uint64_t id : ids) *request.add_events() = testing::Event(service, id);
    auto r = log_->Append(Service(service), request);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->results_size(), size);
    for (int i = 0; i < size; ++i) {
      auto [it, added] = leaf_of.emplace(std::make_pair(service, ids[i]), tree_size);
      if (added) {
        ++tree_size;
        sent[service].push_back(ids[i]);
      }
      again += added ? 0 : 1;
      EXPECT_EQ(r->results(i).duplicate(), !added) << service << " " << ids[i];
      EXPECT_EQ(r->results(i).leaf_index(), it->second) << service << " " << ids[i];
    }
  }
  EXPECT_GT(again, 100);
  EXPECT_EQ(Verify().entries_checked(), tree_size);
  EXPECT_TRUE(Verify().ok());
}

// A log written before bundles (migration 1's one row per entry, subtrees
// stored from 16 leaves) is converted by migration 2: it verifies, answers
// queries and proofs, deduplicates against what it held, and goes on.
TEST(AuditMigrationTest, AOneRowPerEntryLogBecomesBundles) {
  MysqlOptions options = ParseMysqlDsn(qunzu::testing::MysqlDsnOrDie()).value();
  const std::string schema = qunzu::testing::UniqueName("audit_migrate");
  auto pool = MysqlPool::Create(options, schema, 4);
  ASSERT_TRUE(pool.ok()) << pool.status();
  ASSERT_TRUE(ApplyMigrations(**pool, kCommonComponent, CommonMigrations()).ok());
  const std::vector<Migration> first(AuditLogMigrations().begin(),
                                     AuditLogMigrations().begin() + 1);
  ASSERT_TRUE(ApplyMigrations(**pool, "audit", first).ok());
  auto signer = std::shared_ptr<const Signer>(Signer::FromPem(testing::NewKeyPem()).value());
  const absl::Time january =
      absl::FromCivil(absl::CivilSecond(2026, 1, 20, 8, 0, 0), absl::UTCTimeZone());
  constexpr uint64_t kOld = 300;
  {
    auto lease = (*pool)->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    sql::Connection& conn = **lease;
    for (const char* p : {"p202601 VALUES LESS THAN (TO_DAYS('2026-02-01'))",
                          "p202602 VALUES LESS THAN (TO_DAYS('2026-03-01'))"}) {
      ASSERT_TRUE(
          Execute(conn, absl::StrCat("ALTER TABLE audit_entries ADD PARTITION (PARTITION ", p, ")"))
              .ok());
    }
    // As the old writer left it: entries, subjects, nodes from level 4, head.
    Frontier frontier;
    for (uint64_t i = 0; i < kOld; ++i) {
      const v1::AuditEvent e = Event("groups", i + 1);
      const absl::Time at = january + absl::Seconds(static_cast<int64_t>(i));
      const std::string bytes = EncodeEntry(e, at);
      const Hash leaf = LeafHash(bytes);
      ASSERT_TRUE(Execute(conn,
                          "INSERT INTO audit_entries (leaf_index, appended_at, event_time, "
                          "service, source_id, action, principal, actor_account_id, request_id, "
                          "entry, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          {i, at, absl::FromUnixSeconds(e.time().seconds()), e.service(),
                           e.source_id(), e.action(), e.principal(), e.actor_account_id(),
                           e.request_id(), bytes, HashToBytes(leaf)})
                      .ok());
      ASSERT_TRUE(Execute(conn,
                          "INSERT INTO audit_subjects (kind, subject_id, leaf_index) VALUES "
                          "(?, ?, ?)",
                          {static_cast<int64_t>(e.subjects(0).kind()), e.subjects(0).id(), i})
                      .ok());
      std::vector<std::pair<NodeId, Hash>> nodes;
      frontier.Append(leaf, [&](const NodeId& id, const Hash& h) {
        if (id.level >= 4) nodes.emplace_back(id, h);
      });
      for (const auto& [id, h] : nodes) {
        ASSERT_TRUE(Execute(conn,
                            "INSERT INTO audit_nodes (level, node_index, hash) VALUES (?, ?, ?)",
                            {id.level, id.index, HashToBytes(h)})
                        .ok());
      }
    }
    const absl::Time last = january + absl::Seconds(kOld - 1);
    const std::string root = HashToBytes(frontier.Root());
    ASSERT_TRUE(Execute(conn,
                        "INSERT INTO audit_signing_keys (key_id, public_key, first_used_at) "
                        "VALUES (?, ?, ?)",
                        {signer->key_id(), signer->public_key(), january})
                    .ok());
    ASSERT_TRUE(Execute(conn,
                        "INSERT INTO audit_checkpoints (tree_size, root_hash, created_at, key_id, "
                        "signature) VALUES (?, ?, ?, ?, ?)",
                        {kOld, root, last, signer->key_id(),
                         signer->Sign(CheckpointMessage(kOld, root, absl::ToUnixMicros(last),
                                                        signer->key_id()))})
                    .ok());
    ASSERT_TRUE(Execute(conn,
                        "UPDATE audit_tree_head SET tree_size = ?, frontier = ?, "
                        "last_appended_at = ?, last_checkpoint_size = ?, last_checkpoint_at = ?",
                        {kOld, frontier.Serialize(), last, kOld, last})
                    .ok());
  }
  absl::Status migrated = ApplyMigrations(**pool, "audit", AuditLogMigrations());
  ASSERT_TRUE(migrated.ok()) << migrated;
  FakeClock clock(january + absl::Hours(1));
  AuditLogOptions log_options;
  log_options.clock = &clock;
  log_options.checkpoint_every_entries = 100;
  log_options.index_segment_leaves = 64;
  auto log = AuditLog::Create(**pool, signer, log_options, nullptr);
  ASSERT_TRUE(log.ok()) << log.status();

  v1::VerifyRangeResponse verified = (*log)->VerifyRange(v1::VerifyRangeRequest()).value();
  ASSERT_TRUE(verified.ok()) << verified.first_failure().detail();
  EXPECT_EQ(verified.entries_checked(), kOld);
  Caller compliance{"c", common::v1::ROLE_COMPLIANCE, ""};
  v1::QueryRequest by_subject;
  by_subject.mutable_filter()->mutable_subject()->set_kind(v1::SUBJECT_KIND_GROUP);
  by_subject.mutable_filter()->mutable_subject()->set_id(2);  // source ids 1, 4, 7, ...
  by_subject.mutable_page()->set_page_size(1000);
  auto found = (*log)->Query(compliance, "", by_subject);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->entries_size(), 100);
  v1::QueryRequest by_request;
  by_request.mutable_filter()->set_request_id("req-42");
  by_request.mutable_filter()->set_actor_account_id(1000 + 42 % 7);
  found = (*log)->Query(compliance, "", by_request);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->entries_size(), 1);
  EXPECT_EQ(found->entries(0).leaf_index(), 41u);
  // The same through the key index, once the old entries are indexed.
  EXPECT_EQ((*log)->IndexKeys().value(), kOld / 64);
  found = (*log)->Query(compliance, "", by_subject);
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->entries_size(), 100);

  // Old ids are duplicates at their old leaves; new ones go on, in bundles.
  v1::AppendRequest again;
  for (uint64_t id : {uint64_t{1}, uint64_t{150}, kOld, kOld + 1}) {
    *again.add_events() = Event("groups", id);
  }
  auto r = (*log)->Append(Service("groups"), again);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->results(0).duplicate());
  EXPECT_EQ(r->results(0).leaf_index(), 0u);
  EXPECT_EQ(r->results(1).leaf_index(), 149u);
  EXPECT_EQ(r->results(2).leaf_index(), kOld - 1);
  EXPECT_FALSE(r->results(3).duplicate());
  EXPECT_EQ(r->results(3).leaf_index(), kOld);
  for (uint64_t from : {kOld + 2, kOld + 202}) {
    v1::AppendRequest batch;
    for (uint64_t i = 0; i < 200; ++i) *batch.add_events() = Event("groups", from + i);
    ASSERT_TRUE((*log)->Append(Service("groups"), batch).ok());
  }
  clock.Advance(absl::Hours(2));
  ASSERT_TRUE((*log)->MaybeCheckpoint().ok());
  auto latest = (*log)->GetCheckpoint(v1::GetCheckpointRequest());
  ASSERT_TRUE(latest.ok());
  const uint64_t size = latest->checkpoint().tree_size();
  ASSERT_EQ(size, kOld + 401);
  const Hash root = H(latest->checkpoint().root_hash());
  // Proofs across old rows, stored subtrees of both sizes and new bundles.
  for (uint64_t leaf = 0; leaf < size; leaf += 7) {
    v1::GetInclusionProofRequest request;
    request.set_leaf_index(leaf);
    auto proof = (*log)->GetInclusionProof(request);
    ASSERT_TRUE(proof.ok()) << proof.status();
    EXPECT_TRUE(
        VerifyInclusion(leaf, size, H(proof->leaf_hash()), Hashes(proof->hashes()), root).ok())
        << leaf;
  }
  v1::GetConsistencyProofRequest consistency;
  consistency.set_first_tree_size(kOld);
  auto proof = (*log)->GetConsistencyProof(consistency);
  ASSERT_TRUE(proof.ok()) << proof.status();
  auto old_checkpoint = (*log)->GetCheckpoint([] {
    v1::GetCheckpointRequest request;
    request.set_tree_size(kOld);
    return request;
  }());
  ASSERT_TRUE(old_checkpoint.ok());
  EXPECT_TRUE(VerifyConsistency(kOld, size, H(old_checkpoint->checkpoint().root_hash()), root,
                                Hashes(proof->hashes()))
                  .ok());
  verified = (*log)->VerifyRange(v1::VerifyRangeRequest()).value();
  EXPECT_TRUE(verified.ok()) << verified.first_failure().detail();
  EXPECT_EQ(verified.entries_checked(), size);
  log->reset();
  auto lease = (*pool)->Acquire(absl::Seconds(5));
  if (lease.ok()) (void)Execute(**lease, "DROP DATABASE IF EXISTS " + schema);
}

TEST_F(AuditLogTest, RetentionBelowTheFloorIsRefused) {
  AuditLogOptions options;
  options.retention = absl::Hours(24 * 179);
  auto log = AuditLog::Create(*pool_, signer_, options, nullptr);
  ASSERT_FALSE(log.ok());
  EXPECT_NE(log.status().message().find("179"), std::string::npos) << log.status();
  EXPECT_NE(log.status().message().find("180"), std::string::npos);
}

TEST_F(AuditLogTest, PurgeDropsWholeOldMonthsAndVerificationContinues) {
  // Key index segments of 2 leaves: one straddles January and February.
  segment_ = 2;
  Open();
  // January, February, March and April 2026: 3 entries each.
  uint64_t source = 1;
  for (int month = 1; month <= 4; ++month) {
    clock_.Set(absl::FromCivil(absl::CivilSecond(2026, month, 10, 12, 0, 0), absl::UTCTimeZone()));
    AppendRange("groups", source, 3);
    source += 3;
  }
  ASSERT_EQ(log_->IndexKeys().value(), 6u);
  // Nothing is old enough yet.
  auto none = log_->Purge();
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->months().empty());

  // A hold over mid-February keeps February (and so March) past retention.
  Caller compliance{"carol@compliance", common::v1::ROLE_COMPLIANCE, ""};
  v1::SetLegalHoldRequest hold;
  hold.set_request_id("hold-1");
  hold.mutable_start_time()->set_seconds(
      absl::ToUnixSeconds(absl::FromCivil(absl::CivilDay(2026, 2, 14), absl::UTCTimeZone())));
  hold.mutable_end_time()->set_seconds(
      absl::ToUnixSeconds(absl::FromCivil(absl::CivilDay(2026, 2, 15), absl::UTCTimeZone())));
  hold.set_case_reference("court order 17");
  hold.set_reason("litigation");
  auto placed = log_->SetLegalHold(compliance, hold);
  ASSERT_TRUE(placed.ok()) << placed.status();
  const uint64_t hold_id = placed->legal_hold().legal_hold_id();
  EXPECT_EQ(log_->SetLegalHold(compliance, hold)->legal_hold().legal_hold_id(), hold_id);

  // Seven and a half months later: January and February are past 180 days.
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 9, 20, 0, 0, 0), absl::UTCTimeZone()));
  auto status = log_->GetRetentionStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  auto run = log_->Purge();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->months_size(), 1);
  EXPECT_EQ(run->months(0), "2026-01");
  EXPECT_EQ(run->entries_purged(), 3u);

  status = log_->GetRetentionStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->oldest_leaf_index(), 3u);
  EXPECT_EQ(status->retention().seconds(), 180 * 86400);
  EXPECT_EQ(status->minimum_retention().seconds(), 180 * 86400);
  ASSERT_EQ(status->legal_holds_size(), 1);
  ASSERT_TRUE(status->has_last_purge());
  EXPECT_EQ(status->last_purge().audit_leaf_index(), run->audit_leaf_index());
  std::map<std::string, v1::PartitionState> states;
  for (const v1::Partition& p : status->partitions()) states[p.month()] = p.state();
  EXPECT_EQ(states["2026-01"], v1::PARTITION_STATE_PURGED);
  EXPECT_EQ(states["2026-02"], v1::PARTITION_STATE_HELD);
  EXPECT_EQ(states["2026-04"], v1::PARTITION_STATE_RETAINED);

  // The purge itself is on the record; the purged leaf's proof is refused.
  v1::QueryRequest own;
  own.mutable_filter()->set_action("AUDIT_LOG_PURGED");
  auto logged = log_->Query(compliance, "", own);
  ASSERT_TRUE(logged.ok());
  ASSERT_EQ(logged->entries_size(), 1);
  EXPECT_EQ(logged->entries(0).event().details().at("months"), "2026-01");
  v1::GetInclusionProofRequest purged;
  purged.set_leaf_index(1);
  purged.set_tree_size(5);
  EXPECT_EQ(ErrorReason(log_->GetInclusionProof(purged).status()), "LEAF_PURGED");
  v1::QueryRequest all;
  all.mutable_page()->set_page_size(1000);
  auto kept = log_->Query(compliance, "", all);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->entries(0).leaf_index(), 3u);
  // The key index still finds kept entries (sources 4 and 11 have actor
  // 1004), indexes on past the purge, and reads no purged leaf.
  ASSERT_TRUE(log_->IndexKeys().ok());
  v1::QueryRequest by_actor;
  by_actor.mutable_filter()->set_actor_account_id(1004);
  auto actor = log_->Query(compliance, "", by_actor);
  ASSERT_TRUE(actor.ok()) << actor.status();
  ASSERT_EQ(actor->entries_size(), 2);
  EXPECT_EQ(actor->entries(0).leaf_index(), 3u);
  EXPECT_EQ(actor->entries(1).leaf_index(), 10u);

  // Release the hold: February and March go on the next run.
  v1::SetLegalHoldRequest release;
  release.set_request_id("release-1");
  release.set_legal_hold_id(hold_id);
  release.set_reason("case closed");
  ASSERT_TRUE(log_->SetLegalHold(compliance, release).ok());
  EXPECT_EQ(ErrorReason(log_->SetLegalHold(compliance, release).status()), "LEGAL_HOLD_RELEASED");
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 10, 5, 0, 0, 0), absl::UTCTimeZone()));
  run = log_->Purge();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->months_size(), 2);
  EXPECT_EQ(run->months(0), "2026-02");
  EXPECT_EQ(run->months(1), "2026-03");
  EXPECT_EQ(log_->GetRetentionStatus()->oldest_leaf_index(), 9u);

  // Verification from the boundary checkpoint still works to the end.
  AppendRange("groups", 100, 2);
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(log_->MaybeCheckpoint().ok());
  v1::VerifyRangeResponse verified = Verify(9, 0);
  EXPECT_TRUE(verified.ok()) << verified.first_failure().detail();
  v1::GetCheckpointRequest at_boundary;
  at_boundary.set_tree_size(9);
  EXPECT_TRUE(log_->GetCheckpoint(at_boundary).ok());
  v1::VerifyRangeRequest from_purged;
  from_purged.set_start_leaf_index(2);
  EXPECT_EQ(ErrorReason(log_->VerifyRange(from_purged).status()), "LEAF_PURGED");
}

}  // namespace
}  // namespace qunzu::audit
