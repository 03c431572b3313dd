#include "services/audit/merkle.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace qunzu::audit {
namespace {

absl::Status ProofInvalid(absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, "PROOF_INVALID", why);
}

bool Lsb(uint64_t x) { return (x & 1) != 0; }

int PopCount(uint64_t x) { return __builtin_popcountll(x); }

void AppendPath(uint64_t index, uint64_t begin, uint64_t end, std::vector<LeafRange>* out) {
  const uint64_t n = end - begin;
  if (n <= 1) return;
  const uint64_t k = SplitPoint(n);
  if (index < k) {
    AppendPath(index, begin, begin + k, out);
    out->push_back({begin + k, end});
  } else {
    AppendPath(index - k, begin + k, end, out);
    out->push_back({begin, begin + k});
  }
}

void AppendSubproof(uint64_t m, uint64_t begin, uint64_t end, bool whole,
                    std::vector<LeafRange>* out) {
  const uint64_t n = end - begin;
  if (m == n) {
    if (!whole) out->push_back({begin, end});
    return;
  }
  const uint64_t k = SplitPoint(n);
  if (m <= k) {
    AppendSubproof(m, begin, begin + k, whole, out);
    out->push_back({begin + k, end});
  } else {
    AppendSubproof(m - k, begin + k, end, false, out);
    out->push_back({begin, begin + k});
  }
}

absl::StatusOr<std::vector<Hash>> HashesOfRanges(const std::vector<LeafRange>& ranges,
                                                 NodeReader read) {
  std::vector<NodeId> nodes;
  std::vector<size_t> counts;
  for (const LeafRange& range : ranges) {
    std::vector<NodeId> parts = RangeNodes(range);
    counts.push_back(parts.size());
    nodes.insert(nodes.end(), parts.begin(), parts.end());
  }
  ASSIGN_OR_RETURN(std::vector<Hash> hashes, read(nodes));
  if (hashes.size() != nodes.size()) {
    return MakeError(absl::StatusCode::kInternal, "MERKLE_NODES_MISSING",
                     absl::StrCat("read ", hashes.size(), " of ", nodes.size(), " tree nodes"));
  }
  std::vector<Hash> out;
  size_t at = 0;
  for (size_t count : counts) {
    std::vector<Hash> part(hashes.begin() + static_cast<ptrdiff_t>(at),
                           hashes.begin() + static_cast<ptrdiff_t>(at + count));
    out.push_back(FoldRange(part));
    at += count;
  }
  return out;
}

}  // namespace

Hash Sha256(absl::string_view data) {
  Hash out;
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
  return out;
}

Hash LeafHash(absl::string_view leaf_bytes) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const unsigned char prefix = 0x00;
  Hash out;
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(ctx, &prefix, 1);
  EVP_DigestUpdate(ctx, leaf_bytes.data(), leaf_bytes.size());
  EVP_DigestFinal_ex(ctx, out.data(), nullptr);
  EVP_MD_CTX_free(ctx);
  return out;
}

Hash NodeHash(const Hash& left, const Hash& right) {
  unsigned char buffer[65];
  buffer[0] = 0x01;
  std::memcpy(buffer + 1, left.data(), 32);
  std::memcpy(buffer + 33, right.data(), 32);
  Hash out;
  SHA256(buffer, sizeof(buffer), out.data());
  return out;
}

Hash EmptyRootHash() { return Sha256(""); }

std::string HashToBytes(const Hash& hash) {
  return std::string(reinterpret_cast<const char*>(hash.data()), hash.size());
}

absl::StatusOr<Hash> HashFromBytes(absl::string_view bytes) {
  if (bytes.size() != 32) {
    return MakeError(absl::StatusCode::kInvalidArgument, "HASH_INVALID",
                     absl::StrCat("a hash is 32 bytes, not ", bytes.size()));
  }
  Hash out;
  std::memcpy(out.data(), bytes.data(), 32);
  return out;
}

std::string HashToHex(const Hash& hash) { return absl::BytesToHexString(HashToBytes(hash)); }

uint64_t SplitPoint(uint64_t n) {
  uint64_t k = 1;
  while ((k << 1) < n) k <<= 1;
  return k;
}

std::vector<NodeId> RangeNodes(LeafRange range) {
  std::vector<NodeId> out;
  uint64_t pos = range.begin;
  while (pos < range.end) {
    int level = 0;
    while (level < 63) {
      const uint64_t next = uint64_t{1} << (level + 1);
      if (pos % next != 0 || pos + next > range.end) break;
      ++level;
    }
    out.push_back({level, pos >> level});
    pos += uint64_t{1} << level;
  }
  return out;
}

Hash FoldRange(const std::vector<Hash>& node_hashes) {
  if (node_hashes.empty()) return EmptyRootHash();
  Hash root = node_hashes.back();
  for (size_t i = node_hashes.size() - 1; i-- > 0;) root = NodeHash(node_hashes[i], root);
  return root;
}

std::vector<LeafRange> InclusionProofRanges(uint64_t index, uint64_t size) {
  std::vector<LeafRange> out;
  if (index < size) AppendPath(index, 0, size, &out);
  return out;
}

std::vector<LeafRange> ConsistencyProofRanges(uint64_t m, uint64_t n) {
  std::vector<LeafRange> out;
  if (m > 0 && m < n) AppendSubproof(m, 0, n, true, &out);
  return out;
}

absl::StatusOr<std::vector<Hash>> BuildInclusionProof(uint64_t index, uint64_t size,
                                                      NodeReader read) {
  return HashesOfRanges(InclusionProofRanges(index, size), read);
}

absl::StatusOr<std::vector<Hash>> BuildConsistencyProof(uint64_t m, uint64_t n, NodeReader read) {
  return HashesOfRanges(ConsistencyProofRanges(m, n), read);
}

absl::StatusOr<Hash> BuildRoot(uint64_t size, NodeReader read) {
  if (size == 0) return EmptyRootHash();
  ASSIGN_OR_RETURN(std::vector<Hash> hashes, HashesOfRanges({{0, size}}, read));
  return hashes.front();
}

absl::StatusOr<Hash> RootFromInclusionProof(uint64_t index, uint64_t size, const Hash& leaf_hash,
                                            const std::vector<Hash>& proof) {
  if (index >= size) return ProofInvalid(absl::StrCat("index ", index, " >= size ", size));
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf_hash;
  for (const Hash& p : proof) {
    if (sn == 0) return ProofInvalid("proof longer than the path");
    if (Lsb(fn) || fn == sn) {
      r = NodeHash(p, r);
      if (!Lsb(fn)) {
        while (!Lsb(fn) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofInvalid("proof shorter than the path");
  return r;
}

absl::Status VerifyInclusion(uint64_t index, uint64_t size, const Hash& leaf_hash,
                             const std::vector<Hash>& proof, const Hash& root) {
  ASSIGN_OR_RETURN(Hash computed, RootFromInclusionProof(index, size, leaf_hash, proof));
  if (computed != root) return ProofInvalid("inclusion proof does not lead to the root");
  return absl::OkStatus();
}

absl::Status VerifyConsistency(uint64_t size1, uint64_t size2, const Hash& root1, const Hash& root2,
                               const std::vector<Hash>& proof) {
  if (size1 > size2) return ProofInvalid("first size above the second");
  if (size1 == size2) {
    if (!proof.empty()) return ProofInvalid("equal sizes need an empty proof");
    if (root1 != root2) return ProofInvalid("equal sizes with different roots");
    return absl::OkStatus();
  }
  if (size1 == 0) {
    if (!proof.empty()) return ProofInvalid("an empty first tree needs an empty proof");
    return absl::OkStatus();
  }
  if (proof.empty()) return ProofInvalid("empty consistency proof");
  std::vector<Hash> path;
  if ((size1 & (size1 - 1)) == 0) path.push_back(root1);
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = size1 - 1;
  uint64_t sn = size2 - 1;
  while (Lsb(fn)) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) return ProofInvalid("consistency proof too long");
    if (Lsb(fn) || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      if (!Lsb(fn)) {
        while (!Lsb(fn) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return ProofInvalid("consistency proof too short");
  if (fr != root1) return ProofInvalid("consistency proof does not lead to the first root");
  if (sr != root2) return ProofInvalid("consistency proof does not lead to the second root");
  return absl::OkStatus();
}

absl::StatusOr<Frontier> Frontier::Create(uint64_t size, std::vector<Hash> hashes) {
  if (static_cast<int>(hashes.size()) != PopCount(size)) {
    return MakeError(absl::StatusCode::kInvalidArgument, "FRONTIER_INVALID",
                     absl::StrCat("a tree of ", size, " leaves has ", PopCount(size),
                                  " frontier hashes, not ", hashes.size()));
  }
  Frontier f;
  f.size_ = size;
  f.hashes_ = std::move(hashes);
  return f;
}

std::vector<NodeId> Frontier::NodesFor(uint64_t size) { return RangeNodes({0, size}); }

void Frontier::Append(const Hash& leaf_hash,
                      absl::FunctionRef<void(const NodeId&, const Hash&)> on_node) {
  on_node({0, size_}, leaf_hash);
  Hash carry = leaf_hash;
  int level = 0;
  uint64_t index = size_;
  // Each trailing set bit of the old size is a subtree the new leaf completes.
  while (Lsb(index)) {
    carry = NodeHash(hashes_.back(), carry);
    hashes_.pop_back();
    ++level;
    index >>= 1;
    on_node({level, index}, carry);
  }
  hashes_.push_back(carry);
  ++size_;
}

void Frontier::Append(const Hash& leaf_hash) {
  Append(leaf_hash, [](const NodeId&, const Hash&) {});
}

Hash Frontier::Root() const { return FoldRange(hashes_); }

std::string Frontier::Serialize() const {
  std::string out;
  out.reserve(hashes_.size() * 32);
  for (const Hash& h : hashes_) out += HashToBytes(h);
  return out;
}

absl::StatusOr<Frontier> Frontier::Parse(uint64_t size, absl::string_view bytes) {
  if (bytes.size() % 32 != 0) {
    return MakeError(absl::StatusCode::kInvalidArgument, "FRONTIER_INVALID",
                     "frontier bytes are not whole hashes");
  }
  std::vector<Hash> hashes;
  for (size_t at = 0; at < bytes.size(); at += 32) {
    ASSIGN_OR_RETURN(Hash h, HashFromBytes(bytes.substr(at, 32)));
    hashes.push_back(h);
  }
  return Create(size, std::move(hashes));
}

}  // namespace qunzu::audit
