// Verification of a stored or exported log, shared by VerifyRange and the
// stand-alone qunzu-audit-verify: every leaf is re-hashed from its
// canonical bytes and folded into the tree; every checkpoint's signature is
// checked against the pinned keys, its root against the recomputed tree,
// and the checkpoints against each other (a larger tree never carries an
// earlier time; two checkpoints of one size never differ). The first
// failure is kept, with the leaf or checkpoint it concerns.
#ifndef QUNZU_SERVICES_AUDIT_LOG_VERIFIER_H_
#define QUNZU_SERVICES_AUDIT_LOG_VERIFIER_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "qunzu/audit/v1/audit.pb.h"
#include "services/audit/merkle.h"

namespace qunzu::audit {

// A checkpoint's canonical message (entry_codec.h) from its proto.
int64_t CheckpointTimeMicros(const v1::Checkpoint& checkpoint);
std::string CheckpointSignedMessage(const v1::Checkpoint& checkpoint);

class LogVerifier {
 public:
  // keys: key_id -> raw Ed25519 public key, the only keys trusted.
  // checkpoints: in any order; several sources may repeat one.
  LogVerifier(std::map<std::string, std::string> keys, std::vector<v1::Checkpoint> checkpoints);

  // Signatures, key ids and the ordering of checkpoints. False on failure.
  bool CheckCheckpoints();
  // Where the leaves start: an empty frontier for leaf 0, or the frontier at
  // the oldest kept leaf after a purge, which must match the signed
  // checkpoint at that size. With require_checkpoint false (a range check
  // that starts from stored subtree hashes) no checkpoint is needed there.
  bool Start(const Frontier& frontier, bool require_checkpoint = true);
  // The next stored leaf. stored_hash, when known, is the hash kept beside
  // the entry; a mismatch pinpoints the entry.
  bool AddLeaf(uint64_t leaf_index, const std::string& canonical_entry,
               const std::optional<Hash>& stored_hash);
  // After the last leaf: every checkpoint must have been reached; one past
  // the last leaf means entries were removed from the tail.
  bool Finish();

  // Records a failure found outside the leaves (the first one wins);
  // returns false.
  bool Fail(v1::VerifyFailureKind kind, uint64_t leaf_index, uint64_t tree_size,
            std::string detail);

  bool ok() const { return !failure_.has_value(); }
  const std::optional<v1::VerifyFailure>& failure() const { return failure_; }
  uint64_t entries_checked() const { return entries_checked_; }
  uint64_t checkpoints_checked() const { return checkpoints_checked_; }
  uint64_t tree_size() const { return frontier_.size(); }
  // The latest checkpoint reached by the leaves.
  const std::optional<v1::Checkpoint>& last_verified_checkpoint() const { return last_verified_; }

 private:
  bool CheckRootAt(uint64_t size);

  std::map<std::string, std::string> keys_;
  std::map<uint64_t, v1::Checkpoint> by_size_;
  std::vector<v1::Checkpoint> all_;
  Frontier frontier_;
  bool started_ = false;
  int64_t last_appended_micros_ = 0;
  uint64_t entries_checked_ = 0;
  uint64_t checkpoints_checked_ = 0;
  std::optional<v1::Checkpoint> last_verified_;
  std::optional<v1::VerifyFailure> failure_;
};

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_LOG_VERIFIER_H_
