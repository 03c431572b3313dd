// Export and independent verification of the audit log, for
// qunzu-audit-verify and VerifyRange's bigger sibling: given the database
// (or a JSON-lines export of it), checkpoints and the public key pinned out
// of band, re-hash every kept leaf, rebuild the tree, check every
// checkpoint's signature and root, their order, and report the first
// failure with the entry it concerns.
//
// The export is one qunzu.audit.v1.ExportLine per line in the protobuf JSON
// mapping: signing keys, checkpoints, the frontier at the oldest kept leaf
// (after a purge), then entries in leaf order.
#ifndef QUNZU_SERVICES_AUDIT_LOG_EXPORT_H_
#define QUNZU_SERVICES_AUDIT_LOG_EXPORT_H_

#include <cppconn/connection.h>

#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "qunzu/audit/v1/audit.pb.h"

namespace qunzu::audit {

struct VerifyReport {
  bool ok = true;
  v1::VerifyFailure failure;
  // The entry the failure concerns, when it is stored.
  std::optional<v1::AuditEntry> failing_entry;
  uint64_t start_leaf_index = 0;
  uint64_t entries_checked = 0;
  uint64_t checkpoints_checked = 0;
  uint64_t tree_size = 0;
  std::string root_hex;
};

// Writes the whole stored log as JSON lines.
absl::Status ExportDatabase(sql::Connection& conn, std::ostream& out);

// Checkpoint lines of an export (other lines are ignored).
absl::StatusOr<std::vector<v1::Checkpoint>> ReadCheckpointLines(std::istream& in);

// Verifies the log stored in conn's schema. Only public_key (raw Ed25519)
// is trusted; extra_checkpoints (exported earlier) join the stored ones, so
// a rollback below them is found.
absl::StatusOr<VerifyReport> VerifyDatabase(sql::Connection& conn, const std::string& public_key,
                                            const std::vector<v1::Checkpoint>& extra_checkpoints);

// The same over an export.
absl::StatusOr<VerifyReport> VerifyExport(std::istream& in, const std::string& public_key,
                                          const std::vector<v1::Checkpoint>& extra_checkpoints);

// One line of JSON for an entry (for messages).
std::string EntryJson(const v1::AuditEntry& entry);

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_LOG_EXPORT_H_
