#include "services/audit/node_store.h"

#include <cppconn/resultset.h>

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/bundle_store.h"

namespace qunzu::audit {
namespace {

absl::Status Missing(const NodeId& id) {
  return MakeError(
      absl::StatusCode::kDataLoss, "MERKLE_NODE_MISSING",
      absl::StrCat("tree node level ", id.level, " index ", id.index, " is missing from storage"));
}

absl::Status ReadIn(sql::Connection& conn, const std::string& prefix,
                    const std::vector<uint64_t>& ids,
                    const std::function<absl::Status(const sql::ResultSet&)>& on_row) {
  for (size_t begin = 0; begin < ids.size(); begin += 500) {
    const size_t end = std::min(ids.size(), begin + 500);
    std::vector<SqlValue> params;
    for (size_t i = begin; i < end; ++i) params.emplace_back(ids[i]);
    RETURN_IF_ERROR(Query(
        conn,
        prefix + " IN (" + absl::StrJoin(std::vector<std::string>(end - begin, "?"), ",") + ")",
        params, on_row));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<Hash>> ReadTreeNodes(sql::Connection& conn,
                                                const std::vector<NodeId>& nodes) {
  std::set<uint64_t> leaves;
  std::map<int, std::set<uint64_t>> stored;
  for (const NodeId& id : nodes) {
    if (id.level >= kStoredLevel) {
      stored[id.level].insert(id.index);
    } else {
      const uint64_t first = id.index << id.level;
      for (uint64_t i = 0; i < (uint64_t{1} << id.level); ++i) leaves.insert(first + i);
    }
  }
  std::map<NodeId, Hash> found;
  auto keep = [&](int level, const sql::ResultSet& row) -> absl::Status {
    ASSIGN_OR_RETURN(Hash h, HashFromBytes(std::string(row.getString(2))));
    found[{level, row.getUInt64(1)}] = h;
    return absl::OkStatus();
  };
  for (const auto& [level, ids] : stored) {
    const int l = level;
    RETURN_IF_ERROR(ReadIn(conn,
                           absl::StrCat("SELECT node_index, hash FROM audit_nodes WHERE level = ",
                                        l, " AND node_index"),
                           std::vector<uint64_t>(ids.begin(), ids.end()),
                           [&](const sql::ResultSet& row) { return keep(l, row); }));
  }
  if (!leaves.empty()) {
    const std::vector<uint64_t> ids(leaves.begin(), leaves.end());
    ASSIGN_OR_RETURN(auto stored_leaves, ReadStoredLeafHashes(conn, ids));
    for (const auto& [index, hash] : stored_leaves) found[{0, index}] = hash;
    std::vector<uint64_t> purged;
    for (uint64_t i : ids) {
      if (found.count({0, i}) == 0) purged.push_back(i);
    }
    if (!purged.empty()) {
      RETURN_IF_ERROR(
          ReadIn(conn, "SELECT node_index, hash FROM audit_nodes WHERE level = 0 AND node_index",
                 purged, [&](const sql::ResultSet& row) { return keep(0, row); }));
    }
  }
  std::vector<Hash> out;
  out.reserve(nodes.size());
  for (const NodeId& id : nodes) {
    if (id.level >= kStoredLevel) {
      auto it = found.find(id);
      if (it == found.end()) return Missing(id);
      out.push_back(it->second);
      continue;
    }
    // Rebuild a small perfect subtree from its leaves.
    std::vector<Hash> level;
    const uint64_t first = id.index << id.level;
    for (uint64_t i = 0; i < (uint64_t{1} << id.level); ++i) {
      auto it = found.find({0, first + i});
      if (it == found.end()) return Missing({0, first + i});
      level.push_back(it->second);
    }
    while (level.size() > 1) {
      std::vector<Hash> up;
      for (size_t i = 0; i + 1 < level.size(); i += 2)
        up.push_back(NodeHash(level[i], level[i + 1]));
      level = std::move(up);
    }
    out.push_back(level.front());
  }
  return out;
}

}  // namespace qunzu::audit
