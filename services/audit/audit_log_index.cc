// AuditLog::IndexKeys: the background pass that indexes complete segments
// of leaves into audit_key_index (key_index.h).

#include <cppconn/resultset.h>

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mysql.h"
#include "common/status.h"
#include "services/audit/audit_log.h"
#include "services/audit/bundle_store.h"
#include "services/audit/entry_codec.h"
#include "services/audit/key_index.h"

namespace qunzu::audit {

absl::StatusOr<uint64_t> ReadIndexedUntil(sql::Connection& conn, bool for_update) {
  uint64_t until = 0;
  RETURN_IF_ERROR(qunzu::Query(conn,
                               absl::StrCat("SELECT indexed_until FROM audit_index_state WHERE "
                                            "id = 1",
                                            for_update ? " FOR UPDATE" : ""),
                               {}, [&](const sql::ResultSet& row) {
                                 until = row.getUInt64(1);
                                 return absl::OkStatus();
                               }));
  return until;
}

uint64_t AuditLog::FirstUnindexed(const Head& head, uint64_t indexed_until) const {
  // Purged leaves are not indexed: the segment holding the oldest kept
  // leaf is the first there is to index.
  const uint64_t size = options_.index_segment_leaves;
  return std::max(indexed_until, head.oldest_leaf_index / size * size);
}

absl::StatusOr<uint64_t> AuditLog::IndexKeys(uint64_t max_segments) {
  const uint64_t size = options_.index_segment_leaves;
  uint64_t segments = 0;
  uint64_t lag = 0;
  for (bool more = true; more && segments < max_segments;) {
    more = false;
    // One segment per transaction; the state row's lock makes one replica
    // index a segment, the others find it done.
    absl::Status status = WithTransaction(pool_, [&](sql::Connection& conn) -> absl::Status {
      ASSIGN_OR_RETURN(uint64_t indexed, ReadIndexedUntil(conn, true));
      ASSIGN_OR_RETURN(Head head, LoadHead(conn, false));
      const uint64_t from = FirstUnindexed(head, indexed);
      lag = head.tree_size - std::min(head.tree_size, from);
      if (from + size > head.tree_size) return absl::OkStatus();
      std::map<std::pair<int, int>, std::vector<std::pair<uint64_t, uint32_t>>> rows;
      absl::Time last = absl::InfinitePast();
      RETURN_IF_ERROR(ForEachStoredLeaf(
          conn, from, from + size,
          [&](uint64_t index, const std::string& bytes, const std::optional<Hash>&) {
            // A damaged entry is the verifier's to report, not the index's.
            absl::StatusOr<DecodedEntry> d = DecodeEntry(bytes);
            if (!d.ok()) return true;
            last = std::max(last, d->appended_at);
            ForEachIndexedKey(d->event, [&](PostingKind kind, const std::string& value) {
              const uint64_t h = KeyHash(kind, value);
              rows[{static_cast<int>(kind), KeyBucket(h)}].emplace_back(
                  h, static_cast<uint32_t>(index - from));
            });
            return true;
          }));
      std::vector<std::string> values;
      std::vector<SqlValue> params;
      auto flush = [&]() -> absl::Status {
        if (values.empty()) return absl::OkStatus();
        RETURN_IF_ERROR(Execute(conn,
                                "INSERT INTO audit_key_index (kind, bucket, segment, appended_at, "
                                "hashes) VALUES " +
                                    absl::StrJoin(values, ","),
                                params)
                            .status());
        values.clear();
        params.clear();
        return absl::OkStatus();
      };
      for (auto& [key, entries] : rows) {
        values.emplace_back("(?, ?, ?, ?, ?)");
        params.insert(params.end(),
                      {key.first, key.second, from, last, EncodeKeyEntries(std::move(entries))});
        if (values.size() == 500) RETURN_IF_ERROR(flush());
      }
      RETURN_IF_ERROR(flush());
      RETURN_IF_ERROR(Execute(conn, "UPDATE audit_index_state SET indexed_until = ? WHERE id = 1",
                              {from + size})
                          .status());
      lag -= size;
      ++segments;
      more = true;
      return absl::OkStatus();
    });
    RETURN_IF_ERROR(status);
  }
  metrics_.index_lag->Set(static_cast<double>(lag));
  return segments;
}

}  // namespace qunzu::audit
