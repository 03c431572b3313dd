// Where the audit log's entries live in MariaDB (docs/audit-log-format.md).
//
// An append group writes its entries as bundles: one audit_bundles row per
// run of consecutive leaves (first_leaf, entry_count), holding the run's
// canonical entries (each as a 4-byte big-endian length and its bytes) and
// their leaf hashes (32 bytes each, in the same order), with the smallest
// and largest event time among them. Beside it, audit_sources maps runs
// of consecutive source ids of a service to the leaves they are at, for
// deduplication, and audit_postings lists, per bundle, every distinct
// service, action and principal in it, so a query reads only the bundles
// that may hold a match (actor, request_id and subject are indexed apart:
// key_index.h). All of them are partitioned by month on appended_at and
// dropped together by a purge.
//
// One row per bundle instead of one per entry (with five secondary
// indexes) is what lets a durable append keep up with the raw insert rate
// of the same bytes (docs/benchmarks.md).
#ifndef QUNZU_SERVICES_AUDIT_BUNDLE_STORE_H_
#define QUNZU_SERVICES_AUDIT_BUNDLE_STORE_H_

#include <cppconn/connection.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mysql.h"
#include "services/audit/merkle.h"

namespace qunzu::audit {

// Bytes of one leaf hash in audit_bundles.leaf_hashes.
inline constexpr size_t kHashSize = 32;

// The tables partitioned by month on appended_at, dropped together.
inline constexpr const char* kPartitionedTables[] = {"audit_bundles", "audit_sources",
                                                     "audit_postings", "audit_key_index"};

// What a posting's kind says its value is. Service, action and principal
// are posted per bundle (audit_postings); actor, request_id and subject are
// indexed per segment (audit_key_index, key_index.h).
enum class PostingKind : int {
  kService = 1,
  kAction = 2,
  kPrincipal = 3,
  kActor = 4,  // decimal account id
  kRequestId = 5,
  kSubject = 6,  // "<SubjectKind number>:<id>"
};
std::string SubjectPostingValue(int kind, uint64_t id);

// The values as ranges [first, last], in order: a value at most gap past
// the previous one extends its range (a few values read as one range).
std::vector<std::pair<uint64_t, uint64_t>> CloseRanges(const std::set<uint64_t>& values,
                                                       uint64_t gap);

// Appends one entry to a bundle's entries blob.
void AppendToBundle(std::string& blob, absl::string_view entry);
// The entries of a blob that must hold exactly count of them; nullopt when
// it does not (damaged or tampered).
std::optional<std::vector<absl::string_view>> SplitBundle(absl::string_view blob, uint64_t count);

// One audit_bundles row.
struct BundleRow {
  uint64_t first_leaf = 0;
  uint64_t count = 0;
  std::string entries;
  std::string leaf_hashes;
};

// Calls fn with the leaves of row in [from, to) (to 0: no bound), each with
// the hash stored beside it (none when the hashes blob has the wrong
// length). A row whose entries cannot be split is given as one leaf, its
// first, with empty bytes and no hash. fn returns false to stop; so does
// VisitBundle.
using LeafFn = std::function<bool(uint64_t leaf_index, const std::string& canonical_entry,
                                  const std::optional<Hash>& stored_hash)>;
bool VisitBundle(const BundleRow& row, uint64_t from, uint64_t to, const LeafFn& fn);

// The first leaf of the bundle holding leaf_index (or of the last bundle
// before it); leaf_index itself when there is none.
absl::StatusOr<uint64_t> BundleStartFor(sql::Connection& conn, uint64_t leaf_index);

// Reads audit_bundles rows matching where (SQL over the row's columns, with
// params), in first_leaf order, up to limit, calling fn for each; fn
// returns false to stop. Returns how many rows were read. Without
// with_entries the rows' entries are left empty (not read).
absl::StatusOr<size_t> ReadBundles(sql::Connection& conn, const std::string& where,
                                   std::vector<SqlValue> params, size_t limit,
                                   const std::function<bool(const BundleRow&)>& fn,
                                   bool with_entries = true);

// Calls fn, in first_leaf order, with every bundle holding one of leaves
// that also matches and_where (" AND ..." over the row's columns, with
// and_params); fn returns false to stop. Leaves close together are read as
// one range, from the bundle holding the first; bundles 32 at a time.
absl::Status ForEachBundleHolding(sql::Connection& conn, const std::set<uint64_t>& leaves,
                                  const std::string& and_where,
                                  const std::vector<SqlValue>& and_params, bool with_entries,
                                  const std::function<bool(const BundleRow&)>& fn);

// Every stored leaf with index in [from, to) (to 0: no bound), in order.
absl::Status ForEachStoredLeaf(sql::Connection& conn, uint64_t from, uint64_t to, const LeafFn& fn);

// The leaf hashes stored in bundles for the given leaves (those found).
absl::StatusOr<std::map<uint64_t, Hash>> ReadStoredLeafHashes(sql::Connection& conn,
                                                              const std::vector<uint64_t>& leaves);

// One stored entry's canonical bytes; nullopt when it is not stored.
absl::StatusOr<std::optional<std::string>> ReadStoredEntry(sql::Connection& conn,
                                                           uint64_t leaf_index);

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_BUNDLE_STORE_H_
