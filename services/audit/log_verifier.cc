#include "services/audit/log_verifier.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "services/audit/entry_codec.h"
#include "services/audit/signer.h"

namespace qunzu::audit {

int64_t CheckpointTimeMicros(const v1::Checkpoint& checkpoint) {
  return checkpoint.time().seconds() * 1000000 + checkpoint.time().nanos() / 1000;
}

std::string CheckpointSignedMessage(const v1::Checkpoint& checkpoint) {
  return CheckpointMessage(checkpoint.tree_size(), checkpoint.root_hash(),
                           CheckpointTimeMicros(checkpoint), checkpoint.key_id());
}

LogVerifier::LogVerifier(std::map<std::string, std::string> keys,
                         std::vector<v1::Checkpoint> checkpoints)
    : keys_(std::move(keys)), all_(std::move(checkpoints)) {
  std::stable_sort(all_.begin(), all_.end(), [](const v1::Checkpoint& a, const v1::Checkpoint& b) {
    return a.tree_size() < b.tree_size();
  });
}

bool LogVerifier::Fail(v1::VerifyFailureKind kind, uint64_t leaf_index, uint64_t tree_size,
                       std::string detail) {
  if (!failure_) {
    v1::VerifyFailure f;
    f.set_kind(kind);
    f.set_leaf_index(leaf_index);
    f.set_tree_size(tree_size);
    f.set_detail(std::move(detail));
    failure_ = std::move(f);
  }
  return false;
}

bool LogVerifier::CheckCheckpoints() {
  const v1::Checkpoint* previous = nullptr;
  for (const v1::Checkpoint& cp : all_) {
    auto key = keys_.find(cp.key_id());
    if (key == keys_.end()) {
      return Fail(v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, 0, cp.tree_size(),
                  absl::StrCat("checkpoint at tree size ", cp.tree_size(),
                               " is signed by unknown key ", cp.key_id()));
    }
    if (!VerifySignature(key->second, CheckpointSignedMessage(cp), cp.signature())) {
      return Fail(
          v1::VERIFY_FAILURE_KIND_SIGNATURE_INVALID, 0, cp.tree_size(),
          absl::StrCat("checkpoint at tree size ", cp.tree_size(), " has an invalid signature"));
    }
    if (previous != nullptr) {
      if (previous->tree_size() == cp.tree_size() && previous->root_hash() != cp.root_hash()) {
        return Fail(v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED, 0, cp.tree_size(),
                    absl::StrCat("two checkpoints of tree size ", cp.tree_size(),
                                 " have different roots (a fork)"));
      }
      if (CheckpointTimeMicros(cp) < CheckpointTimeMicros(*previous)) {
        return Fail(v1::VERIFY_FAILURE_KIND_CONSISTENCY_FAILED, 0, previous->tree_size(),
                    absl::StrCat("checkpoint at tree size ", previous->tree_size(),
                                 " is newer than the one at ", cp.tree_size(),
                                 ": the log was rolled back"));
      }
    }
    by_size_.emplace(cp.tree_size(), cp);
    previous = &cp;
  }
  return true;
}

bool LogVerifier::CheckRootAt(uint64_t size) {
  auto it = by_size_.find(size);
  if (it == by_size_.end()) return true;
  ++checkpoints_checked_;
  if (HashToBytes(frontier_.Root()) != it->second.root_hash()) {
    return Fail(v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, size == 0 ? 0 : size - 1, size,
                absl::StrCat("the first ", size,
                             " leaves do not hash to the root of the checkpoint at that size"));
  }
  last_verified_ = it->second;
  return true;
}

bool LogVerifier::Start(const Frontier& frontier, bool require_checkpoint) {
  frontier_ = frontier;
  started_ = true;
  if (frontier.size() == 0) return true;
  if (by_size_.count(frontier.size()) == 0) {
    if (!require_checkpoint) return true;
    return Fail(v1::VERIFY_FAILURE_KIND_ROOT_MISMATCH, frontier.size(), frontier.size(),
                absl::StrCat("no signed checkpoint at the oldest kept leaf ", frontier.size()));
  }
  return CheckRootAt(frontier.size());
}

bool LogVerifier::AddLeaf(uint64_t leaf_index, const std::string& canonical_entry,
                          const std::optional<Hash>& stored_hash) {
  if (failure_) return false;
  const uint64_t expected = frontier_.size();
  if (leaf_index > expected) {
    return Fail(v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, expected, 0,
                absl::StrCat("entry ", expected, " is missing (next stored is ", leaf_index, ")"));
  }
  if (leaf_index < expected) {
    return Fail(v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, leaf_index, 0,
                absl::StrCat("entry ", leaf_index, " appears again after entry ", expected - 1));
  }
  const Hash leaf = LeafHash(canonical_entry);
  absl::StatusOr<DecodedEntry> decoded = DecodeEntry(canonical_entry);
  if (!decoded.ok()) {
    return Fail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, leaf_index, 0,
                absl::StrCat("entry ", leaf_index, ": ", decoded.status().message()));
  }
  if (stored_hash && *stored_hash != leaf) {
    return Fail(v1::VERIFY_FAILURE_KIND_LEAF_HASH_MISMATCH, leaf_index, 0,
                absl::StrCat("entry ", leaf_index, " does not hash to its leaf hash"));
  }
  const int64_t appended = absl::ToUnixMicros(decoded->appended_at);
  if (appended < last_appended_micros_) {
    return Fail(v1::VERIFY_FAILURE_KIND_ENTRY_OUT_OF_ORDER, leaf_index, 0,
                absl::StrCat("entry ", leaf_index, " was appended before entry ", leaf_index - 1));
  }
  last_appended_micros_ = appended;
  frontier_.Append(leaf);
  ++entries_checked_;
  if (!CheckRootAt(frontier_.size())) {
    // Name the entry: with stored hashes intact, the root alone failed.
    failure_->set_detail(
        absl::StrCat(failure_->detail(), " (first failing entry at or before ", leaf_index, ")"));
    return false;
  }
  return true;
}

bool LogVerifier::Finish() {
  if (failure_) return false;
  auto beyond = by_size_.upper_bound(frontier_.size());
  if (beyond != by_size_.end()) {
    return Fail(v1::VERIFY_FAILURE_KIND_ENTRY_MISSING, frontier_.size(), beyond->first,
                absl::StrCat("the log ends at ", frontier_.size(),
                             " entries but a signed checkpoint covers ", beyond->first,
                             ": entries were removed from the tail"));
  }
  return true;
}

}  // namespace qunzu::audit
