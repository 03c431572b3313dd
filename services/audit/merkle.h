// RFC 6962 (Certificate Transparency) Merkle tree hashing, proofs and their
// verifiers, as plain C++ with no storage of its own.
//
//   leaf hash  = SHA-256(0x00 || leaf bytes)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH({})    = SHA-256()
//   MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n
//
// Storage sees the tree as complete subtrees: NodeId{level, index} covers
// leaves [index * 2^level, (index + 1) * 2^level). A proof is a list of
// subtree hashes over ranges; every such range decomposes into complete
// subtrees (RangeNodes), so a store that keeps every complete subtree's hash
// (written once, when it becomes complete) answers proofs in O(log n) reads,
// without rehashing the log. The Frontier keeps the roots of the perfect
// subtrees of the current tree (one per set bit of its size) and appends in
// amortised O(1), O(log n) at worst.
#ifndef QUNZU_SERVICES_AUDIT_MERKLE_H_
#define QUNZU_SERVICES_AUDIT_MERKLE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace qunzu::audit {

using Hash = std::array<uint8_t, 32>;

Hash Sha256(absl::string_view data);
Hash LeafHash(absl::string_view leaf_bytes);
Hash NodeHash(const Hash& left, const Hash& right);
// MTH of the empty tree, SHA-256 of nothing.
Hash EmptyRootHash();

std::string HashToBytes(const Hash& hash);
// INVALID_ARGUMENT unless exactly 32 bytes.
absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes);
std::string HashToHex(const Hash& hash);

// A complete subtree of 2^level leaves starting at leaf index << level.
struct NodeId {
  int level = 0;
  uint64_t index = 0;
  bool operator==(const NodeId& o) const { return level == o.level && index == o.index; }
  bool operator<(const NodeId& o) const {
    return level != o.level ? level < o.level : index < o.index;
  }
};

// The leaf range [begin, end) a proof element is the MTH of.
struct LeafRange {
  uint64_t begin = 0;
  uint64_t end = 0;
};

// The largest power of two strictly below n (n >= 2).
uint64_t SplitPoint(uint64_t n);

// The complete subtrees, left to right, that make up [begin, end) as RFC
// 6962 splits it (begin aligned as in every proof range and every prefix).
std::vector<NodeId> RangeNodes(LeafRange range);
// MTH of a range from the hashes of its RangeNodes, in the same order.
Hash FoldRange(const std::vector<Hash>& node_hashes);

// The ranges whose MTHs form the audit path of leaf `index` in a tree of
// `size` leaves (RFC 6962 2.1.1), leaf to root. Requires index < size.
std::vector<LeafRange> InclusionProofRanges(uint64_t index, uint64_t size);
// The ranges of the consistency proof from size m to size n (RFC 6962
// 2.1.2). Requires 0 < m <= n; empty when m == n.
std::vector<LeafRange> ConsistencyProofRanges(uint64_t m, uint64_t n);

// Reads the hashes of complete subtrees, in the order asked.
using NodeReader =
    absl::FunctionRef<absl::StatusOr<std::vector<Hash>>(const std::vector<NodeId>& nodes)>;

// Proofs built from stored subtree hashes with one read of all the nodes.
absl::StatusOr<std::vector<Hash>> BuildInclusionProof(uint64_t index, uint64_t size,
                                                      NodeReader read);
absl::StatusOr<std::vector<Hash>> BuildConsistencyProof(uint64_t m, uint64_t n, NodeReader read);
// MTH of the first `size` leaves from stored subtree hashes.
absl::StatusOr<Hash> BuildRoot(uint64_t size, NodeReader read);

// RFC 9162 2.1.3.2. OK when `proof` shows leaf_hash at index in the tree of
// `size` whose root is `root`; INVALID_ARGUMENT (PROOF_INVALID) otherwise.
absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             const std::vector<Hash>& proof, const Hash& root);
// The root an inclusion proof implies, or PROOF_INVALID when it cannot
// imply any (wrong length, index past size).
absl::StatusOr<Hash> RootFromInclusionProof(uint64_t index, uint64_t size, const Hash& leaf_hash,
                                            const std::vector<Hash>& proof);
// RFC 9162 2.1.4.2. OK when the tree of size1 (root1) is a prefix of the
// tree of size2 (root2); INVALID_ARGUMENT (PROOF_INVALID) otherwise.
absl::Status VerifyConsistency(uint64_t size1, uint64_t size2, const Hash& root1, const Hash& root2,
                               const std::vector<Hash>& proof);

// The roots of the perfect subtrees of a tree of size() leaves, largest
// (leftmost) first: enough to append and to compute the root.
class Frontier {
 public:
  Frontier() = default;
  // INVALID_ARGUMENT unless hashes has one hash per set bit of size.
  static absl::StatusOr<Frontier> Create(uint64_t size, std::vector<Hash> hashes);
  // The nodes whose hashes make the frontier of a tree of `size` leaves.
  static std::vector<NodeId> NodesFor(uint64_t size);

  uint64_t size() const { return size_; }
  const std::vector<Hash>& hashes() const { return hashes_; }
  // Appends one leaf hash; on_node(node, hash) is called for every complete
  // subtree this completes, the leaf itself (level 0) first.
  void Append(const Hash& leaf_hash, absl::FunctionRef<void(const NodeId&, const Hash&)> on_node);
  void Append(const Hash& leaf_hash);
  // MTH of the tree (EmptyRootHash() when empty).
  Hash Root() const;

  // The frontier as bytes (concatenated hashes) and back.
  std::string Serialize() const;
  static absl::StatusOr<Frontier> Parse(uint64_t size, absl::string_view bytes);

 private:
  uint64_t size_ = 0;
  std::vector<Hash> hashes_;
};

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_MERKLE_H_
