#include "services/audit/log_export.h"

#include <cppconn/resultset.h>
#include <google/protobuf/util/json_util.h>

#include <map>

#include "absl/functional/function_ref.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/bundle_store.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/merkle.h"
#include "services/audit/node_store.h"
#include "services/audit/signer.h"

namespace qunzu::audit {
namespace {

std::string Bytes(const sql::ResultSet& row, int column) {
  return std::string(row.getString(column));
}

void ToProto(absl::Time t, google::protobuf::Timestamp* out) {
  const int64_t micros = absl::ToUnixMicros(t);
  out->set_seconds(micros / 1000000);
  out->set_nanos(static_cast<int32_t>(micros % 1000000) * 1000);
}

std::string Json(const google::protobuf::Message& message) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out);
  return out;
}

absl::StatusOr<std::vector<v1::Checkpoint>> StoredCheckpoints(sql::Connection& conn) {
  std::vector<v1::Checkpoint> out;
  RETURN_IF_ERROR(
      Query(conn,
            "SELECT tree_size, root_hash, created_at, key_id, signature FROM audit_checkpoints "
            "ORDER BY tree_size",
            {}, [&](const sql::ResultSet& row) -> absl::Status {
              v1::Checkpoint cp;
              cp.set_tree_size(row.getUInt64(1));
              cp.set_root_hash(Bytes(row, 2));
              ASSIGN_OR_RETURN(absl::Time t, ParseSqlDateTime(Bytes(row, 3)));
              ToProto(t, cp.mutable_time());
              cp.set_key_id(Bytes(row, 4));
              cp.set_signature(Bytes(row, 5));
              out.push_back(std::move(cp));
              return absl::OkStatus();
            }));
  return out;
}

struct StoredHead {
  uint64_t tree_size = 0;
  uint64_t oldest_leaf_index = 0;
};

absl::StatusOr<StoredHead> ReadStoredHead(sql::Connection& conn) {
  StoredHead head;
  RETURN_IF_ERROR(Query(conn,
                        "SELECT tree_size, oldest_leaf_index FROM audit_tree_head WHERE id = 1", {},
                        [&](const sql::ResultSet& row) {
                          head.tree_size = row.getUInt64(1);
                          head.oldest_leaf_index = row.getUInt64(2);
                          return absl::OkStatus();
                        }));
  return head;
}

absl::StatusOr<Frontier> StoredFrontier(sql::Connection& conn, uint64_t size) {
  ASSIGN_OR_RETURN(std::vector<Hash> hashes, ReadTreeNodes(conn, Frontier::NodesFor(size)));
  return Frontier::Create(size, std::move(hashes));
}

v1::AuditEntry EntryOf(uint64_t index, const std::string& bytes) {
  v1::AuditEntry entry;
  entry.set_leaf_index(index);
  entry.set_canonical_entry(bytes);
  entry.set_leaf_hash(HashToBytes(LeafHash(bytes)));
  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(bytes);
  if (decoded.ok()) {
    *entry.mutable_event() = decoded->event;
    ToProto(decoded->appended_at, entry.mutable_appended_at());
  }
  return entry;
}

// Follows the purges the log records about itself: the newest one says
// where the kept leaves must begin.
class PurgeTracker {
 public:
  void See(const std::string& bytes) {
    absl::StatusOr<DecodedEntry> d = DecodeEntry(bytes);
    if (!d.ok() || d->event.service() != "audit" || d->event.action() != "AUDIT_LOG_PURGED") {
      return;
    }
    auto it = d->event.details().find("boundary_tree_size");
    uint64_t boundary = 0;
    if (it != d->event.details().end() && absl::SimpleAtoi(it->second, &boundary)) {
      boundary_ = std::max(boundary_, boundary);
    }
  }
  void Check(LogVerifier& v, uint64_t start) const {
    if (start > boundary_ && v.ok()) {
      v.Fail(v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, boundary_, 0,
             absl::StrCat("the log records a purge up to leaf ", boundary_,
                          " but the kept entries begin at ", start));
    }
  }

 private:
  uint64_t boundary_ = 0;
};

// Checkpoints of trees the purge has cut off can no longer be recomputed
// from leaves; each must instead be consistent (RFC 6962 proof from the kept
// subtree hashes) with the signed checkpoint at the purge boundary.
bool CheckPurgedCheckpoints(sql::Connection& conn, LogVerifier& v,
                            const std::vector<v1::Checkpoint>& checkpoints, uint64_t start) {
  if (start == 0) return true;
  std::optional<Hash> boundary_root;
  for (const v1::Checkpoint& cp : checkpoints) {
    if (cp.tree_size() == start) {
      absl::StatusOr<Hash> h = HashFromBytes(cp.root_hash());
      if (h.ok()) boundary_root = *h;
    }
  }
  if (!boundary_root) return true;  // Start() already failed on it
  for (const v1::Checkpoint& cp : checkpoints) {
    if (cp.tree_size() == 0 || cp.tree_size() >= start) continue;
    absl::StatusOr<Hash> root = HashFromBytes(cp.root_hash());
    absl::StatusOr<std::vector<Hash>> proof = BuildConsistencyProof(
        cp.tree_size(), start,
        [&](const std::vector<NodeId>& ids) { return ReadTreeNodes(conn, ids); });
    if (!root.ok() || !proof.ok() ||
        !VerifyConsistency(cp.tree_size(), start, *root, *boundary_root, *proof).ok()) {
      return v.Fail(v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED, 0, cp.tree_size(),
                    absl::StrCat("the purged-era checkpoint at tree size ", cp.tree_size(),
                                 " is not consistent with the boundary checkpoint at ", start));
    }
  }
  return true;
}

VerifyReport Report(const LogVerifier& v, uint64_t start) {
  VerifyReport r;
  r.ok = v.ok();
  if (v.failure()) r.failure = *v.failure();
  r.start_leaf_index = start;
  r.entries_checked = v.entries_checked();
  r.checkpoints_checked = v.checkpoints_checked();
  r.tree_size = v.tree_size();
  if (v.last_verified_checkpoint()) {
    r.root_hex = HashToHex(HashFromBytes(v.last_verified_checkpoint()->root_hash()).value());
  }
  return r;
}

}  // namespace

std::string EntryJson(const v1::AuditEntry& entry) { return Json(entry); }

namespace {

// A log being appended to is read as of one moment: Append writes an
// entry, the tree head and checkpoints in one transaction, and a reader
// that took them from different moments would see entries past the head.
absl::Status BeginSnapshot(sql::Connection& conn) {
  RETURN_IF_ERROR(Execute(conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").status());
  return Execute(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY").status();
}

void EndSnapshot(sql::Connection& conn) { (void)Execute(conn, "COMMIT"); }

absl::Status ExportDatabaseIn(sql::Connection& conn, std::ostream& out) {
  RETURN_IF_ERROR(Query(conn, "SELECT key_id, public_key, first_used_at FROM audit_signing_keys",
                        {}, [&](const sql::ResultSet& row) -> absl::Status {
                          v1::ExportLine line;
                          v1::SigningKey* key = line.mutable_signing_key();
                          key->set_key_id(Bytes(row, 1));
                          key->set_public_key(Bytes(row, 2));
                          ASSIGN_OR_RETURN(absl::Time t, ParseSqlDateTime(Bytes(row, 3)));
                          ToProto(t, key->mutable_first_used_at());
                          out << Json(line) << "\n";
                          return absl::OkStatus();
                        }));
  ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> checkpoints, StoredCheckpoints(conn));
  for (const v1::Checkpoint& cp : checkpoints) {
    v1::ExportLine line;
    *line.mutable_checkpoint() = cp;
    out << Json(line) << "\n";
  }
  ASSIGN_OR_RETURN(StoredHead head, ReadStoredHead(conn));
  if (head.oldest_leaf_index > 0) {
    ASSIGN_OR_RETURN(Frontier frontier, StoredFrontier(conn, head.oldest_leaf_index));
    v1::ExportLine line;
    line.mutable_frontier()->set_tree_size(frontier.size());
    for (const Hash& h : frontier.hashes()) line.mutable_frontier()->add_hashes(HashToBytes(h));
    out << Json(line) << "\n";
  }
  return ForEachStoredLeaf(
      conn, 0, 0, [&](uint64_t index, const std::string& bytes, const std::optional<Hash>& stored) {
        v1::ExportLine line;
        *line.mutable_entry() = EntryOf(index, bytes);
        if (stored) line.mutable_entry()->set_leaf_hash(HashToBytes(*stored));
        out << Json(line) << "\n";
        return true;
      });
}

absl::StatusOr<VerifyReport> VerifyDatabaseIn(sql::Connection& conn, const std::string& public_key,
                                              const std::vector<v1::Checkpoint>& extra) {
  ASSIGN_OR_RETURN(std::vector<v1::Checkpoint> checkpoints, StoredCheckpoints(conn));
  checkpoints.insert(checkpoints.end(), extra.begin(), extra.end());
  ASSIGN_OR_RETURN(StoredHead head, ReadStoredHead(conn));
  LogVerifier v({{KeyIdOf(public_key), public_key}}, checkpoints);
  const uint64_t start = head.oldest_leaf_index;
  std::map<uint64_t, std::string> entries_seen;
  std::optional<v1::AuditEntry> failing;
  PurgeTracker purges;
  if (v.CheckCheckpoints()) {
    absl::StatusOr<Frontier> frontier = StoredFrontier(conn, start);
    if (!frontier.ok()) {
      v.Fail(v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, start, start,
             std::string(frontier.status().message()));
    } else if (v.Start(*frontier) && CheckPurgedCheckpoints(conn, v, checkpoints, start)) {
      RETURN_IF_ERROR(ForEachStoredLeaf(
          conn, 0, 0,
          [&](uint64_t index, const std::string& bytes, const std::optional<Hash>& stored) {
            if (index >= head.tree_size) {
              failing = EntryOf(index, bytes);
              return v.Fail(v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, index, 0,
                            absl::StrCat("entry ", index, " lies beyond the tree head's ",
                                         head.tree_size, " leaves (inserted)"));
            }
            if (!stored && index >= start) {
              failing = EntryOf(index, bytes);
              return v.Fail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, index, 0,
                            absl::StrCat("entry ", index, " has no leaf hash in the tree"));
            }
            if (!v.AddLeaf(index, bytes, stored)) {
              failing = EntryOf(index, bytes);
              return false;
            }
            purges.See(bytes);
            return true;
          }));
      if (v.ok() && v.tree_size() < head.tree_size) {
        v.Fail(v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, v.tree_size(), head.tree_size,
               absl::StrCat("the tree head counts ", head.tree_size, " entries but only ",
                            v.tree_size(), " are stored: the tail was removed"));
      }
      v.Finish();
      purges.Check(v, start);
    }
  }
  VerifyReport report = Report(v, start);
  if (!report.ok && report.failure.kind() != v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID &&
      report.failure.kind() != v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED) {
    if (failing && failing->leaf_index() == report.failure.leaf_index()) {
      report.failing_entry = failing;
    } else {
      ASSIGN_OR_RETURN(std::optional<std::string> bytes,
                       ReadStoredEntry(conn, report.failure.leaf_index()));
      if (bytes) report.failing_entry = EntryOf(report.failure.leaf_index(), *bytes);
    }
  }
  return report;
}

// Calls on_line with each line of an export (JSON lines; empty lines
// skipped); a line that is not an ExportLine is EXPORT_INVALID.
absl::Status ForEachExportLine(std::istream& in,
                               absl::FunctionRef<absl::Status(const v1::ExportLine&)> on_line) {
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (text.empty()) continue;
    v1::ExportLine line;
    if (!google::protobuf::util::JsonStringToMessage(text, &line).ok()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "EXPORT_INVALID",
                       absl::StrCat("line ", number, " is not an ExportLine"));
    }
    RETURN_IF_ERROR(on_line(line));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<v1::Checkpoint>> ReadCheckpointLines(std::istream& in) {
  std::vector<v1::Checkpoint> out;
  RETURN_IF_ERROR(ForEachExportLine(in, [&](const v1::ExportLine& line) {
    if (line.has_checkpoint()) out.push_back(line.checkpoint());
    return absl::OkStatus();
  }));
  return out;
}

absl::Status ExportDatabase(sql::Connection& conn, std::ostream& out) {
  RETURN_IF_ERROR(BeginSnapshot(conn));
  absl::Status status = ExportDatabaseIn(conn, out);
  EndSnapshot(conn);
  return status;
}

absl::StatusOr<VerifyReport> VerifyDatabase(sql::Connection& conn, const std::string& public_key,
                                            const std::vector<v1::Checkpoint>& extra) {
  RETURN_IF_ERROR(BeginSnapshot(conn));
  absl::StatusOr<VerifyReport> report = VerifyDatabaseIn(conn, public_key, extra);
  EndSnapshot(conn);
  return report;
}

absl::StatusOr<VerifyReport> VerifyExport(std::istream& in, const std::string& public_key,
                                          const std::vector<v1::Checkpoint>& extra) {
  std::vector<v1::Checkpoint> checkpoints = extra;
  std::vector<v1::AuditEntry> entries;
  Frontier frontier;
  RETURN_IF_ERROR(ForEachExportLine(in, [&](const v1::ExportLine& line) -> absl::Status {
    if (line.has_checkpoint()) checkpoints.push_back(line.checkpoint());
    if (line.has_entry()) entries.push_back(line.entry());
    if (line.has_frontier()) {
      std::vector<Hash> hashes;
      for (const std::string& h : line.frontier().hashes()) {
        ASSIGN_OR_RETURN(Hash hash, HashFromBytes(h));
        hashes.push_back(hash);
      }
      ASSIGN_OR_RETURN(frontier, Frontier::Create(line.frontier().tree_size(), hashes));
    }
    return absl::OkStatus();
  }));
  LogVerifier v({{KeyIdOf(public_key), public_key}}, checkpoints);
  std::optional<v1::AuditEntry> failing;
  PurgeTracker purges;
  if (v.CheckCheckpoints() && v.Start(frontier)) {
    for (const v1::AuditEntry& e : entries) {
      std::optional<Hash> stored;
      if (!e.leaf_hash().empty()) {
        absl::StatusOr<Hash> h = HashFromBytes(e.leaf_hash());
        if (h.ok()) stored = *h;
      }
      if (!v.AddLeaf(e.leaf_index(), e.canonical_entry(), stored)) {
        failing = e;
        break;
      }
      purges.See(e.canonical_entry());
    }
    v.Finish();
    purges.Check(v, frontier.size());
  }
  VerifyReport report = Report(v, frontier.size());
  if (!report.ok && failing) report.failing_entry = failing;
  return report;
}

}  // namespace qunzu::audit
