// The audit log's index of high-cardinality keys (docs/audit-log-format.md):
// actor account id, request_id and subject, which an append batch mostly
// carries once per entry. Posting each per bundle, as service, action and
// principal are, costs a row per entry and key on the append path (three
// rows for one entry's bytes); instead a background pass indexes the log
// in segments of consecutive leaves, once a segment is complete, into one
// audit_key_index row per (kind, bucket, segment): the sorted 64-bit hashes
// of the segment's keys falling in that bucket, each with the leaf's offset
// in the segment. A lookup reads one small row per segment and checks the
// entries it points at; leaves past the indexed segments are scanned.
#ifndef QUNZU_SERVICES_AUDIT_KEY_INDEX_H_
#define QUNZU_SERVICES_AUDIT_KEY_INDEX_H_

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "qunzu/audit/v1/audit.pb.h"
#include "services/audit/bundle_store.h"

namespace qunzu::audit {

// Hashes fall in 2^8 buckets, by their top byte.
inline constexpr int kKeyBuckets = 256;

// FNV-1a (64 bits) over the kind's byte and the value: stable across
// builds and machines, as stored hashes must be.
uint64_t KeyHash(PostingKind kind, absl::string_view value);
inline int KeyBucket(uint64_t hash) { return static_cast<int>(hash >> 56); }

// Calls fn with every high-cardinality key of e (actor if non-zero,
// request_id if non-empty, each subject).
void ForEachIndexedKey(const v1::AuditEvent& e,
                       const std::function<void(PostingKind, const std::string&)>& fn);

// A row's blob: (hash, offset) pairs sorted by hash, then offset, each 12
// bytes big-endian.
std::string EncodeKeyEntries(std::vector<std::pair<uint64_t, uint32_t>> entries);
// The offsets stored with hash in blob, ascending; a blob of the wrong
// length yields none of its tail.
std::vector<uint32_t> FindKey(absl::string_view blob, uint64_t hash);

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_KEY_INDEX_H_
