#include "services/audit/bundle_store.h"

#include <cppconn/resultset.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace qunzu::audit {
namespace {

// Bundles read per query when walking the log, and when reading those
// holding given leaves.
constexpr size_t kWalkBundles = 64;
constexpr size_t kHoldingBundles = 32;

}  // namespace

std::string SubjectPostingValue(int kind, uint64_t id) { return absl::StrCat(kind, ":", id); }

std::vector<std::pair<uint64_t, uint64_t>> CloseRanges(const std::set<uint64_t>& values,
                                                       uint64_t gap) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (uint64_t v : values) {
    if (!ranges.empty() && v - ranges.back().second <= gap) {
      ranges.back().second = v;
    } else {
      ranges.emplace_back(v, v);
    }
  }
  return ranges;
}

void AppendToBundle(std::string& blob, absl::string_view entry) {
  const auto n = static_cast<uint32_t>(entry.size());
  blob.push_back(static_cast<char>(n >> 24));
  blob.push_back(static_cast<char>((n >> 16) & 0xff));
  blob.push_back(static_cast<char>((n >> 8) & 0xff));
  blob.push_back(static_cast<char>(n & 0xff));
  blob.append(entry.data(), entry.size());
}

std::optional<std::vector<absl::string_view>> SplitBundle(absl::string_view blob, uint64_t count) {
  std::vector<absl::string_view> out;
  out.reserve(static_cast<size_t>(std::min<uint64_t>(count, 1 << 20)));
  size_t at = 0;
  while (at < blob.size()) {
    if (blob.size() - at < 4 || out.size() == count) return std::nullopt;
    const auto* p = reinterpret_cast<const unsigned char*>(blob.data() + at);
    const size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
    at += 4;
    if (blob.size() - at < n) return std::nullopt;
    out.push_back(blob.substr(at, n));
    at += n;
  }
  if (out.size() != count) return std::nullopt;
  return out;
}

bool VisitBundle(const BundleRow& row, uint64_t from, uint64_t to, const LeafFn& fn) {
  std::optional<std::vector<absl::string_view>> entries = SplitBundle(row.entries, row.count);
  if (!entries) {
    if (row.first_leaf < from || (to != 0 && row.first_leaf >= to)) return true;
    return fn(row.first_leaf, std::string(), std::nullopt);
  }
  const bool hashes_fit = row.leaf_hashes.size() == row.count * kHashSize;
  for (size_t i = 0; i < entries->size(); ++i) {
    const uint64_t index = row.first_leaf + i;
    if (index < from) continue;
    if (to != 0 && index >= to) break;
    std::optional<Hash> stored;
    if (hashes_fit) {
      absl::StatusOr<Hash> h = HashFromBytes(row.leaf_hashes.substr(i * kHashSize, kHashSize));
      if (h.ok()) stored = *h;
    }
    if (!fn(index, std::string((*entries)[i]), stored)) return false;
  }
  return true;
}

absl::StatusOr<uint64_t> BundleStartFor(sql::Connection& conn, uint64_t leaf_index) {
  uint64_t start = leaf_index;
  RETURN_IF_ERROR(Query(conn, "SELECT MAX(first_leaf) FROM audit_bundles WHERE first_leaf <= ?",
                        {leaf_index}, [&](const sql::ResultSet& row) {
                          if (!row.isNull(1)) start = row.getUInt64(1);
                          return absl::OkStatus();
                        }));
  return start;
}

absl::StatusOr<size_t> ReadBundles(sql::Connection& conn, const std::string& where,
                                   std::vector<SqlValue> params, size_t limit,
                                   const std::function<bool(const BundleRow&)>& fn,
                                   bool with_entries) {
  params.emplace_back(limit);
  size_t rows = 0;
  bool going = true;
  RETURN_IF_ERROR(
      Query(conn,
            absl::StrCat("SELECT first_leaf, entry_count, ", with_entries ? "entries" : "''",
                         ", leaf_hashes FROM audit_bundles WHERE ", where,
                         " ORDER BY first_leaf LIMIT ?"),
            params, [&](const sql::ResultSet& row) {
              if (!going) return absl::OkStatus();
              ++rows;
              BundleRow b;
              b.first_leaf = row.getUInt64(1);
              b.count = row.getUInt64(2);
              b.entries = std::string(row.getString(3));
              b.leaf_hashes = std::string(row.getString(4));
              going = fn(b);
              return absl::OkStatus();
            }));
  return rows;
}

absl::Status ForEachStoredLeaf(sql::Connection& conn, uint64_t from, uint64_t to,
                               const LeafFn& fn) {
  ASSIGN_OR_RETURN(uint64_t next, BundleStartFor(conn, from));
  bool going = true;
  while (going) {
    std::vector<SqlValue> params = {next};
    std::string where = "first_leaf >= ?";
    if (to != 0) {
      where += " AND first_leaf < ?";
      params.emplace_back(to);
    }
    ASSIGN_OR_RETURN(size_t rows, ReadBundles(conn, where, std::move(params), kWalkBundles,
                                              [&](const BundleRow& b) {
                                                next = b.first_leaf + 1;
                                                going = VisitBundle(b, from, to, fn);
                                                return going;
                                              }));
    if (rows < kWalkBundles) break;
  }
  return absl::OkStatus();
}

absl::Status ForEachBundleHolding(sql::Connection& conn, const std::set<uint64_t>& leaves,
                                  const std::string& and_where,
                                  const std::vector<SqlValue>& and_params, bool with_entries,
                                  const std::function<bool(const BundleRow&)>& fn) {
  constexpr uint64_t kNear = 64;
  const std::vector<std::pair<uint64_t, uint64_t>> ranges = CloseRanges(leaves, kNear);
  bool going = true;
  for (size_t begin = 0; going && begin < ranges.size(); begin += 200) {
    const size_t end = std::min(ranges.size(), begin + 200);
    // Where each range's first bundle starts, in one statement; each part
    // names its range (UNION ALL promises no order).
    std::vector<std::string> starts;
    for (size_t i = begin; i < end; ++i) {
      starts.push_back(absl::StrCat(
          "(SELECT ", i, ", COALESCE(MAX(first_leaf), 0) FROM audit_bundles WHERE first_leaf <= ",
          ranges[i].first, ")"));
    }
    std::vector<std::string> where(end - begin);
    RETURN_IF_ERROR(
        Query(conn, absl::StrJoin(starts, " UNION ALL "), {}, [&](const sql::ResultSet& row) {
          const uint64_t i = row.getUInt64(1);
          if (i < begin || i >= end) {
            return MakeError(absl::StatusCode::kInternal, "AUDIT_ROW_INVALID",
                             "a bundle start came back for no range asked");
          }
          where[i - begin] =
              absl::StrCat("first_leaf BETWEEN ", row.getUInt64(2), " AND ", ranges[i].second);
          return absl::OkStatus();
        }));
    const std::string in_ranges = absl::StrCat("(", absl::StrJoin(where, " OR "), ")", and_where);
    uint64_t cursor = 0;
    for (size_t read = kHoldingBundles; going && read == kHoldingBundles;) {
      std::vector<SqlValue> params = {cursor};
      params.insert(params.end(), and_params.begin(), and_params.end());
      ASSIGN_OR_RETURN(
          read, ReadBundles(
                    conn, "first_leaf >= ? AND " + in_ranges, std::move(params), kHoldingBundles,
                    [&](const BundleRow& b) {
                      cursor = b.first_leaf + 1;
                      going = fn(b);
                      return going;
                    },
                    with_entries));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<uint64_t, Hash>> ReadStoredLeafHashes(sql::Connection& conn,
                                                              const std::vector<uint64_t>& leaves) {
  std::map<uint64_t, Hash> out;
  const std::set<uint64_t> wanted(leaves.begin(), leaves.end());
  RETURN_IF_ERROR(ForEachBundleHolding(conn, wanted, "", {}, false, [&](const BundleRow& b) {
    if (b.leaf_hashes.size() != b.count * kHashSize) return true;
    for (auto it = wanted.lower_bound(b.first_leaf);
         it != wanted.end() && *it - b.first_leaf < b.count; ++it) {
      absl::StatusOr<Hash> h =
          HashFromBytes(b.leaf_hashes.substr((*it - b.first_leaf) * kHashSize, kHashSize));
      if (h.ok()) out[*it] = *h;
    }
    return true;
  }));
  return out;
}

absl::StatusOr<std::optional<std::string>> ReadStoredEntry(sql::Connection& conn,
                                                           uint64_t leaf_index) {
  std::optional<std::string> out;
  RETURN_IF_ERROR(
      ForEachStoredLeaf(conn, leaf_index, leaf_index + 1,
                        [&](uint64_t index, const std::string& bytes, const std::optional<Hash>&) {
                          if (index == leaf_index) out = bytes;
                          return false;
                        }));
  return out;
}

}  // namespace qunzu::audit
