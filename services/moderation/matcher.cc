#include "services/moderation/matcher.h"

#include <hs.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"

namespace qunzu::moderation {
namespace {

// A compiled regex set larger than this is a pathological pattern.
constexpr size_t kMaxRegexDatabaseBytes = 2 << 20;

constexpr unsigned kRegexFlags = HS_FLAG_UTF8 | HS_FLAG_UCP | HS_FLAG_DOTALL | HS_FLAG_SOM_LEFTMOST;

// Counted repetitions are what make a regex slow to compile (each bound
// unrolls into automaton states); this refuses large ones before compiling.
constexpr int kMaxRepeatBound = 100;
constexpr int kMaxRepeatTotal = 150;

std::string CheckRepeats(absl::string_view pattern) {
  int total = 0;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '\\') {
      ++i;
      continue;
    }
    if (pattern[i] != '{') continue;
    int bound = 0;
    bool digits = false;
    for (size_t j = i + 1; j < pattern.size() && pattern[j] != '}'; ++j) {
      if (pattern[j] >= '0' && pattern[j] <= '9') {
        bound = std::min(bound * 10 + (pattern[j] - '0'), 1000000);
        digits = true;
      } else if (pattern[j] == ',') {
        total += bound;
        bound = 0;
      } else {
        break;
      }
      if (bound > kMaxRepeatBound) {
        return absl::StrCat("a counted repetition above ", kMaxRepeatBound, " (pathological)");
      }
    }
    if (digits) total += bound;
    if (total > kMaxRepeatTotal) {
      return absl::StrCat("counted repetitions adding up to more than ", kMaxRepeatTotal,
                          " (pathological)");
    }
  }
  return "";
}

// The first bytes of a serialised rule set, and part of its cache key:
// change it whenever what the compile reads or the layout changes.
constexpr absl::string_view kSerializedMagic = "qunzu-compiled-rules-2\n";

void AppendNumber(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

bool TakeNumber(absl::string_view& in, uint64_t* value) {
  if (in.size() < 8) return false;
  *value = 0;
  for (int i = 0; i < 8; ++i) {
    *value |= static_cast<uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  in.remove_prefix(8);
  return true;
}

std::string Sha256(absl::string_view bytes) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest.data()), length);
}

absl::Status RegexRejected(size_t rule_index, absl::string_view why) {
  return MakeError(absl::StatusCode::kInvalidArgument, "REGEX_REJECTED",
                   absl::StrCat("regex of rule ", rule_index, " rejected: ", why),
                   {{"rule_index", absl::StrCat(rule_index)}, {"why", std::string(why)}});
}

}  // namespace

CompiledRules::~CompiledRules() {
  if (prototype_ != nullptr) hs_free_scratch(prototype_);
  FreeDatabase();
}

hs_scratch_t* CompiledRules::ThreadScratch() const {
  struct Held {
    uint64_t serial = 0;
    hs_scratch_t* scratch = nullptr;
    ~Held() {
      if (scratch != nullptr) hs_free_scratch(scratch);
    }
  };
  thread_local Held held;
  if (held.serial == serial_ && held.scratch != nullptr) return held.scratch;
  if (held.scratch != nullptr) hs_free_scratch(held.scratch);
  held.scratch = nullptr;
  held.serial = 0;
  hs_scratch_t* scratch = nullptr;
  absl::MutexLock lock(&prototype_mu_);
  if (hs_clone_scratch(prototype_, &scratch) != HS_SUCCESS) return nullptr;
  held.scratch = scratch;
  held.serial = serial_;
  return scratch;
}

absl::Status CompiledRules::CheckRegex(absl::string_view pattern, size_t rule_index) {
  if (pattern.empty()) return RegexRejected(rule_index, "empty");
  if (pattern.size() > kMaxRegexLength) {
    return RegexRejected(rule_index, absl::StrCat("longer than ", kMaxRegexLength, " bytes"));
  }
  if (std::string why = CheckRepeats(pattern); !why.empty()) return RegexRejected(rule_index, why);
  const std::string expression(pattern);
  hs_expr_info_t* info = nullptr;
  hs_compile_error_t* error = nullptr;
  if (hs_expression_info(expression.c_str(), kRegexFlags, &info, &error) != HS_SUCCESS) {
    std::string why = error != nullptr ? error->message : "cannot be compiled";
    hs_free_compile_error(error);
    return RegexRejected(rule_index, why);
  }
  const bool matches_empty = info->min_width == 0;
  free(info);  // NOLINT(cppcoreguidelines-no-malloc): allocated by Vectorscan with malloc
  if (matches_empty) return RegexRejected(rule_index, "can match the empty string");
  hs_database_t* db = nullptr;
  if (hs_compile(expression.c_str(), kRegexFlags, HS_MODE_BLOCK, nullptr, &db, &error) !=
      HS_SUCCESS) {
    std::string why = error != nullptr ? error->message : "cannot be compiled";
    hs_free_compile_error(error);
    return RegexRejected(rule_index, why);
  }
  size_t size = 0;
  hs_database_size(db, &size);
  hs_free_database(db);
  if (size > kMaxRegexDatabaseBytes) {
    return RegexRejected(rule_index, absl::StrCat("compiles to ", size, " bytes (pathological)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const CompiledRules>> CompiledRules::Compile(
    std::vector<Rule> rules, CompiledRulesCache* cache) {
  std::shared_ptr<CompiledRules> compiled(new CompiledRules());
  compiled->rules_ = std::move(rules);
  RETURN_IF_ERROR(compiled->Build(cache));
  return std::shared_ptr<const CompiledRules>(std::move(compiled));
}

std::string CompiledRules::CacheKey(const std::vector<Literal>& literals) const {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                  &EVP_MD_CTX_free);
  EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr);
  auto add = [&](absl::string_view bytes) {
    EVP_DigestUpdate(context.get(), bytes.data(), bytes.size());
  };
  auto add_number = [&](uint64_t value) {
    std::string bytes;
    AppendNumber(bytes, value);
    add(bytes);
  };
  // What the compile reads: our format, Vectorscan's version and flags,
  // every literal (its id is its position) and every regex.
  add(kSerializedMagic);
  add(hs_version());
  // The host the databases are compiled for: replicas on other CPUs keep
  // their own entries.
  hs_platform_info_t platform{};
  if (hs_populate_platform(&platform) == HS_SUCCESS) {
    add_number(platform.tune);
    add_number(platform.cpu_features);
  }
  add_number(kRegexFlags);
  add_number(literals.size());
  for (const Literal& literal : literals) {
    add_number(literal.needs_runs ? 1 : 0);
    add_number(literal.text.size());
    add(literal.text);
  }
  add_number(regex_rules_.size());
  for (uint32_t rule_index : regex_rules_) {
    add_number(rules_[rule_index].pattern.size());
    add(rules_[rule_index].pattern);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(context.get(), digest.data(), &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest.data()), length));
}

absl::StatusOr<std::string> CompiledRules::Serialize() const {
  std::string out(kSerializedMagic);
  out += cache_key_;  // the bytes say which rules they are
  char* bytes = nullptr;
  size_t length = 0;
  if (regex_db_ != nullptr && hs_serialize_database(regex_db_, &bytes, &length) != HS_SUCCESS) {
    return MakeError(absl::StatusCode::kInternal, "RULE_SET_SERIALIZE_FAILED",
                     "hs_serialize_database failed");
  }
  AppendNumber(out, length);
  out.append(bytes, length);
  free(bytes);  // NOLINT(cppcoreguidelines-no-malloc): allocated by Vectorscan with malloc
  // A digest of the whole, so that damaged bytes are never deserialised.
  out += Sha256(out);
  return out;
}

bool CompiledRules::Deserialize(const std::string& bytes) {
  if (DeserializeDatabases(bytes)) return true;
  FreeDatabase();  // if the damage came after it
  return false;
}

bool CompiledRules::DeserializeDatabases(const std::string& bytes) {
  constexpr size_t kDigestBytes = 32;
  absl::string_view in(bytes);
  if (in.size() < kSerializedMagic.size() + kDigestBytes ||
      !absl::StartsWith(in, kSerializedMagic) ||
      Sha256(in.substr(0, in.size() - kDigestBytes)) != in.substr(in.size() - kDigestBytes)) {
    return false;
  }
  in.remove_prefix(kSerializedMagic.size());
  in.remove_suffix(kDigestBytes);
  if (!absl::StartsWith(in, cache_key_)) return false;
  in.remove_prefix(cache_key_.size());
  uint64_t length = 0;
  if (!TakeNumber(in, &length) || length != in.size() || (length != 0) != !regex_rules_.empty()) {
    return false;
  }
  return length == 0 || hs_deserialize_database(in.data(), length, &regex_db_) == HS_SUCCESS;
}

bool CompiledRules::LoadFromCache(CompiledRulesCache& cache) {
  absl::StatusOr<std::optional<std::string>> cached = cache.Load(cache_key_);
  if (!cached.ok()) {
    LogWarning("rule_cache_load_failed",
               {{"key", cache_key_}, {"error", cached.status().ToString()}});
  } else if (cached->has_value()) {
    from_cache_ = Deserialize(**cached);
    if (!from_cache_) LogWarning("rule_cache_damaged", {{"key", cache_key_}});
  }
  return from_cache_;
}

absl::StatusOr<std::shared_ptr<void>> CompiledRulesCache::ClaimCompile(const std::string&) {
  return std::make_shared<int>(0);
}

absl::Status CompiledRules::Build(CompiledRulesCache* cache) {
  const Normalizer& normalizer = Normalizer::Get();
  absl::flat_hash_map<std::string, uint32_t> literal_index;
  literal_index.reserve(rules_.size());
  std::vector<Literal> literals;
  literals.reserve(rules_.size());
  std::vector<unsigned> regex_ids;
  NormalizedText term;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const Rule& rule = rules_[i];
    if (rule.kind == RuleKind::kRegex) {
      RETURN_IF_ERROR(CheckRegex(rule.pattern, i));
      regex_ids.push_back(static_cast<unsigned>(regex_rules_.size()));
      regex_rules_.push_back(static_cast<uint32_t>(i));
      continue;
    }
    if (!normalizer.Normalize(rule.pattern, &term, "pattern").ok()) {
      // Named for the error only (the name costs an allocation per term).
      return normalizer.Normalize(rule.pattern, &term, absl::StrCat("rules[", i, "].pattern"));
    }
    if (term.text.empty()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "PATTERN_EMPTY",
                       absl::StrCat("rule ", i, " has nothing left after normalisation"),
                       {{"rule_index", absl::StrCat(i)}});
    }
    // Terms that normalise to the same text are one literal only when they
    // also need the same runs: "哈" and "哈哈" are both the text "哈".
    // (Normalised text holds no NUL: it is noise.)
    const std::vector<NormalizedChar>& chars = term.Chars();
    const bool needs_check = std::any_of(chars.begin(), chars.end(), [](const auto& c) {
      return c.run > 1 || (c.flags & kDigit) != 0;
    });
    std::string key = term.text;
    if (needs_check) {
      key.push_back('\0');
      for (const NormalizedChar& c : chars) {
        absl::StrAppend(&key, c.run, (c.flags & kDigit) != 0 ? "d," : ",");
      }
    }
    auto [it, inserted] = literal_index.try_emplace(std::move(key), literals.size());
    if (inserted) {
      Literal literal;
      literal.text = term.text;
      if (needs_check) literal.chars = chars;
      literal.needs_runs =
          std::any_of(chars.begin(), chars.end(), [](const auto& c) { return c.run > 1; });
      literal.hit_flags =
          static_cast<uint8_t>(((chars.front().flags & kWordChar) != 0 ? kLeftBoundary : 0) |
                               ((chars.back().flags & kWordChar) != 0 ? kRightBoundary : 0) |
                               (needs_check ? kCheckRuns : 0));
      literals.push_back(std::move(literal));
    }
    literals[it->second].rule_indexes.push_back(static_cast<uint32_t>(i));
  }
  for (const Rule& rule : rules_) rule_blocks_.push_back(rule.action == RuleAction::kBlock);
  for (const Literal& literal : literals) {
    LiteralHit hit;
    hit.length = static_cast<uint32_t>(literal.text.size());
    hit.rules_begin = static_cast<uint32_t>(literal_rules_.size());
    for (uint32_t rule_index : literal.rule_indexes) {
      const bool allow = rules_[rule_index].kind == RuleKind::kAllow;
      literal_rules_.push_back(rule_index | (allow ? kAllowRule : 0));
    }
    hit.rules_end = static_cast<uint32_t>(literal_rules_.size());
    hit.flags = literal.hit_flags;
    literal_hits_.push_back(hit);
  }
  std::vector<LiteralIndex::Term> terms;
  terms.reserve(literals.size());
  for (const Literal& literal : literals) terms.push_back({literal.text, literal.needs_runs});
  literal_index_.Build(terms);
  cache_key_ = CacheKey(literals);
  for (size_t id = 0; id < literals.size(); ++id) {
    if (!literals[id].chars.empty()) {
      check_chars_.emplace(static_cast<uint32_t>(id), std::move(literals[id].chars));
    }
  }
  literals = {};                // the index holds the texts
  std::shared_ptr<void> claim;  // held until the compiled set is stored
  if (cache != nullptr && !LoadFromCache(*cache)) {
    absl::StatusOr<std::shared_ptr<void>> claimed = cache->ClaimCompile(cache_key_);
    if (!claimed.ok()) {
      LogWarning("rule_cache_claim_failed",
                 {{"key", cache_key_}, {"error", claimed.status().ToString()}});
    } else if (*claimed == nullptr) {
      return MakeError(absl::StatusCode::kUnavailable, kCompilingElsewhere,
                       "another replica is compiling these rules", {{"key", cache_key_}});
    } else {
      claim = *std::move(claimed);
      // It may have been stored between the miss and the claim.
      LoadFromCache(*cache);
    }
  }
  if (!from_cache_) RETURN_IF_ERROR(CompileRegexes(regex_ids));
  if (cache != nullptr && !from_cache_) {
    absl::StatusOr<std::string> bytes = Serialize();
    absl::Status stored = bytes.ok() ? cache->Store(cache_key_, *bytes) : bytes.status();
    if (!stored.ok()) {
      LogWarning("rule_cache_store_failed", {{"key", cache_key_}, {"error", stored.ToString()}});
    }
  }
  if (regex_db_ != nullptr && hs_alloc_scratch(regex_db_, &prototype_) != HS_SUCCESS) {
    return MakeError(absl::StatusCode::kInternal, "RULE_SET_COMPILE_FAILED",
                     "hs_alloc_scratch failed");
  }
  static std::atomic<uint64_t> next_serial{1};
  serial_ = next_serial.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

void CompiledRules::FreeDatabase() {
  if (regex_db_ != nullptr) hs_free_database(regex_db_);
  regex_db_ = nullptr;
}

absl::Status CompiledRules::CompileRegexes(const std::vector<unsigned>& regex_ids) {
  hs_compile_error_t* error = nullptr;
  if (!regex_rules_.empty()) {
    std::vector<const char*> regex_patterns;
    std::vector<unsigned> regex_flags;
    for (uint32_t rule_index : regex_rules_) {
      regex_patterns.push_back(rules_[rule_index].pattern.c_str());
      regex_flags.push_back(kRegexFlags);
    }
    if (hs_compile_multi(regex_patterns.data(), regex_flags.data(), regex_ids.data(),
                         static_cast<unsigned>(regex_patterns.size()), HS_MODE_BLOCK, nullptr,
                         &regex_db_, &error) != HS_SUCCESS) {
      std::string why = error != nullptr ? error->message : "regex compile failed";
      const size_t index = error != nullptr && error->expression >= 0
                               ? regex_rules_[static_cast<size_t>(error->expression)]
                               : 0;
      hs_free_compile_error(error);
      return RegexRejected(index, why);
    }
  }
  return absl::OkStatus();
}

int CompiledRules::OnMatch(unsigned int id, unsigned long long from, unsigned long long to,
                           unsigned int /*flags*/, void* context) {
  auto* raw = static_cast<std::vector<RawMatch>*>(context);
  raw->push_back(RawMatch{id, static_cast<uint32_t>(from), static_cast<uint32_t>(to)});
  return 0;
}

bool CompiledRules::LiteralMatchHolds(uint32_t literal_id, const NormalizedText& text,
                                      uint32_t begin, uint32_t end) const {
  const LiteralHit& hit = literal_hits_[literal_id];
  if ((hit.flags & (kLeftBoundary | kRightBoundary | kCheckRuns)) == 0) return true;
  const auto& chars = text.CharsThrough(end);
  // A literal is whole UTF-8 characters, so begin and end are boundaries.
  const size_t first = text.CharAt(begin);
  if ((hit.flags & kLeftBoundary) != 0 && first > 0 && (chars[first].flags & kGapBefore) == 0 &&
      (chars[first - 1].flags & kWordChar) != 0) {
    return false;
  }
  if ((hit.flags & kRightBoundary) != 0 && end < text.text.size()) {
    const NormalizedChar& next = chars[text.CharAt(end)];
    if ((next.flags & kGapBefore) == 0 && (next.flags & kWordChar) != 0) return false;
  }
  if ((hit.flags & kCheckRuns) == 0) return true;
  const auto checked = check_chars_.find(literal_id);
  if (checked == check_chars_.end()) return false;  // kCheckRuns is set only with them
  const std::vector<NormalizedChar>& wanted = checked->second;
  if (first + wanted.size() > chars.size()) return false;
  for (size_t k = 0; k < wanted.size(); ++k) {
    const NormalizedChar& want = wanted[k];
    const NormalizedChar& got = chars[first + k];
    if ((want.flags & kDigit) != 0 ? got.run != want.run : got.run < want.run) return false;
  }
  return true;
}

absl::Status CompiledRules::Scan(const NormalizedText& text, bool explain, ScanResult* out) const {
  out->verdict = Verdict::kAllow;
  out->matches.clear();
  if (text.text.empty()) return absl::OkStatus();
  thread_local std::vector<RawMatch> raw;
  thread_local std::vector<RawMatch> allowed;
  raw.clear();
  allowed.clear();
  // Terms that need a run can match only in a text that has one.
  literal_index_.Find(text.text, text.starts(), text.units(), text.has_runs(), &raw);
  // What each hit reads next is asked for now, so that the misses overlap.
  for (const RawMatch& match : raw) __builtin_prefetch(&literal_hits_[match.id]);
  // Reported in order of end (and of begin at one end).
  std::sort(raw.begin(), raw.end(), [](const RawMatch& a, const RawMatch& b) {
    return a.end != b.end ? a.end < b.end : a.begin < b.begin;
  });
  const size_t literal_matches = raw.size();
  if (regex_db_ != nullptr) {
    hs_scratch_t* scratch = ThreadScratch();
    if (scratch == nullptr) {
      return MakeError(absl::StatusCode::kInternal, "SCAN_FAILED", "hs_clone_scratch failed");
    }
    if (hs_scan(regex_db_, text.text.data(), static_cast<unsigned>(text.text.size()), 0, scratch,
                &OnMatch, &raw) != HS_SUCCESS) {
      return MakeError(absl::StatusCode::kInternal, "SCAN_FAILED", "scan failed");
    }
  }
  if (raw.empty()) return absl::OkStatus();
  // A hit that needs a boundary or run check reads the map: built once, up
  // to the character after the last match (its right boundary), not past
  // it, and only then. Original spans need no map.
  uint32_t last_end = 0;
  for (const RawMatch& match : raw) last_end = std::max(last_end, match.end);
  bool mapped = false;
  auto add = [&](uint32_t rule_index, uint32_t begin, uint32_t end) {
    out->matches.push_back(
        RuleMatch{rule_index, begin, end, text.OriginalBegin(begin), text.OriginalEnd(end), 0});
  };
  for (size_t m = 0; m < raw.size(); ++m) {
    const RawMatch& match = raw[m];
    if (m >= literal_matches) {
      // Vectorscan reports every end of a regex match; the first is enough.
      const uint32_t rule_index = regex_rules_[match.id];
      const bool seen = std::any_of(out->matches.begin(), out->matches.end(),
                                    [&](const RuleMatch& r) { return r.rule_index == rule_index; });
      if (!seen) add(rule_index, match.begin, match.end);
      continue;
    }
    const LiteralHit& hit = literal_hits_[match.id];
    const uint32_t begin = match.end - hit.length;
    if (hit.flags != 0) {
      if (!mapped) (void)text.CharsThrough(last_end);
      mapped = true;
      if (!LiteralMatchHolds(match.id, text, begin, match.end)) continue;
    }
    for (uint32_t r = hit.rules_begin; r < hit.rules_end; ++r) {
      const uint32_t rule = literal_rules_[r];
      if ((rule & kAllowRule) != 0) {
        allowed.push_back(RawMatch{rule & ~kAllowRule, begin, match.end});
      } else {
        add(rule, begin, match.end);
      }
    }
  }
  size_t kept = 0;
  for (RuleMatch& match : out->matches) {
    for (const RawMatch& allow : allowed) {
      if (allow.begin <= match.normalized_begin && match.normalized_end <= allow.end) {
        match.suppressed_by = rules_[allow.id].id;
        break;
      }
    }
    if (match.suppressed_by == 0) {
      if (rule_blocks_[match.rule_index]) {
        out->verdict = Verdict::kBlock;
      } else if (out->verdict == Verdict::kAllow) {
        out->verdict = Verdict::kHold;
      }
    }
    if (explain || match.suppressed_by == 0) out->matches[kept++] = match;
  }
  out->matches.resize(kept);
  return absl::OkStatus();
}

}  // namespace qunzu::moderation
