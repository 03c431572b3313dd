// qunzu-audit-verify's checks, over the database and over a JSON-lines
// export: an intact log verifies; every kind of tampering is found, each
// time naming the first failing entry or checkpoint. Also runs the binary.
#include <cppconn/resultset.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/migrations.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/audit_log.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_export.h"
#include "services/audit/log_verifier.h"
#include "tests/audit/audit_test_util.h"
#include "tests/test_support.h"

namespace qunzu::audit {
namespace {

constexpr uint64_t kSize = 20;

class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = qunzu::testing::MysqlDsnOrDie();
    MysqlOptions options = ParseMysqlDsn(dsn_).value();
    schema_ = qunzu::testing::UniqueName("audit_verify");
    pool_ = MysqlPool::Create(options, schema_, 4).value();
    ASSERT_TRUE(ApplyMigrations(*pool_, kCommonComponent, CommonMigrations()).ok());
    ASSERT_TRUE(ApplyMigrations(*pool_, "audit", AuditLogMigrations()).ok());
    signer_ = std::shared_ptr<const Signer>(Signer::FromPem(testing::NewKeyPem()).value());
    AuditLogOptions log_options;
    log_options.clock = &clock_;
    log_options.checkpoint_every_entries = 5;
    log_options.checkpoint_interval = absl::Hours(1);
    log_ = AuditLog::Create(*pool_, signer_, log_options, nullptr).value();
    // Checkpoints at 1, 6, 11, 16 and 20; entries a second apart.
    for (uint64_t i = 1; i <= kSize; ++i) {
      v1::AppendRequest request;
      *request.add_events() = testing::Event("moderation", i, "REPORT_RESOLVED");
      ASSERT_TRUE(log_->Append(Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"},
                               request)
                      .ok());
      clock_.Advance(absl::Seconds(1));
    }
    clock_.Advance(absl::Hours(2));
    ASSERT_TRUE(log_->MaybeCheckpoint().ok());
  }

  void TearDown() override {
    log_.reset();
    (void)Sql("DROP DATABASE IF EXISTS " + schema_);
  }

  absl::Status Sql(const std::string& statement, const std::vector<SqlValue>& params = {}) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    if (!lease.ok()) return lease.status();
    return Execute(**lease, statement, params).status();
  }

  VerifyReport VerifyDb(const std::vector<v1::Checkpoint>& extra = {}) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    EXPECT_TRUE(lease.ok());
    auto report = VerifyDatabase(**lease, signer_->public_key(), extra);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : VerifyReport{};
  }

  std::vector<v1::ExportLine> Export() {
    auto lease = pool_->Acquire(absl::Seconds(5));
    std::stringstream out;
    EXPECT_TRUE(ExportDatabase(**lease, out).ok());
    std::vector<v1::ExportLine> lines;
    std::string text;
    while (std::getline(out, text)) {
      v1::ExportLine line;
      EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(text, &line).ok());
      lines.push_back(line);
    }
    return lines;
  }

  VerifyReport VerifyLines(const std::vector<v1::ExportLine>& lines,
                           const std::vector<v1::Checkpoint>& extra = {}) {
    std::stringstream in;
    for (const v1::ExportLine& line : lines) {
      std::string json;
      EXPECT_TRUE(google::protobuf::util::MessageToJsonString(line, &json).ok());
      in << json << "\n";
    }
    auto report = VerifyExport(in, signer_->public_key(), extra);
    EXPECT_TRUE(report.ok()) << report.status();
    return report.ok() ? *report : VerifyReport{};
  }

  std::vector<v1::Checkpoint> Checkpoints() {
    std::vector<v1::Checkpoint> out;
    for (const v1::ExportLine& line : Export()) {
      if (line.has_checkpoint()) out.push_back(line.checkpoint());
    }
    return out;
  }

  // A bundle of one entry.
  static std::string Blob(const std::string& entry) {
    std::string blob;
    AppendToBundle(blob, entry);
    return blob;
  }

  // Index in lines of the entry with leaf_index i.
  static size_t EntryLine(const std::vector<v1::ExportLine>& lines, uint64_t i) {
    for (size_t k = 0; k < lines.size(); ++k) {
      if (lines[k].has_entry() && lines[k].entry().leaf_index() == i) return k;
    }
    return lines.size();
  }

  FakeClock clock_{absl::FromCivil(absl::CivilSecond(2026, 3, 3, 9, 0, 0), absl::UTCTimeZone())};
  std::string dsn_;
  std::string schema_;
  std::unique_ptr<MysqlPool> pool_;
  std::shared_ptr<const Signer> signer_;
  std::unique_ptr<AuditLog> log_;
};

#define EXPECT_FAILS(report, want_kind, want_leaf)                                                 \
  do {                                                                                             \
    const VerifyReport& r_ = (report);                                                             \
    EXPECT_FALSE(r_.ok);                                                                           \
    EXPECT_EQ(v1::VerifyFailureKind_Name(r_.failure.kind()),                                       \
              v1::VerifyFailureKind_Name(want_kind))                                               \
        << r_.failure.detail();                                                                    \
    if ((want_leaf) >= 0) {                                                                        \
      EXPECT_EQ(r_.failure.leaf_index(), static_cast<uint64_t>(want_leaf)) << r_.failure.detail(); \
    }                                                                                              \
  } while (false)

TEST_F(AuditVerifyTest, ALogBeingAppendedToVerifiesAtEveryMoment) {
  // The verifier reads entries, tree head and checkpoints as of one
  // moment; read apart, an entry appended between them lies "beyond the
  // tree head" and a live log fails as if a row had been inserted.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t i = kSize + 1; !stop.load(); ++i) {
      v1::AppendRequest request;
      *request.add_events() = testing::Event("moderation", i, "REPORT_RESOLVED");
      EXPECT_TRUE(log_->Append(Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"},
                               request)
                      .ok());
    }
  });
  uint64_t last_size = 0;
  for (int n = 0; n < 30; ++n) {
    const VerifyReport report = VerifyDb();
    EXPECT_TRUE(report.ok) << report.failure.ShortDebugString();
    EXPECT_GE(report.tree_size, last_size);
    last_size = report.tree_size;
    const VerifyReport exported = VerifyLines(Export());
    EXPECT_TRUE(exported.ok) << exported.failure.ShortDebugString();
  }
  stop.store(true);
  writer.join();
  EXPECT_GT(last_size, kSize);  // it did verify a log that was growing
}

TEST_F(AuditVerifyTest, IntactLogVerifies) {
  VerifyReport db = VerifyDb();
  EXPECT_TRUE(db.ok) << db.failure.detail();
  EXPECT_EQ(db.entries_checked, kSize);
  EXPECT_EQ(db.checkpoints_checked, 5u);
  VerifyReport exported = VerifyLines(Export());
  EXPECT_TRUE(exported.ok) << exported.failure.detail();
  EXPECT_EQ(exported.entries_checked, kSize);
}

TEST_F(AuditVerifyTest, OneByteOfAnEntryChanged) {
  // (One entry per Append here: one bundle each, its entry after a 4-byte
  // length.)
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET entries = CONCAT(LEFT(entries, 34), "
                  "CHAR(ASCII(SUBSTRING(entries, 35, 1)) ^ 4), SUBSTRING(entries, 36)) "
                  "WHERE first_leaf = 7")
                  .ok());
  VerifyReport r = VerifyDb();
  EXPECT_FAILS(r, v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 7);
  ASSERT_TRUE(r.failing_entry.has_value());
  EXPECT_EQ(r.failing_entry->leaf_index(), 7u);
}

TEST_F(AuditVerifyTest, OneByteChangedAndItsLeafHashToo) {
  // A thorough forger also rewrites the stored leaf hash: the checkpoint
  // root still gives it away.
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET entries = CONCAT(LEFT(entries, 34), "
                  "CHAR(ASCII(SUBSTRING(entries, 35, 1)) ^ 4), SUBSTRING(entries, 36)) "
                  "WHERE first_leaf = 7")
                  .ok());
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET leaf_hashes = UNHEX(SHA2(CONCAT(CHAR(0), "
                  "SUBSTRING(entries, 5)), 256)) WHERE first_leaf = 7")
                  .ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, -1);
}

TEST_F(AuditVerifyTest, RowDeleted) {
  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf = 9").ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 9);
}

TEST_F(AuditVerifyTest, TwoRowsSwapped) {
  ASSERT_TRUE(Sql("UPDATE audit_bundles a JOIN audit_bundles b ON a.first_leaf = 4 AND "
                  "b.first_leaf = 5 SET a.entries = b.entries, b.entries = a.entries")
                  .ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 4);
}

TEST_F(AuditVerifyTest, TwoRowsSwappedWithTheirLeafHashes) {
  ASSERT_TRUE(Sql("UPDATE audit_bundles a JOIN audit_bundles b ON a.first_leaf = 4 AND "
                  "b.first_leaf = 5 SET a.entries = b.entries, b.entries = a.entries, "
                  "a.leaf_hashes = b.leaf_hashes, b.leaf_hashes = a.leaf_hashes")
                  .ok());
  VerifyReport r = VerifyDb();
  EXPECT_FALSE(r.ok);
  // Entry 4 now carries entry 5's later time, so entry 5 runs backwards.
  EXPECT_FAILS(r, v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, 5);
}

TEST_F(AuditVerifyTest, RowInsertedInTheMiddle) {
  // Shift entries 12.. up by one and slip a forged entry in at 12.
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET first_leaf = first_leaf + 1 WHERE first_leaf >= 12 "
                  "ORDER BY first_leaf DESC")
                  .ok());
  const std::string forged =
      EncodeEntry(testing::Event("moderation", 999, "REPORT_DISMISSED"), clock_.Now());
  ASSERT_TRUE(Sql("INSERT INTO audit_bundles (first_leaf, appended_at, entry_count, entries, "
                  "leaf_hashes) SELECT 12, ?, 1, ?, leaf_hashes FROM audit_bundles WHERE "
                  "first_leaf = 13",
                  {clock_.Now(), Blob(forged)})
                  .ok());
  ASSERT_TRUE(Sql("UPDATE audit_tree_head SET tree_size = tree_size + 1").ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 12);
  // With its own leaf hash: the forgery carries a later time than the entry
  // after it (and would break the next checkpoint's root).
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET leaf_hashes = ? WHERE first_leaf = 12",
                  {HashToBytes(LeafHash(forged))})
                  .ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, 13);
}

TEST_F(AuditVerifyTest, RowInsertedAtTheTail) {
  const std::string forged =
      EncodeEntry(testing::Event("moderation", 999, "REPORT_DISMISSED"), clock_.Now());
  ASSERT_TRUE(Sql("INSERT INTO audit_bundles (first_leaf, appended_at, entry_count, entries, "
                  "leaf_hashes) VALUES (20, ?, 1, ?, ?)",
                  {clock_.Now(), Blob(forged), HashToBytes(LeafHash(forged))})
                  .ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, 20);
}

TEST_F(AuditVerifyTest, TailTruncated) {
  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf >= 17").ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 17);
  // Also when the head is moved back to match.
  ASSERT_TRUE(Sql("UPDATE audit_tree_head SET tree_size = 17").ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 17);
}

TEST_F(AuditVerifyTest, CheckpointReplaced) {
  // Another checkpoint's root and signature under this tree size.
  ASSERT_TRUE(Sql("UPDATE audit_checkpoints a JOIN audit_checkpoints b ON a.tree_size = 11 AND "
                  "b.tree_size = 6 SET a.root_hash = b.root_hash, a.signature = b.signature")
                  .ok());
  VerifyReport r = VerifyDb();
  EXPECT_FAILS(r, v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, -1);
  EXPECT_EQ(r.failure.tree_size(), 11u);
}

TEST_F(AuditVerifyTest, CheckpointSignedByAnotherKey) {
  auto forger = Signer::FromPem(testing::NewKeyPem()).value();
  std::string root;
  for (const v1::Checkpoint& cp : Checkpoints()) {
    if (cp.tree_size() == 16) root = cp.root_hash();
  }
  const int64_t micros = absl::ToUnixMicros(clock_.Now());
  ASSERT_TRUE(
      Sql("UPDATE audit_checkpoints SET key_id = ?, signature = ?, created_at = ? "
          "WHERE tree_size = 16",
          {forger->key_id(), forger->Sign(CheckpointMessage(16, root, micros, forger->key_id())),
           absl::FromUnixMicros(micros)})
          .ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, -1);
}

TEST_F(AuditVerifyTest, SignatureAltered) {
  ASSERT_TRUE(Sql("UPDATE audit_checkpoints SET signature = CONCAT(CHAR(ASCII(LEFT(signature, "
                  "1)) ^ 1), SUBSTRING(signature, 2)) WHERE tree_size = 6")
                  .ok());
  VerifyReport r = VerifyDb();
  EXPECT_FAILS(r, v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, -1);
  EXPECT_EQ(r.failure.tree_size(), 6u);
}

TEST_F(AuditVerifyTest, LogRolledBackBelowExportedCheckpoints) {
  const std::vector<v1::Checkpoint> exported = Checkpoints();
  // Roll the whole database back to its state at 11 entries.
  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf >= 11").ok());
  ASSERT_TRUE(Sql("DELETE FROM audit_checkpoints WHERE tree_size > 11").ok());
  ASSERT_TRUE(Sql("UPDATE audit_tree_head SET tree_size = 11").ok());
  EXPECT_TRUE(VerifyDb().ok);           // consistent on its own...
  VerifyReport r = VerifyDb(exported);  // ...but not with what was exported
  EXPECT_FAILS(r, v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 11);
}

TEST_F(AuditVerifyTest, CheckpointRolledBack) {
  // A validly signed checkpoint of an older tree dated after a newer one:
  // the signer went back in time (a rollback or a fork).
  std::string root6;
  for (const v1::Checkpoint& cp : Checkpoints()) {
    if (cp.tree_size() == 6) root6 = cp.root_hash();
  }
  v1::Checkpoint stale;
  stale.set_tree_size(6);
  stale.set_root_hash(root6);
  const absl::Time later = clock_.Now() + absl::Hours(5);
  stale.mutable_time()->set_seconds(absl::ToUnixSeconds(later));
  stale.set_key_id(signer_->key_id());
  stale.set_signature(signer_->Sign(CheckpointSignedMessage(stale)));
  EXPECT_FAILS(VerifyDb({stale}), v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED, -1);
  // A forked root at a known size is caught too.
  v1::Checkpoint fork = stale;
  fork.set_root_hash(std::string(32, 'x'));
  fork.mutable_time()->set_seconds(absl::ToUnixSeconds(clock_.Now()) - 3600);
  fork.set_signature(signer_->Sign(CheckpointSignedMessage(fork)));
  EXPECT_FAILS(VerifyDb({fork}), v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED, -1);
}

// A batch of ten is one bundle (leaves 20..29): tampering with its row is
// found at the leaf it concerns, in the database and in its export.
class AuditVerifyBundleTest : public AuditVerifyTest {
 protected:
  void SetUp() override {
    AuditVerifyTest::SetUp();
    if (HasFatalFailure()) return;
    v1::AppendRequest request;
    for (uint64_t i = 1; i <= 10; ++i) {
      *request.add_events() = testing::Event("moderation", kSize + i, "REPORT_RESOLVED");
    }
    ASSERT_TRUE(
        log_->Append(Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"}, request)
            .ok());
    clock_.Advance(absl::Hours(2));
    ASSERT_TRUE(log_->MaybeCheckpoint().ok());
    uint64_t count = 0;
    {
      auto lease = pool_->Acquire(absl::Seconds(5));
      ASSERT_TRUE(lease.ok());
      ASSERT_TRUE(Query(**lease, "SELECT entry_count FROM audit_bundles WHERE first_leaf = 20", {},
                        [&](const sql::ResultSet& row) {
                          count = row.getUInt64(1);
                          return absl::OkStatus();
                        })
                      .ok());
    }
    ASSERT_EQ(count, 10u);
    ASSERT_TRUE(VerifyDb().ok);
    ASSERT_EQ(VerifyDb().entries_checked, 30u);
  }

  void Edit(const std::function<void(std::vector<std::string>&, std::vector<std::string>&)>& fn) {
    auto lease = pool_->Acquire(absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    ASSERT_TRUE(testing::EditBundle(**lease, 20, fn).ok());
  }

  // Both the database and its export fail with kind at leaf.
  void ExpectBothFail(v1::VerifyFailureKind kind, int64_t leaf) {
    EXPECT_FAILS(VerifyDb(), kind, leaf);
    EXPECT_FAILS(VerifyLines(Export()), kind, leaf);
  }
};

TEST_F(AuditVerifyBundleTest, OneByteOfAnEntryInsideABundle) {
  Edit([](std::vector<std::string>& entries, std::vector<std::string>&) {
    entries[4][30] = static_cast<char>(entries[4][30] ^ 4);
  });
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 24);
}

TEST_F(AuditVerifyBundleTest, AnEntryRewrittenWithItsLeafHash) {
  Edit([](std::vector<std::string>& entries, std::vector<std::string>& hashes) {
    entries[4][30] = static_cast<char>(entries[4][30] ^ 4);
    hashes[4] = HashToBytes(LeafHash(entries[4]));
  });
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, -1);
}

TEST_F(AuditVerifyBundleTest, TwoEntriesSwappedInsideABundle) {
  Edit([](std::vector<std::string>& entries, std::vector<std::string>& hashes) {
    std::swap(entries[6], entries[7]);
    std::swap(hashes[6], hashes[7]);
  });
  // Same appended time, hashes moved along: only the root tells.
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, -1);
  Edit([](std::vector<std::string>&, std::vector<std::string>& hashes) {
    std::swap(hashes[6], hashes[7]);
  });
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 26);
}

TEST_F(AuditVerifyBundleTest, AnEntryCutOutOfABundle) {
  Edit([](std::vector<std::string>& entries, std::vector<std::string>& hashes) {
    entries.erase(entries.begin() + 3);
    hashes.erase(hashes.begin() + 3);
  });
  // The leaves after it move down one: the tree head counts one more.
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 29);
}

TEST_F(AuditVerifyBundleTest, ABundleCutShortOrMiscounted) {
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET entry_count = 9 WHERE first_leaf = 20").ok());
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 20);
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET entry_count = 10, entries = LEFT(entries, "
                  "LENGTH(entries) - 5) WHERE first_leaf = 20")
                  .ok());
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 20);
}

TEST_F(AuditVerifyBundleTest, ABundleWithoutItsLeafHashes) {
  ASSERT_TRUE(Sql("UPDATE audit_bundles SET leaf_hashes = LEFT(leaf_hashes, 288) WHERE "
                  "first_leaf = 20")
                  .ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 20);
}

TEST_F(AuditVerifyBundleTest, ABundleOverlappingAnother) {
  const std::string forged =
      EncodeEntry(testing::Event("moderation", 999, "REPORT_DISMISSED"), clock_.Now());
  ASSERT_TRUE(Sql("INSERT INTO audit_bundles (first_leaf, appended_at, entry_count, entries, "
                  "leaf_hashes) VALUES (25, ?, 1, ?, ?)",
                  {clock_.Now(), Blob(forged), HashToBytes(LeafHash(forged))})
                  .ok());
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, 25);
}

TEST_F(AuditVerifyBundleTest, TheWholeBundleDeleted) {
  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf = 20").ok());
  ExpectBothFail(v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 20);
}

TEST_F(AuditVerifyTest, ExportTampering) {
  const std::vector<v1::ExportLine> intact = Export();
  {
    auto lines = intact;
    std::string* bytes = lines[EntryLine(lines, 3)].mutable_entry()->mutable_canonical_entry();
    (*bytes)[25] = static_cast<char>((*bytes)[25] ^ 1);
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, 3);
  }
  {
    // Changed, and the exported leaf hash recomputed to match.
    auto lines = intact;
    v1::AuditEntry* e = lines[EntryLine(lines, 3)].mutable_entry();
    (*e->mutable_canonical_entry())[25] = static_cast<char>(e->canonical_entry()[25] ^ 1);
    e->set_leaf_hash(HashToBytes(LeafHash(e->canonical_entry())));
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, -1);
  }
  {
    auto lines = intact;
    lines.erase(lines.begin() + static_cast<ptrdiff_t>(EntryLine(lines, 8)));
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 8);
  }
  {
    auto lines = intact;
    std::swap(lines[EntryLine(lines, 8)], lines[EntryLine(lines, 9)]);
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 8);
  }
  {
    // Swapped contents, indexes left in place.
    auto lines = intact;
    v1::AuditEntry* a = lines[EntryLine(lines, 8)].mutable_entry();
    v1::AuditEntry* b = lines[EntryLine(lines, 9)].mutable_entry();
    std::swap(*a->mutable_canonical_entry(), *b->mutable_canonical_entry());
    std::swap(*a->mutable_leaf_hash(), *b->mutable_leaf_hash());
    EXPECT_FALSE(VerifyLines(lines).ok);
  }
  {
    auto lines = intact;
    v1::ExportLine extra = lines[EntryLine(lines, 5)];
    lines.insert(lines.begin() + static_cast<ptrdiff_t>(EntryLine(lines, 6)), extra);
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, 5);
  }
  {
    auto lines = intact;
    lines.resize(EntryLine(lines, 18));
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 18);
  }
  {
    auto lines = intact;
    for (v1::ExportLine& line : lines) {
      if (line.has_checkpoint() && line.checkpoint().tree_size() == 16) {
        line.mutable_checkpoint()->set_root_hash(std::string(32, '\1'));
      }
    }
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, -1);
  }
  {
    auto lines = intact;
    for (v1::ExportLine& line : lines) {
      if (line.has_checkpoint() && line.checkpoint().tree_size() == 20) {
        std::string* sig = line.mutable_checkpoint()->mutable_signature();
        (*sig)[63] = static_cast<char>((*sig)[63] ^ 0x80);
      }
    }
    EXPECT_FAILS(VerifyLines(lines), v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, -1);
  }
}

TEST_F(AuditVerifyTest, AnExportLineThatIsNotAnExportLineIsRefused) {
  const std::string text = "{}\n\nnot json\n";
  std::istringstream export_in(text);
  auto report = VerifyExport(export_in, signer_->public_key(), {});
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(qunzu::ErrorReason(report.status()), "EXPORT_INVALID");
  EXPECT_NE(report.status().message().find("line 3"), std::string::npos) << report.status();
  std::istringstream checkpoints_in(text);
  EXPECT_EQ(qunzu::ErrorReason(ReadCheckpointLines(checkpoints_in).status()), "EXPORT_INVALID");
}

TEST_F(AuditVerifyTest, AfterAPurgeVerificationResumesAtTheBoundary) {
  // April's entries, then a year on: March (leaves 0..19) is purged.
  clock_.Set(absl::FromCivil(absl::CivilSecond(2026, 4, 2, 0, 0, 0), absl::UTCTimeZone()));
  for (uint64_t i = 101; i <= 103; ++i) {
    v1::AppendRequest request;
    *request.add_events() = testing::Event("moderation", i, "REPORT_RESOLVED");
    ASSERT_TRUE(
        log_->Append(Caller{"service:moderation", common::v1::ROLE_SERVICE, "moderation"}, request)
            .ok());
  }
  clock_.Set(absl::FromCivil(absl::CivilSecond(2027, 4, 15, 0, 0, 0), absl::UTCTimeZone()));
  auto run = log_->Purge();
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->months_size(), 1);
  EXPECT_EQ(run->entries_purged(), kSize);
  clock_.Advance(absl::Hours(2));
  ASSERT_TRUE(log_->MaybeCheckpoint().ok());

  VerifyReport db = VerifyDb();
  EXPECT_TRUE(db.ok) << db.failure.detail();
  EXPECT_EQ(db.start_leaf_index, kSize);
  EXPECT_EQ(db.entries_checked, 4u);  // April's three and the purge record
  VerifyReport exported = VerifyLines(Export());
  EXPECT_TRUE(exported.ok) << exported.failure.detail();

  // A signed checkpoint of the purged era that the kept hashes contradict.
  v1::Checkpoint forged;
  forged.set_tree_size(3);
  forged.set_root_hash(std::string(32, 'z'));
  forged.mutable_time()->set_seconds(absl::ToUnixSeconds(
      absl::FromCivil(absl::CivilSecond(2026, 3, 3, 9, 0, 3), absl::UTCTimeZone())));
  forged.set_key_id(signer_->key_id());
  forged.set_signature(signer_->Sign(CheckpointSignedMessage(forged)));
  EXPECT_FAILS(VerifyDb({forged}), v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED, -1);

  // Dropping the first kept month's rows as well is not a purge.
  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf = 20").ok());
  EXPECT_FAILS(VerifyDb(), v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, 20);
}

std::string VerifyBinary() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  self[n > 0 ? n : 0] = '\0';
  std::string dir(self);
  dir = dir.substr(0, dir.rfind('/'));  // build/tests
  dir = dir.substr(0, dir.rfind('/'));  // build
  return dir + "/services/audit/qunzu-audit-verify";
}

std::pair<int, std::string> RunCommand(const std::string& command) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  std::string out;
  char buffer[4096];
  while (size_t got = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, got);
  int status = pclose(pipe);
  return {WEXITSTATUS(status), out};
}

TEST_F(AuditVerifyTest, TheBinary) {
  const std::string dir = ::testing::TempDir();
  const std::string key = dir + "/" + schema_ + ".pub.pem";
  std::ofstream(key) << testing::PublicKeyPem(signer_->public_key());
  const std::string db =
      absl::StrCat(VerifyBinary(), " --mysql-dsn=", dsn_, " --mysql-schema=", schema_);
  auto [code, out] = RunCommand(absl::StrCat(db, " --public-key=", key));
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("OK: 20 entries"), std::string::npos) << out;

  const std::string exported = dir + "/" + schema_ + ".jsonl";
  std::tie(code, out) = RunCommand(absl::StrCat(db, " --write-export=", exported));
  ASSERT_EQ(code, 0) << out;
  std::tie(code, out) =
      RunCommand(absl::StrCat(VerifyBinary(), " --export=", exported, " --public-key=", key));
  EXPECT_EQ(code, 0) << out;

  ASSERT_TRUE(Sql("DELETE FROM audit_bundles WHERE first_leaf = 13").ok());
  std::tie(code, out) = RunCommand(absl::StrCat(db, " --public-key=", key));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("FAILED: ENTRY_MISSING at leaf 13"), std::string::npos) << out;

  ASSERT_TRUE(Sql("UPDATE audit_bundles SET entries = CONCAT(LEFT(entries, 34), 'X', "
                  "SUBSTRING(entries, 36)) WHERE first_leaf = 2")
                  .ok());
  std::tie(code, out) = RunCommand(absl::StrCat(db, " --public-key=", key));
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("LEAF_HASH_MISMATCH at leaf 2"), std::string::npos) << out;
  EXPECT_NE(out.find("first failing entry: {"), std::string::npos) << out;

  std::tie(code, out) = RunCommand(absl::StrCat(db));
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("--public-key"), std::string::npos) << out;
}

}  // namespace
}  // namespace qunzu::audit
