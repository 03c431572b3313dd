// AuditLog's checkpoints and proofs: reading signed checkpoints, inclusion
// and consistency proofs, and range verification.

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "common/audit_outbox.h"
#include "common/log.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/audit_log.h"
#include "services/audit/audit_log_internal.h"
#include "services/audit/bundle_store.h"
#include "services/audit/entry_codec.h"
#include "services/audit/log_verifier.h"
#include "services/audit/node_store.h"

namespace qunzu::audit {

using internal::Bad;
using internal::Bytes;
using internal::PageSize;
using internal::ParsePageToken;
using internal::TimeColumn;
using internal::ToProto;

namespace {

constexpr uint64_t kMaxVerifyRange = 1000000;

absl::Status OutOfRange(absl::string_view reason, absl::string_view message) {
  return MakeError(absl::StatusCode::kOutOfRange, reason, message);
}

v1::Checkpoint CheckpointFromRow(const sql::ResultSet& row, absl::Time time) {
  v1::Checkpoint cp;
  cp.set_tree_size(row.getUInt64(1));
  cp.set_root_hash(Bytes(row, 2));
  ToProto(time, cp.mutable_time());
  cp.set_key_id(Bytes(row, 4));
  cp.set_signature(Bytes(row, 5));
  return cp;
}

constexpr char kCheckpointColumns[] = "tree_size, root_hash, created_at, key_id, signature";

}  // namespace

absl::StatusOr<std::vector<Hash>> AuditLog::ReadNodes(sql::Connection& conn,
                                                      const std::vector<NodeId>& nodes) {
  return ReadTreeNodes(conn, nodes);
}

absl::StatusOr<std::optional<v1::Checkpoint>> AuditLog::ReadCheckpoint(sql::Connection& conn,
                                                                       uint64_t tree_size) {
  std::optional<v1::Checkpoint> out;
  RETURN_IF_ERROR(qunzu::Query(
      conn,
      absl::StrCat("SELECT ", kCheckpointColumns, " FROM audit_checkpoints WHERE tree_size = ?"),
      {tree_size}, [&](const sql::ResultSet& row) -> absl::Status {
        ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
        out = CheckpointFromRow(row, t);
        return absl::OkStatus();
      }));
  return out;
}

absl::StatusOr<uint64_t> AuditLog::LatestCheckpointSize(sql::Connection& conn) {
  uint64_t size = 0;
  RETURN_IF_ERROR(qunzu::Query(conn, "SELECT COALESCE(MAX(tree_size), 0) FROM audit_checkpoints",
                               {}, [&](const sql::ResultSet& row) {
                                 size = row.getUInt64(1);
                                 return absl::OkStatus();
                               }));
  return size;
}

absl::StatusOr<v1::SigningKey> AuditLog::ReadKey(sql::Connection& conn, const std::string& key_id) {
  std::optional<v1::SigningKey> key;
  RETURN_IF_ERROR(qunzu::Query(
      conn, "SELECT key_id, public_key, first_used_at FROM audit_signing_keys WHERE key_id = ?",
      {key_id}, [&](const sql::ResultSet& row) -> absl::Status {
        v1::SigningKey k;
        k.set_key_id(Bytes(row, 1));
        k.set_public_key(Bytes(row, 2));
        ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
        ToProto(t, k.mutable_first_used_at());
        key = std::move(k);
        return absl::OkStatus();
      }));
  if (!key) {
    return MakeError(absl::StatusCode::kDataLoss, "SIGNING_KEY_MISSING",
                     "no public key recorded for key id " + key_id);
  }
  return *key;
}

absl::StatusOr<v1::GetCheckpointResponse> AuditLog::GetCheckpoint(
    const v1::GetCheckpointRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  uint64_t size = request.tree_size();
  if (size == 0) {
    ASSIGN_OR_RETURN(size, LatestCheckpointSize(*lease));
  }
  std::optional<v1::Checkpoint> cp;
  if (size > 0) {
    ASSIGN_OR_RETURN(cp, ReadCheckpoint(*lease, size));
  }
  if (!cp) {
    return MakeError(absl::StatusCode::kNotFound, "CHECKPOINT_NOT_FOUND",
                     request.tree_size() == 0
                         ? std::string("no checkpoint has been signed yet")
                         : absl::StrCat("no checkpoint at tree size ", request.tree_size()));
  }
  v1::GetCheckpointResponse out;
  ASSIGN_OR_RETURN(*out.mutable_signing_key(), ReadKey(*lease, cp->key_id()));
  *out.mutable_checkpoint() = *std::move(cp);
  return out;
}

absl::StatusOr<v1::ListCheckpointsResponse> AuditLog::ListCheckpoints(
    const v1::ListCheckpointsRequest& request) {
  ASSIGN_OR_RETURN(int page_size, PageSize(request.page()));
  ASSIGN_OR_RETURN(uint64_t from, ParsePageToken(request.page().page_token()));
  from = std::max(from, request.min_tree_size());
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  v1::ListCheckpointsResponse out;
  std::set<std::string> key_ids;
  absl::Status s =
      qunzu::Query(*lease,
                   absl::StrCat("SELECT ", kCheckpointColumns,
                                " FROM audit_checkpoints WHERE tree_size >= ? "
                                "ORDER BY tree_size LIMIT ?"),
                   {from, page_size + 1}, [&](const sql::ResultSet& row) -> absl::Status {
                     ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
                     *out.add_checkpoints() = CheckpointFromRow(row, t);
                     return absl::OkStatus();
                   });
  RETURN_IF_ERROR(s);
  if (out.checkpoints_size() > page_size) {
    out.mutable_page()->set_next_page_token(absl::StrCat(out.checkpoints(page_size).tree_size()));
    out.mutable_checkpoints()->RemoveLast();
  }
  for (const v1::Checkpoint& cp : out.checkpoints()) key_ids.insert(cp.key_id());
  for (const std::string& id : key_ids) {
    ASSIGN_OR_RETURN(*out.add_signing_keys(), ReadKey(*lease, id));
  }
  return out;
}

absl::StatusOr<v1::GetInclusionProofResponse> AuditLog::GetInclusionProof(
    const v1::GetInclusionProofRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  uint64_t size = request.tree_size();
  if (size == 0) {
    ASSIGN_OR_RETURN(size, LatestCheckpointSize(*lease));
    if (size == 0) {
      return MakeError(absl::StatusCode::kNotFound, "CHECKPOINT_NOT_FOUND",
                       "no checkpoint has been signed yet; name a tree_size");
    }
  }
  if (size > head.tree_size) {
    return OutOfRange("TREE_SIZE_OUT_OF_RANGE",
                      absl::StrCat("tree_size ", size, " is past the log's ", head.tree_size));
  }
  if (request.leaf_index() >= size) {
    return OutOfRange("LEAF_INDEX_OUT_OF_RANGE",
                      absl::StrCat("leaf_index ", request.leaf_index(), " is not in a tree of ",
                                   size, " leaves"));
  }
  if (request.leaf_index() < head.oldest_leaf_index) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "LEAF_PURGED",
                     absl::StrCat("leaf ", request.leaf_index(), " was purged; the oldest kept is ",
                                  head.oldest_leaf_index));
  }
  auto read = [&](const std::vector<NodeId>& ids) { return ReadNodes(*lease, ids); };
  ASSIGN_OR_RETURN(std::vector<Hash> proof, BuildInclusionProof(request.leaf_index(), size, read));
  ASSIGN_OR_RETURN(std::vector<Hash> leaf, ReadNodes(*lease, {{0, request.leaf_index()}}));
  v1::GetInclusionProofResponse out;
  out.set_leaf_index(request.leaf_index());
  out.set_tree_size(size);
  out.set_leaf_hash(HashToBytes(leaf.front()));
  for (const Hash& h : proof) out.add_hashes(HashToBytes(h));
  ASSIGN_OR_RETURN(std::optional<v1::Checkpoint> cp, ReadCheckpoint(*lease, size));
  if (cp) *out.mutable_checkpoint() = *std::move(cp);
  return out;
}

absl::StatusOr<v1::GetConsistencyProofResponse> AuditLog::GetConsistencyProof(
    const v1::GetConsistencyProofRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  uint64_t second = request.second_tree_size();
  if (second == 0) {
    ASSIGN_OR_RETURN(second, LatestCheckpointSize(*lease));
  }
  if (request.first_tree_size() == 0) {
    return InvalidField("first_tree_size", "must be at least 1");
  }
  if (request.first_tree_size() > head.tree_size || second > head.tree_size) {
    return OutOfRange("TREE_SIZE_OUT_OF_RANGE",
                      absl::StrCat("tree sizes ", request.first_tree_size(), " and ", second,
                                   " must not pass the log's ", head.tree_size));
  }
  if (request.first_tree_size() > second) {
    return Bad("TREE_SIZES_OUT_OF_ORDER",
               absl::StrCat("first_tree_size ", request.first_tree_size(),
                            " is above second_tree_size ", second));
  }
  auto read = [&](const std::vector<NodeId>& ids) { return ReadNodes(*lease, ids); };
  ASSIGN_OR_RETURN(std::vector<Hash> proof,
                   BuildConsistencyProof(request.first_tree_size(), second, read));
  v1::GetConsistencyProofResponse out;
  out.set_first_tree_size(request.first_tree_size());
  out.set_second_tree_size(second);
  for (const Hash& h : proof) out.add_hashes(HashToBytes(h));
  return out;
}

absl::StatusOr<v1::VerifyRangeResponse> AuditLog::VerifyRange(
    const v1::VerifyRangeRequest& request) {
  ASSIGN_OR_RETURN(MysqlPool::Lease lease, pool_.Acquire(absl::Seconds(5)));
  ASSIGN_OR_RETURN(Head head, LoadHead(*lease, false));
  uint64_t end = request.end_leaf_index();
  if (end == 0) {
    ASSIGN_OR_RETURN(end, LatestCheckpointSize(*lease));
  }
  const uint64_t start = request.start_leaf_index();
  if (end > head.tree_size || start >= std::max<uint64_t>(end, 1)) {
    return OutOfRange("LEAF_INDEX_OUT_OF_RANGE",
                      absl::StrCat("range [", start, ", ", end, ") is not inside the log's ",
                                   head.tree_size, " leaves"));
  }
  if (end - start > kMaxVerifyRange) {
    return Bad("RANGE_TOO_LARGE", absl::StrCat("at most ", kMaxVerifyRange, " leaves per call"));
  }
  if (start < head.oldest_leaf_index) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "LEAF_PURGED",
        absl::StrCat("leaf ", start, " was purged; the oldest kept is ", head.oldest_leaf_index));
  }
  std::map<std::string, std::string> keys;
  RETURN_IF_ERROR(qunzu::Query(*lease, "SELECT key_id, public_key FROM audit_signing_keys", {},
                               [&](const sql::ResultSet& row) {
                                 keys[Bytes(row, 1)] = Bytes(row, 2);
                                 return absl::OkStatus();
                               }));
  std::vector<v1::Checkpoint> checkpoints;
  RETURN_IF_ERROR(qunzu::Query(*lease,
                               absl::StrCat("SELECT ", kCheckpointColumns,
                                            " FROM audit_checkpoints WHERE tree_size >= ? AND "
                                            "tree_size <= ? ORDER BY tree_size"),
                               {start, end}, [&](const sql::ResultSet& row) -> absl::Status {
                                 ASSIGN_OR_RETURN(absl::Time t, TimeColumn(row, 3));
                                 checkpoints.push_back(CheckpointFromRow(row, t));
                                 return absl::OkStatus();
                               }));
  LogVerifier verifier(keys, checkpoints);
  ASSIGN_OR_RETURN(std::vector<Hash> frontier_hashes, ReadNodes(*lease, Frontier::NodesFor(start)));
  ASSIGN_OR_RETURN(Frontier frontier, Frontier::Create(start, frontier_hashes));
  if (verifier.CheckCheckpoints() && verifier.Start(frontier, false)) {
    RETURN_IF_ERROR(ForEachStoredLeaf(
        *lease, start, end,
        [&](uint64_t index, const std::string& bytes, const std::optional<Hash>& stored) {
          return verifier.AddLeaf(index, bytes, stored);
        }));
    if (verifier.ok() && verifier.tree_size() < end) {
      verifier.AddLeaf(end, "", std::nullopt);  // reports the first missing entry
    }
    if (verifier.ok()) verifier.Finish();
  }
  v1::VerifyRangeResponse out;
  out.set_ok(verifier.ok());
  out.set_entries_checked(verifier.entries_checked());
  out.set_checkpoints_checked(verifier.checkpoints_checked());
  if (verifier.failure()) *out.mutable_first_failure() = *verifier.failure();
  if (verifier.last_verified_checkpoint()) {
    *out.mutable_checkpoint() = *verifier.last_verified_checkpoint();
  }
  return out;
}

}  // namespace qunzu::audit
