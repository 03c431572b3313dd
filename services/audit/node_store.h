// Where the audit tree's hashes live in MariaDB. A leaf hash is stored in
// its entry's bundle (audit_bundles.leaf_hashes); complete subtrees of
// kStoredLevel and above are stored in audit_nodes as they complete; a
// smaller subtree is recomputed from its at most 2^kStoredLevel - 1 leaf
// hashes when a proof needs it. A purge first copies the leaf hashes of the
// entries it drops into audit_nodes (level 0), so every proof and the
// frontier at the boundary stay computable.
#ifndef QUNZU_SERVICES_AUDIT_NODE_STORE_H_
#define QUNZU_SERVICES_AUDIT_NODE_STORE_H_

#include <cppconn/connection.h>

#include <vector>

#include "absl/status/statusor.h"
#include "services/audit/merkle.h"

namespace qunzu::audit {

// Subtrees of 2^4 = 16 leaves and up are stored.
inline constexpr int kStoredLevel = 4;

// The hashes of the given complete subtrees, in order; DATA_LOSS
// (MERKLE_NODE_MISSING) when one cannot be found or rebuilt.
absl::StatusOr<std::vector<Hash>> ReadTreeNodes(sql::Connection& conn,
                                                const std::vector<NodeId>& nodes);

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_NODE_STORE_H_
