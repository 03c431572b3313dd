// The canonical bytes of an audit entry: what its RFC 6962 leaf hash covers
// (SHA-256(0x00 || bytes)) and what the log stores as the entry's truth.
// Every other column of a stored entry is a derived index. Also the
// canonical bytes a checkpoint signature covers. The same specification is
// in docs/audit-log-format.md.
//
// Entry, format version 1. Integers are big-endian and fixed width; a
// string is u32 length then that many bytes of UTF-8; a time is i64 seconds
// since the Unix epoch then u32 nanoseconds (0 <= nanos < 1e9), both 0 for
// an unset time.
//
//   u8     0x01 (format version)
//   string service
//   u64    source_id
//   time   event time (at the source)
//   string action
//   string method
//   string principal
//   u32    role (qunzu.common.v1.Role number)
//   u64    actor_account_id
//   u32    number of subjects, then for each, in the order given:
//            u32 kind (SubjectKind number), u64 id
//   string client_ip
//   u32    result_code (an int32, two's complement)
//   string result_reason
//   string request_id
//   u32    number of details, then for each, keys in ascending byte order:
//            string key, string value
//   time   appended_at (when audit committed it; sets the monthly partition)
//
// Nothing may follow. Decoding is strict: a different version, a bad
// length, invalid UTF-8, unsorted or repeated detail keys or trailing bytes
// make the bytes invalid.
//
// Checkpoint (the message an Ed25519 signature covers), ASCII text:
//
//   qunzu.audit.v1.checkpoint\n
//   <tree_size, decimal>\n
//   <root hash, 64 lower-case hex digits>\n
//   <time, decimal microseconds since the Unix epoch>\n
//   <key_id, 64 lower-case hex digits: SHA-256 of the raw public key>\n
#ifndef QUNZU_SERVICES_AUDIT_ENTRY_CODEC_H_
#define QUNZU_SERVICES_AUDIT_ENTRY_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "qunzu/audit/v1/audit.pb.h"

namespace qunzu::audit {

inline constexpr uint8_t kEntryFormatVersion = 1;

// Encodes event and appended_at canonically (details sorted by key).
std::string EncodeEntry(const v1::AuditEvent& event, absl::Time appended_at);
// The same in two parts: EncodeEntry(e, t) == EncodeEntryBody(e) +
// EncodeAppendedAt(t), so the body can be encoded before the time is known.
std::string EncodeEntryBody(const v1::AuditEvent& event);
std::string EncodeAppendedAt(absl::Time appended_at);

// The inverse; INVALID_ARGUMENT (ENTRY_ENCODING_INVALID) on any deviation.
struct DecodedEntry {
  v1::AuditEvent event;
  absl::Time appended_at;
};
absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view bytes);

// The message a checkpoint's signature covers.
std::string CheckpointMessage(uint64_t tree_size, absl::string_view root_hash, int64_t time_micros,
                              absl::string_view key_id);

// Whether text is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
bool IsValidUtf8(absl::string_view text);

}  // namespace qunzu::audit

#endif  // QUNZU_SERVICES_AUDIT_ENTRY_CODEC_H_
