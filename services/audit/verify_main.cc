// qunzu-audit-verify: verifies the audit log independently of the audit
// service. Given the database (--mysql-dsn, --mysql-schema) or a JSON-lines
// export (--export), optionally checkpoints exported earlier
// (--checkpoints), and the public key pinned out of band (--public-key, a
// PEM Ed25519 key), it re-hashes every kept entry, rebuilds the RFC 6962
// tree, checks every checkpoint's root and signature and their order, and
// prints the first entry that fails. Exit 0: verified; 1: verification
// failed; 2: bad flags or unreadable input.
//
// --write-export=FILE writes the database's log as JSON lines instead.
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "common/mysql.h"
#include "common/mysql_pool.h"
#include "common/status.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "services/audit/log_export.h"
#include "services/audit/signer.h"

namespace {

constexpr char kProgram[] = "qunzu-audit-verify";

int Die(const std::string& message) {
  std::cerr << kProgram << ": " << message << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace qunzu;         // NOLINT(google-build-using-namespace)
  using namespace qunzu::audit;  // NOLINT(google-build-using-namespace)
  FlagSet flags(kProgram, "Verifies the Qunzu audit log (database or export) independently.");
  std::string dsn, schema, export_in, checkpoints_file, public_key_file, write_export;
  flags.AddString(
      {"mysql-dsn", "QUNZU_MYSQL_DSN", "The audit database, mysql://user:pw@host:port."}, &dsn, "");
  flags.AddString({"mysql-schema", "QUNZU_MYSQL_SCHEMA", "The audit schema."}, &schema,
                  "qunzu_audit");
  flags.AddString({"export", "", "A JSON-lines export to verify instead of the database."},
                  &export_in, "");
  flags.AddString({"checkpoints", "",
                   "JSON-lines checkpoints exported earlier (ListCheckpoints or an export); "
                   "a log rolled back below them fails."},
                  &checkpoints_file, "");
  flags.AddString({"public-key", "", "The signing public key (PEM), pinned out of band."},
                  &public_key_file, "");
  flags.AddString({"write-export", "", "Write the database's log as JSON lines to this file."},
                  &write_export, "");
  ParseFlagsOrExit(flags, argc, argv);

  std::unique_ptr<MysqlPool> pool;
  if (export_in.empty()) {
    if (dsn.empty()) return Die("--mysql-dsn or --export is required");
    absl::StatusOr<MysqlOptions> options = ParseMysqlDsn(dsn);
    if (!options.ok()) return Die(absl::StrCat("--mysql-dsn: ", options.status().message()));
    absl::StatusOr<std::unique_ptr<MysqlPool>> created = MysqlPool::Create(*options, schema, 1);
    if (!created.ok()) return Die(std::string(created.status().message()));
    pool = *std::move(created);
  }
  if (!write_export.empty()) {
    if (!pool) return Die("--write-export needs the database");
    std::ofstream out(write_export);
    if (!out) return Die("cannot write " + write_export);
    absl::StatusOr<MysqlPool::Lease> lease = pool->Acquire(absl::Seconds(10));
    if (!lease.ok()) return Die(std::string(lease.status().message()));
    absl::Status s = ExportDatabase(**lease, out);
    if (!s.ok()) return Die(std::string(s.message()));
    std::cout << kProgram << ": exported to " << write_export << "\n";
    return 0;
  }

  if (public_key_file.empty()) return Die("--public-key is required");
  std::ifstream key_in(public_key_file);
  if (!key_in) return Die("--public-key: cannot read " + public_key_file);
  std::stringstream key_text;
  key_text << key_in.rdbuf();
  absl::StatusOr<std::string> public_key = RawPublicKeyFromPem(key_text.str());
  if (!public_key.ok()) {
    return Die(
        absl::StrCat("--public-key: ", public_key_file, ": ", public_key.status().message()));
  }
  std::vector<v1::Checkpoint> extra;
  if (!checkpoints_file.empty()) {
    std::ifstream in(checkpoints_file);
    if (!in) return Die("--checkpoints: cannot read " + checkpoints_file);
    absl::StatusOr<std::vector<v1::Checkpoint>> read = ReadCheckpointLines(in);
    if (!read.ok()) return Die(absl::StrCat("--checkpoints: ", read.status().message()));
    extra = *std::move(read);
  }

  absl::StatusOr<VerifyReport> report;
  if (pool) {
    absl::StatusOr<MysqlPool::Lease> lease = pool->Acquire(absl::Seconds(10));
    if (!lease.ok()) return Die(std::string(lease.status().message()));
    report = VerifyDatabase(**lease, *public_key, extra);
  } else {
    std::ifstream in(export_in);
    if (!in) return Die("--export: cannot read " + export_in);
    report = VerifyExport(in, *public_key, extra);
  }
  if (!report.ok()) return Die(std::string(report.status().message()));
  if (report->ok) {
    std::cout << kProgram << ": OK: " << report->entries_checked << " entries from leaf "
              << report->start_leaf_index << " and " << report->checkpoints_checked
              << " checkpoint roots verified; tree size " << report->tree_size
              << ", last verified root " << report->root_hex << "\n";
    return 0;
  }
  std::cout << kProgram
            << ": FAILED: " << v1::VerifyFailureKind_Name(report->failure.kind()).substr(20)
            << " at leaf " << report->failure.leaf_index();
  if (report->failure.tree_size() != 0) {
    std::cout << " (checkpoint tree size " << report->failure.tree_size() << ")";
  }
  std::cout << ": " << report->failure.detail() << "\n";
  if (report->failing_entry) {
    std::cout << "first failing entry: " << EntryJson(*report->failing_entry) << "\n";
  }
  return 1;
}
