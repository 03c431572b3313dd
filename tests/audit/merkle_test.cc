// RFC 6962 hashing, proofs and verifiers against the Certificate
// Transparency reference vectors (the eight-leaf tree used by CT and
// transparency-dev/merkle), and against a brute-force MTH for every size up
// to 64; corrupted proofs must be rejected.
#include "services/audit/merkle.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"

namespace qunzu::audit {
namespace {

Hash H(const std::string& hex) { return HashFromBytes(absl::HexStringToBytes(hex)).value(); }

const std::vector<std::string>& Leaves() {
  static const auto* leaves = new std::vector<std::string>{
      "",
      absl::HexStringToBytes("00"),
      absl::HexStringToBytes("10"),
      absl::HexStringToBytes("2021"),
      absl::HexStringToBytes("3031"),
      absl::HexStringToBytes("40414243"),
      absl::HexStringToBytes("5051525354555657"),
      absl::HexStringToBytes("606162636465666768696a6b6c6d6e6f"),
  };
  return *leaves;
}

const std::vector<Hash>& Roots() {
  static const auto* roots = new std::vector<Hash>{
      H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
      H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
      H("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
      H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
      H("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
      H("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
      H("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
      H("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
  };
  return *roots;
}

struct InclusionVector {
  uint64_t index;  // 0-based
  uint64_t size;
  std::vector<Hash> proof;
};

std::vector<InclusionVector> InclusionVectors() {
  return {
      {0,
       8,
       {H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")}},
      {5,
       8,
       {H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")}},
      {2, 3, {H("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")}},
      {1,
       5,
       {H("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")}},
  };
}

struct ConsistencyVector {
  uint64_t size1;
  uint64_t size2;
  std::vector<Hash> proof;
};

std::vector<ConsistencyVector> ConsistencyVectors() {
  return {
      {1,
       8,
       {H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")}},
      {6,
       8,
       {H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")}},
      {2,
       5,
       {H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")}},
      {6,
       7,
       {H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        H("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")}},
  };
}

// Every complete subtree of a log, as a store would keep them.
class MemoryTree {
 public:
  void Add(const std::string& leaf) {
    frontier_.Append(LeafHash(leaf), [this](const NodeId& id, const Hash& h) { nodes_[id] = h; });
  }
  absl::StatusOr<std::vector<Hash>> Read(const std::vector<NodeId>& ids) const {
    std::vector<Hash> out;
    for (const NodeId& id : ids) {
      auto it = nodes_.find(id);
      if (it == nodes_.end()) return absl::NotFoundError("node");
      out.push_back(it->second);
    }
    return out;
  }
  const Frontier& frontier() const { return frontier_; }

 private:
  Frontier frontier_;
  std::map<NodeId, Hash> nodes_;
};

// MTH straight from the RFC's definition.
Hash ReferenceRoot(const std::vector<Hash>& leaves, size_t begin, size_t end) {
  if (end - begin == 1) return leaves[begin];
  const size_t k = SplitPoint(end - begin);
  return NodeHash(ReferenceRoot(leaves, begin, begin + k), ReferenceRoot(leaves, begin + k, end));
}

MemoryTree ReferenceTree() {
  MemoryTree tree;
  for (const std::string& leaf : Leaves()) tree.Add(leaf);
  return tree;
}

TEST(AuditMerkleTest, EmptyTreeAndSingleLeaf) {
  EXPECT_EQ(HashToHex(EmptyRootHash()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(LeafHash(""), Roots()[0]);
  Frontier f;
  EXPECT_EQ(f.Root(), EmptyRootHash());
}

TEST(AuditMerkleTest, RootsOfEveryPrefixMatchTheVectors) {
  Frontier f;
  for (size_t i = 0; i < Leaves().size(); ++i) {
    f.Append(LeafHash(Leaves()[i]));
    EXPECT_EQ(f.Root(), Roots()[i]) << "size " << i + 1;
  }
  MemoryTree tree = ReferenceTree();
  for (uint64_t size = 1; size <= 8; ++size) {
    auto root = BuildRoot(size, [&](const std::vector<NodeId>& ids) { return tree.Read(ids); });
    ASSERT_TRUE(root.ok());
    EXPECT_EQ(*root, Roots()[size - 1]);
  }
}

TEST(AuditMerkleTest, InclusionProofsMatchAndVerify) {
  MemoryTree tree = ReferenceTree();
  for (const InclusionVector& v : InclusionVectors()) {
    auto proof = BuildInclusionProof(
        v.index, v.size, [&](const std::vector<NodeId>& ids) { return tree.Read(ids); });
    ASSERT_TRUE(proof.ok());
    EXPECT_EQ(*proof, v.proof) << v.index << "/" << v.size;
    EXPECT_TRUE(
        VerifyInclusion(v.index, v.size, LeafHash(Leaves()[v.index]), v.proof, Roots()[v.size - 1])
            .ok());
  }
}

TEST(AuditMerkleTest, ConsistencyProofsMatchAndVerify) {
  MemoryTree tree = ReferenceTree();
  for (const ConsistencyVector& v : ConsistencyVectors()) {
    auto proof = BuildConsistencyProof(
        v.size1, v.size2, [&](const std::vector<NodeId>& ids) { return tree.Read(ids); });
    ASSERT_TRUE(proof.ok());
    EXPECT_EQ(*proof, v.proof) << v.size1 << "->" << v.size2;
    EXPECT_TRUE(
        VerifyConsistency(v.size1, v.size2, Roots()[v.size1 - 1], Roots()[v.size2 - 1], v.proof)
            .ok());
  }
}

Hash Flip(Hash h, int bit) {
  h[0] ^= static_cast<uint8_t>(1 << bit);
  return h;
}

TEST(AuditMerkleTest, CorruptedInclusionProofsAreRejected) {
  const Hash some = H("abacaba000000000000000000000000000000000000000000060061e00123456");
  for (const InclusionVector& v : InclusionVectors()) {
    const Hash leaf = LeafHash(Leaves()[v.index]);
    const Hash root = Roots()[v.size - 1];
    const std::vector<Hash>& p = v.proof;
    auto rejects = [&](uint64_t index, uint64_t size, const Hash& l, const std::vector<Hash>& proof,
                       const Hash& r, const char* what) {
      EXPECT_FALSE(VerifyInclusion(index, size, l, proof, r).ok())
          << what << " " << v.index << "/" << v.size;
    };
    if (v.index > 0) rejects(v.index - 1, v.size, leaf, p, root, "index - 1");
    rejects(v.index + 1, v.size, leaf, p, root, "index + 1");
    rejects(v.index ^ 2, v.size, leaf, p, root, "index ^ 2");
    rejects(v.index, v.size * 2, leaf, p, root, "size * 2");
    rejects(v.index, v.size / 2, leaf, p, root, "size / 2");
    rejects(v.index, v.size, LeafHash("WrongLeaf"), p, root, "wrong leaf");
    rejects(v.index, v.size, leaf, p, EmptyRootHash(), "empty root");
    rejects(v.index, v.size, leaf, p, some, "random root");
    std::vector<Hash> extra = p;
    extra.push_back(root);
    rejects(v.index, v.size, leaf, extra, root, "trailing element");
    std::vector<Hash> front = p;
    front.insert(front.begin(), root);
    rejects(v.index, v.size, leaf, front, root, "preceding element");
    for (size_t i = 0; i < p.size(); ++i) {
      std::vector<Hash> flipped = p;
      flipped[i] = Flip(flipped[i], 3);
      rejects(v.index, v.size, leaf, flipped, root, "flipped bit");
    }
    std::vector<Hash> missing(p.begin(), p.end() - 1);
    rejects(v.index, v.size, leaf, missing, root, "missing element");
    if (p.size() > 1) {
      std::vector<Hash> inserted = p;
      inserted.insert(inserted.begin() + 1, some);
      rejects(v.index, v.size, leaf, inserted, root, "inserted element");
    }
  }
}

TEST(AuditMerkleTest, CorruptedConsistencyProofsAreRejected) {
  for (const ConsistencyVector& v : ConsistencyVectors()) {
    const Hash r1 = Roots()[v.size1 - 1];
    const Hash r2 = Roots()[v.size2 - 1];
    const std::vector<Hash>& p = v.proof;
    auto rejects = [&](uint64_t s1, uint64_t s2, const Hash& a, const Hash& b,
                       const std::vector<Hash>& proof, const char* what) {
      EXPECT_FALSE(VerifyConsistency(s1, s2, a, b, proof).ok())
          << what << " " << v.size1 << "->" << v.size2;
    };
    rejects(v.size1 - 1, v.size2, r1, r2, p, "size1 - 1");
    rejects(v.size1 + 1, v.size2, r1, r2, p, "size1 + 1");
    rejects(v.size1 ^ 2, v.size2, r1, r2, p, "size1 ^ 2");
    rejects(v.size1, v.size2 * 2, r1, r2, p, "size2 * 2");
    rejects(v.size1, v.size2 / 2, r1, r2, p, "size2 / 2");
    rejects(v.size1, v.size2, LeafHash("WrongRoot"), r2, p, "wrong root1");
    rejects(v.size1, v.size2, r1, LeafHash("WrongRoot"), p, "wrong root2");
    rejects(v.size1, v.size2, r2, r1, p, "swapped roots");
    rejects(v.size1, v.size2, r1, r2, {}, "empty proof");
    for (const Hash& extra : {r1, r2}) {
      std::vector<Hash> trailing = p;
      trailing.push_back(extra);
      rejects(v.size1, v.size2, r1, r2, trailing, "trailing element");
      std::vector<Hash> preceding = p;
      preceding.insert(preceding.begin(), extra);
      rejects(v.size1, v.size2, r1, r2, preceding, "preceding element");
    }
    std::vector<Hash> truncated(p.begin(), p.end() - 1);
    rejects(v.size1, v.size2, r1, r2, truncated, "missing element");
    for (size_t i = 0; i < p.size(); ++i) {
      std::vector<Hash> flipped = p;
      flipped[i] = Flip(flipped[i], 4);
      rejects(v.size1, v.size2, r1, r2, flipped, "flipped bit");
    }
  }
}

TEST(AuditMerkleTest, EdgeCasesOfVerifiers) {
  const Hash a = LeafHash("a");
  const Hash b = LeafHash("b");
  EXPECT_TRUE(VerifyConsistency(0, 0, a, a, {}).ok());
  EXPECT_TRUE(VerifyConsistency(0, 1, a, b, {}).ok());
  EXPECT_FALSE(VerifyConsistency(1, 1, a, b, {}).ok());
  EXPECT_FALSE(VerifyConsistency(2, 1, a, b, {}).ok());
  EXPECT_FALSE(VerifyConsistency(1, 1, a, a, {a}).ok());
  EXPECT_FALSE(VerifyInclusion(0, 0, a, {}, a).ok());
  EXPECT_FALSE(VerifyInclusion(2, 1, a, {}, a).ok());
  EXPECT_TRUE(VerifyInclusion(0, 1, a, {}, a).ok());
}

// Every pair of sizes up to 64: stored-node proofs verify against the
// RFC's recursive MTH.
TEST(AuditMerkleTest, ExhaustiveAgainstReference) {
  MemoryTree tree;
  std::vector<Hash> leaves;
  for (int i = 0; i < 64; ++i) {
    std::string leaf = "leaf-" + std::to_string(i);
    tree.Add(leaf);
    leaves.push_back(LeafHash(leaf));
  }
  auto read = [&](const std::vector<NodeId>& ids) { return tree.Read(ids); };
  for (uint64_t n = 1; n <= 64; ++n) {
    const Hash root = ReferenceRoot(leaves, 0, n);
    ASSERT_EQ(*BuildRoot(n, read), root);
    for (uint64_t i = 0; i < n; ++i) {
      auto proof = BuildInclusionProof(i, n, read);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(VerifyInclusion(i, n, leaves[i], *proof, root).ok()) << i << "/" << n;
    }
    for (uint64_t m = 1; m <= n; ++m) {
      auto proof = BuildConsistencyProof(m, n, read);
      ASSERT_TRUE(proof.ok());
      ASSERT_TRUE(VerifyConsistency(m, n, ReferenceRoot(leaves, 0, m), root, *proof).ok())
          << m << "->" << n;
    }
  }
  auto parsed = Frontier::Parse(64, tree.frontier().Serialize());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->Root(), tree.frontier().Root());
  EXPECT_FALSE(Frontier::Parse(63, tree.frontier().Serialize()).ok());
}

}  // namespace
}  // namespace qunzu::audit
