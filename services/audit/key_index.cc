#include "services/audit/key_index.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace qunzu::audit {
namespace {

constexpr size_t kEntryBytes = 12;

uint64_t ReadBig(absl::string_view bytes, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

void WriteBig(std::string& out, uint64_t v, size_t n) {
  for (size_t i = n; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

uint64_t KeyHash(PostingKind kind, absl::string_view value) {
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&](unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;
  };
  mix(static_cast<unsigned char>(kind));
  for (char c : value) mix(static_cast<unsigned char>(c));
  return h;
}

void ForEachIndexedKey(const v1::AuditEvent& e,
                       const std::function<void(PostingKind, const std::string&)>& fn) {
  if (e.actor_account_id() != 0) fn(PostingKind::kActor, absl::StrCat(e.actor_account_id()));
  if (!e.request_id().empty()) fn(PostingKind::kRequestId, e.request_id());
  for (const v1::Subject& s : e.subjects()) {
    fn(PostingKind::kSubject, SubjectPostingValue(s.kind(), s.id()));
  }
}

std::string EncodeKeyEntries(std::vector<std::pair<uint64_t, uint32_t>> entries) {
  std::sort(entries.begin(), entries.end());
  entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  std::string out;
  out.reserve(entries.size() * kEntryBytes);
  for (const auto& [hash, offset] : entries) {
    WriteBig(out, hash, 8);
    WriteBig(out, offset, 4);
  }
  return out;
}

std::vector<uint32_t> FindKey(absl::string_view blob, uint64_t hash) {
  const size_t n = blob.size() / kEntryBytes;
  auto hash_at = [&](size_t i) { return ReadBig(blob.substr(i * kEntryBytes), 8); };
  size_t lo = 0;
  size_t hi = n;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (hash_at(mid) < hash) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  std::vector<uint32_t> out;
  for (size_t i = lo; i < n && hash_at(i) == hash; ++i) {
    out.push_back(static_cast<uint32_t>(ReadBig(blob.substr(i * kEntryBytes + 8), 4)));
  }
  return out;
}

}  // namespace qunzu::audit
