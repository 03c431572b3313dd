#include "services/audit/entry_codec.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace qunzu::audit {
namespace {

void PutU32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void PutU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}
void PutString(std::string* out, absl::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s.data(), s.size());
}
void PutTime(std::string* out, int64_t seconds, int32_t nanos) {
  PutU64(out, static_cast<uint64_t>(seconds));
  PutU32(out, static_cast<uint32_t>(nanos));
}

absl::Status Invalid(absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, "ENTRY_ENCODING_INVALID",
                   absl::StrCat("entry bytes are not canonical: ", why));
}

class Reader {
 public:
  explicit Reader(absl::string_view bytes) : rest_(bytes) {}
  absl::StatusOr<uint8_t> U8() {
    if (rest_.empty()) return Invalid("truncated");
    uint8_t v = static_cast<uint8_t>(rest_[0]);
    rest_.remove_prefix(1);
    return v;
  }
  absl::StatusOr<uint32_t> U32() {
    if (rest_.size() < 4) return Invalid("truncated");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(rest_[i]);
    rest_.remove_prefix(4);
    return v;
  }
  absl::StatusOr<uint64_t> U64() {
    if (rest_.size() < 8) return Invalid("truncated");
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(rest_[i]);
    rest_.remove_prefix(8);
    return v;
  }
  absl::StatusOr<std::string> String() {
    ASSIGN_OR_RETURN(uint32_t size, U32());
    if (rest_.size() < size) return Invalid("string past the end");
    std::string v(rest_.substr(0, size));
    rest_.remove_prefix(size);
    if (!IsValidUtf8(v)) return Invalid("invalid UTF-8");
    return v;
  }
  absl::Status Time(google::protobuf::Timestamp* out) {
    ASSIGN_OR_RETURN(uint64_t seconds, U64());
    ASSIGN_OR_RETURN(uint32_t nanos, U32());
    if (nanos >= 1000000000u) return Invalid("nanoseconds out of range");
    out->set_seconds(static_cast<int64_t>(seconds));
    out->set_nanos(static_cast<int32_t>(nanos));
    return absl::OkStatus();
  }
  bool done() const { return rest_.empty(); }

 private:
  absl::string_view rest_;
};

}  // namespace

bool IsValidUtf8(absl::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string EncodeEntryBody(const v1::AuditEvent& event) {
  std::string out;
  out.reserve(256);
  out.push_back(static_cast<char>(kEntryFormatVersion));
  PutString(&out, event.service());
  PutU64(&out, event.source_id());
  PutTime(&out, event.time().seconds(), event.time().nanos());
  PutString(&out, event.action());
  PutString(&out, event.method());
  PutString(&out, event.principal());
  PutU32(&out, static_cast<uint32_t>(event.role()));
  PutU64(&out, event.actor_account_id());
  PutU32(&out, static_cast<uint32_t>(event.subjects_size()));
  for (const v1::Subject& subject : event.subjects()) {
    PutU32(&out, static_cast<uint32_t>(subject.kind()));
    PutU64(&out, subject.id());
  }
  PutString(&out, event.client_ip());
  PutU32(&out, static_cast<uint32_t>(event.result_code()));
  PutString(&out, event.result_reason());
  PutString(&out, event.request_id());
  std::vector<std::pair<std::string, std::string>> details(event.details().begin(),
                                                           event.details().end());
  std::sort(details.begin(), details.end());
  PutU32(&out, static_cast<uint32_t>(details.size()));
  for (const auto& [key, value] : details) {
    PutString(&out, key);
    PutString(&out, value);
  }
  return out;
}

std::string EncodeAppendedAt(absl::Time appended_at) {
  std::string out;
  const int64_t micros = absl::ToUnixMicros(appended_at);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  PutTime(&out, seconds, static_cast<int32_t>(rem * 1000));
  return out;
}

std::string EncodeEntry(const v1::AuditEvent& event, absl::Time appended_at) {
  return EncodeEntryBody(event) + EncodeAppendedAt(appended_at);
}

absl::StatusOr<DecodedEntry> DecodeEntry(absl::string_view bytes) {
  Reader r(bytes);
  DecodedEntry out;
  v1::AuditEvent& e = out.event;
  ASSIGN_OR_RETURN(uint8_t version, r.U8());
  if (version != kEntryFormatVersion) return Invalid(absl::StrCat("unknown version ", version));
  ASSIGN_OR_RETURN(*e.mutable_service(), r.String());
  ASSIGN_OR_RETURN(uint64_t source_id, r.U64());
  e.set_source_id(source_id);
  RETURN_IF_ERROR(r.Time(e.mutable_time()));
  if (e.time().seconds() == 0 && e.time().nanos() == 0) e.clear_time();
  ASSIGN_OR_RETURN(*e.mutable_action(), r.String());
  ASSIGN_OR_RETURN(*e.mutable_method(), r.String());
  ASSIGN_OR_RETURN(*e.mutable_principal(), r.String());
  ASSIGN_OR_RETURN(uint32_t role, r.U32());
  e.set_role(static_cast<common::v1::Role>(role));
  ASSIGN_OR_RETURN(uint64_t actor, r.U64());
  e.set_actor_account_id(actor);
  ASSIGN_OR_RETURN(uint32_t subjects, r.U32());
  if (subjects > 10000) return Invalid("too many subjects");
  for (uint32_t i = 0; i < subjects; ++i) {
    v1::Subject* s = e.add_subjects();
    ASSIGN_OR_RETURN(uint32_t kind, r.U32());
    s->set_kind(static_cast<v1::SubjectKind>(kind));
    ASSIGN_OR_RETURN(uint64_t id, r.U64());
    s->set_id(id);
  }
  ASSIGN_OR_RETURN(*e.mutable_client_ip(), r.String());
  ASSIGN_OR_RETURN(uint32_t code, r.U32());
  e.set_result_code(static_cast<int32_t>(code));
  ASSIGN_OR_RETURN(*e.mutable_result_reason(), r.String());
  ASSIGN_OR_RETURN(*e.mutable_request_id(), r.String());
  ASSIGN_OR_RETURN(uint32_t details, r.U32());
  if (details > 10000) return Invalid("too many details");
  std::string previous;
  for (uint32_t i = 0; i < details; ++i) {
    ASSIGN_OR_RETURN(std::string key, r.String());
    ASSIGN_OR_RETURN(std::string value, r.String());
    if (i > 0 && key <= previous) return Invalid("detail keys not in ascending order");
    previous = key;
    (*e.mutable_details())[key] = std::move(value);
  }
  google::protobuf::Timestamp appended;
  RETURN_IF_ERROR(r.Time(&appended));
  out.appended_at = absl::FromUnixSeconds(appended.seconds()) + absl::Nanoseconds(appended.nanos());
  if (!r.done()) return Invalid("trailing bytes");
  return out;
}

std::string CheckpointMessage(uint64_t tree_size, absl::string_view root_hash, int64_t time_micros,
                              absl::string_view key_id) {
  return absl::StrCat("qunzu.audit.v1.checkpoint\n", tree_size, "\n",
                      absl::BytesToHexString(root_hash), "\n", time_micros, "\n", key_id, "\n");
}

}  // namespace qunzu::audit
